#!/usr/bin/env bash
# Pre-fetches the Kafka broker jars the integration tests run (test/kafka/broker.sh) from Maven Central into
# ${NETPOL_AUDIT_CACHE:-$HOME/.cache/netpol-audit}/kafka-<version>/libs, so `npm test` needs no network.
# Installs Java 17 and Maven from Debian if they are missing. A no-op (no network) once the cache is complete.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The Debian packages come from scripts/programs.tsv, the one list scripts/bootstrap.sh installs from.
pkg_of() { awk -F'\t' -v p="$1" '$1 == p { print $2 }' "$here/../../scripts/programs.tsv"; }
need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=("$(pkg_of java)")
command -v mvn >/dev/null 2>&1 || need_apt+=("$(pkg_of mvn)")
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
exec bash "$here/broker.sh" fetch
