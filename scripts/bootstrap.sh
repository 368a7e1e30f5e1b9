#!/usr/bin/env bash
# Sets netpol-audit up on a fresh Debian machine with Node.js 20.
#
#   bash scripts/bootstrap.sh          what running it needs: npm packages, the build, tcpdump, conntrack
#   bash scripts/bootstrap.sh --tests  also what the tests and benchmarks drive for real: tshark,
#                                      softflowd, argus, a Kafka broker (jars from Maven Central) and
#                                      etcd + a kube-apiserver built from source (slow the first time)
set -euo pipefail
cd "$(dirname "$0")/.."

tests=false
for arg in "$@"; do
  case $arg in
    --tests) tests=true ;;
    *) echo "usage: bootstrap.sh [--tests]" >&2; exit 2 ;;
  esac
done

tools=(tcpdump:tcpdump conntrack:conntrack ip:iproute2)
$tests && tools+=(tshark:tshark softflowd:softflowd argus:argus-server ra:argus-client)
need_apt=()
for tool in "${tools[@]}"; do
  bin=${tool%%:*}; pkg=${tool#*:}
  command -v "$bin" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm 11.19 writes lock files that its own `npm ci` rejects (platform-specific optional packages
  # of biome and rollup are listed as dependencies but get no entries of their own), so install
  # with `npm install`, which still honours the versions pinned in package-lock.json.
  npm install --no-audit --no-fund
fi
npm run build

if $tests; then
  # The Kafka integration tests run a real broker from Maven Central's jars (Java 17 + Maven); fetch once.
  bash test/kafka/fetch.sh
  # The Kubernetes integration tests run a real etcd (Debian etcd-server) and kube-apiserver (built from
  # the Kubernetes source through the Go module proxy; needs Go); build once (slow: see docs/kube.md).
  bash test/k8s/apiserver.sh fetch
fi
