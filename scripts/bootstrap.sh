#!/usr/bin/env bash
# Sets netpol-audit up on a fresh Debian machine with Node.js 20.
#
#   bash scripts/bootstrap.sh          what running it needs: npm packages, the build, tcpdump, conntrack
#   bash scripts/bootstrap.sh --tests  also what the tests and benchmarks drive for real: nftables,
#                                      tshark, softflowd, argus, python3, Java + Maven and a Kafka
#                                      broker (jars from Maven Central), etcd + a kube-apiserver built
#                                      from source with Go (slow the first time)
#   bash scripts/bootstrap.sh --check [--tests]
#                                      installs nothing: prints the Debian packages it would install
#                                      (one a line) and the programs no package provides, then exits
#                                      0 if nothing is missing, 1 otherwise
#
# The programs and their packages come from scripts/programs.tsv, the one list the tests read too.
set -euo pipefail
# No dirname: --check runs under a PATH that may hold nothing but bash.
here=${BASH_SOURCE[0]%/*}
[ "$here" = "${BASH_SOURCE[0]}" ] && here=.
cd "$here/.."

tests=false
check=false
for arg in "$@"; do
  case $arg in
    --tests) tests=true ;;
    --check) check=true ;;
    *) echo "usage: bootstrap.sh [--tests] [--check]" >&2; exit 2 ;;
  esac
done

need_apt=()
no_package=()
while IFS=$'\t' read -r bin pkg need _; do
  case $bin in '#'* | '') continue ;; esac
  [ "$need" = run ] || $tests || continue
  # type -P, not command -v: `time` is also a bash keyword, and the benchmarks need the program.
  type -P "$bin" >/dev/null && continue
  if [ "$pkg" = - ]; then
    no_package+=("$bin")
  else
    case " ${need_apt[*]} " in *" $pkg "*) ;; *) need_apt+=("$pkg") ;; esac
  fi
done <scripts/programs.tsv

if $check; then
  for pkg in "${need_apt[@]}"; do echo "$pkg"; done
  for bin in "${no_package[@]}"; do echo "$bin: not from Debian (see scripts/programs.tsv)"; done
  [ ${#need_apt[@]} -eq 0 ] && [ ${#no_package[@]} -eq 0 ]
  exit
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "bootstrap.sh: installing from Debian: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian's etcd-server starts a system etcd on the default ports; the tests run their own
  # (as test/k8s/apiserver.sh does when it installs etcd itself).
  case " ${need_apt[*]} " in
    *" etcd-server "*) $SUDO systemctl disable --now etcd >/dev/null 2>&1 || true ;;
  esac
fi
if [ ${#no_package[@]} -gt 0 ]; then
  echo "bootstrap.sh: not on PATH and not from Debian: ${no_package[*]} (see scripts/programs.tsv)" >&2
  exit 1
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
  # The alerting tests run a real Alertmanager, built from its Go module (needs Go); build once.
  bash test/alerting/tools.sh fetch
fi
