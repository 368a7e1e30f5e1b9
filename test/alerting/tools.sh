#!/usr/bin/env bash
# Alertmanager, Prometheus and promtool for netpol-audit's alerting and metrics tests, built from their Go
# modules through the Go module proxy (no binary release is reachable here) and cached.
#
#   tools.sh fetch          build what is missing into the cache (network once; a few minutes)
#   tools.sh path NAME      print the cached binary of NAME (alertmanager | prometheus | promtool)
#
# Settings: ALERTMANAGER_VERSION, PROMETHEUS_VERSION, NETPOL_AUDIT_CACHE (default ~/.cache/netpol-audit).
set -euo pipefail

ALERTMANAGER_VERSION=${ALERTMANAGER_VERSION:-v0.35.0}
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}
cache_root=${NETPOL_AUDIT_CACHE:-$HOME/.cache/netpol-audit}

say() { printf 'tools.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# The module zips leave out the web UIs' built assets, which the binaries embed (go:embed): the
# build uses a copy of the module with a placeholder page, through a replace directive. The tests
# use the HTTP APIs only.
build() { # module version dir cmd... (each cmd: import path of a main package)
  local module=$1 version=$2 dir=$3
  shift 3
  [ -f "$dir/.complete" ] && return 0
  command -v go >/dev/null || die "go not found: building $module needs Go"
  mkdir -p "$dir"
  exec 9>"$dir/.build.lock"
  flock 9
  [ -f "$dir/.complete" ] && return 0
  local work t0
  t0=$(date +%s)
  work=$(mktemp -d)
  (
    cd "$work"
    export GOFLAGS=-mod=mod
    go mod init netpol-audit-tools >/dev/null 2>&1
    go mod download -json "$module@$version" >mod.json
    local src
    src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' mod.json)
    [ -d "$src" ] || die "cannot download $module@$version"
    cp -r "$src" src
    chmod -R u+w src
    "${PLACEHOLDERS[@]}"
    go mod edit -require="$module@$version" -replace="$module=./src"
    go mod tidy >/dev/null 2>&1 || true
    for cmd in "$@"; do
      say "building $cmd@$version"
      go build -o "$dir/$(basename "$cmd")" "$cmd"
    done
  ) || { rm -rf "$work"; die "building $module@$version failed"; }
  rm -rf "$work"
  touch "$dir/.complete"
  say "$module@$version built in $(($(date +%s) - t0)) s into $dir"
}

am_dir=$cache_root/alertmanager-$ALERTMANAGER_VERSION
prom_dir=$cache_root/prometheus-$PROMETHEUS_VERSION

am_placeholders() { mkdir -p src/ui/app/dist && echo '<!doctype html><title>Alertmanager</title>' >src/ui/app/dist/index.html; }

case ${1:-} in
  fetch)
    PLACEHOLDERS=(am_placeholders)
    build github.com/prometheus/alertmanager "$ALERTMANAGER_VERSION" "$am_dir" \
      github.com/prometheus/alertmanager/cmd/alertmanager
    PLACEHOLDERS=(true)
    build github.com/prometheus/prometheus "$PROMETHEUS_VERSION" "$prom_dir" \
      github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
    ;;
  path)
    case ${2:-} in
      alertmanager) echo "$am_dir/alertmanager" ;;
      prometheus | promtool) echo "$prom_dir/${2}" ;;
      *) die "usage: tools.sh path alertmanager|prometheus|promtool" ;;
    esac
    ;;
  *) die "usage: tools.sh fetch | path NAME" ;;
esac
