#!/usr/bin/env bash
# A real etcd + a real kube-apiserver on loopback for netpol-audit's Kubernetes integration tests.
#
#   apiserver.sh fetch            install etcd (Debian etcd-server) if missing; build kube-apiserver from the
#                                 Kubernetes source through the Go module proxy into the cache (network once)
#   apiserver.sh build            alias of fetch
#   apiserver.sh kubectl          build kubectl from the same k8s.io/kubernetes module into the same cache
#                                 (network once); print its path
#   apiserver.sh start            fetch if needed, make certs/keys/kubeconfig, start etcd + kube-apiserver,
#                                 wait for /readyz; prints the admin kubeconfig path
#   apiserver.sh stop             SIGTERM both (SIGKILL after KUBE_STOP_TIMEOUT seconds)
#   apiserver.sh kill             SIGKILL both at once (fault tests)
#   apiserver.sh restart          stop + start the API server only; etcd (and so all objects) is kept
#   apiserver.sh stop-apiserver   stop the API server only (etcd keeps running)
#   apiserver.sh start-apiserver  start the API server only (after stop-apiserver)
#   apiserver.sh status           exit 0 and print the endpoints if running, exit 3 if not
#   apiserver.sh logs [N]         last N (default 100) lines of both logs
#   apiserver.sh clean            stop and delete the data dir
#   apiserver.sh crds             fetch the network-policy-api CRDs (ANP, BANP, CNP); print their paths
#   apiserver.sh monitoring-crds  fetch the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs
#                                 (deploy/components/prometheus-operator); print their paths
#   apiserver.sh latest-version   newest k8s.io/kubernetes release on the Go module proxy (network)
#
# Settings (environment):
#   KUBE_VERSION          Kubernetes release to build (default below; `latest-version` tells the newest one)
#   KUBE_DATA_DIR         certs, kubeconfig, etcd data, logs, pid files (default $TMPDIR/netpol-audit-kube)
#   KUBE_APISERVER_PORT   secure port on 127.0.0.1 (default: a free port, remembered in the data dir)
#   ETCD_PORT             etcd client port on 127.0.0.1 (default: a free port, remembered in the data dir)
#   KUBE_OWNER_PID        if set, a watchdog stops both when that process exits (crashed test runner)
#   KUBE_START_TIMEOUT    seconds to wait for readiness (default 120)
#   KUBE_APISERVER_ARGS   extra kube-apiserver flags (space separated)
#   NETPOL_AUDIT_CACHE    build cache root (default $HOME/.cache/netpol-audit)
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
KUBE_DATA_DIR=${KUBE_DATA_DIR:-${TMPDIR:-/tmp}/netpol-audit-kube}
KUBE_START_TIMEOUT=${KUBE_START_TIMEOUT:-120}
KUBE_STOP_TIMEOUT=${KUBE_STOP_TIMEOUT:-30}
cache_root=${NETPOL_AUDIT_CACHE:-$HOME/.cache/netpol-audit}
build_dir=$cache_root/kube-apiserver-$KUBE_VERSION
apiserver_bin=$build_dir/kube-apiserver
kubectl_bin=$build_dir/kubectl

say() { printf 'apiserver.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
now_ms() { date +%s%3N; }

sudo_cmd() { if [ "$(id -u)" -ne 0 ]; then echo sudo; fi; }

etcd_bin() {
  command -v etcd 2>/dev/null || { [ -x /usr/bin/etcd ] && echo /usr/bin/etcd; } || return 1
}

install_etcd() {
  etcd_bin >/dev/null && return 0
  say "installing etcd from Debian (etcd-server)"
  local s
  s=$(sudo_cmd)
  $s apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $s apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
  # The Debian package starts a system etcd on the default ports; the tests run their own.
  $s systemctl disable --now etcd >/dev/null 2>&1 || true
  etcd_bin >/dev/null || die "etcd-server installed but no etcd binary found"
}

# kube-apiserver is not published as a binary on any registry reachable here, so it is built from
# k8s.io/kubernetes as a Go module. Its go.mod points every k8s.io/* staging module at ./staging/...,
# and replace directives of a dependency are ignored, so the generated go.mod repeats them against the
# published staging modules: k8s.io/<name> v0.N.M is the staging copy of kubernetes v1.N.M.
build_apiserver() {
  [ -x "$apiserver_bin" ] && [ -f "$build_dir/.complete" ] && return 0
  command -v go >/dev/null || die "go not found: building kube-apiserver needs Go (see k8s.io/kubernetes go.mod)"
  mkdir -p "$build_dir"
  exec 8>"$build_dir/.build.lock"
  flock 8
  if [ ! -f "$build_dir/.complete" ]; then
    local t0 staging_version mod
    t0=$(now_ms)
    staging_version=v0.${KUBE_VERSION#v1.}
    mod=$(curl -fsS "https://proxy.golang.org/k8s.io/kubernetes/@v/$KUBE_VERSION.mod") ||
      die "cannot fetch k8s.io/kubernetes@$KUBE_VERSION go.mod from proxy.golang.org"
    local -a staging
    mapfile -t staging < <(printf '%s\n' "$mod" | sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9.-]*\) => \./staging/.*#\1#p')
    [ ${#staging[@]} -gt 10 ] || die "found only ${#staging[@]} staging replaces in k8s.io/kubernetes@$KUBE_VERSION go.mod"
    local go_line
    go_line=$(printf '%s\n' "$mod" | sed -n 's/^go \(.*\)/\1/p' | head -1)
    {
      echo "// generated by test/k8s/apiserver.sh: builds k8s.io/kubernetes/cmd/kube-apiserver $KUBE_VERSION"
      echo "module netpol-audit.local/kube-apiserver-build"
      echo
      echo "go $go_line"
      echo
      echo "require k8s.io/kubernetes $KUBE_VERSION"
      echo
      echo "replace ("
      for m in "${staging[@]}"; do echo "	$m => $m $staging_version"; done
      echo ")"
    } >"$build_dir/go.mod"
    rm -f "$build_dir/go.sum"
    say "building kube-apiserver $KUBE_VERSION (${#staging[@]} staging modules at $staging_version) in $build_dir"
    local ldflags="-s -w"
    local minor=${KUBE_VERSION#v1.}
    minor=${minor%%.*}
    for kv in "gitVersion=$KUBE_VERSION" gitMajor=1 "gitMinor=$minor" gitTreeState=clean; do
      ldflags+=" -X k8s.io/component-base/version.$kv"
    done
    if ! (cd "$build_dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
      -o "$apiserver_bin.tmp" k8s.io/kubernetes/cmd/kube-apiserver) >"$build_dir/build.log" 2>&1; then
      tail -n 60 "$build_dir/build.log" >&2
      die "go build k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION failed (log: $build_dir/build.log)"
    fi
    mv -f "$apiserver_bin.tmp" "$apiserver_bin"
    local ms=$(($(now_ms) - t0))
    echo "$KUBE_VERSION built in $ms ms on $(date -u +%FT%TZ)" >"$build_dir/.complete"
    say "built $apiserver_bin in $ms ms"
  fi
  flock -u 8
  exec 8>&-
}

# kubectl (with its built-in kustomize) for the deploy/ tests: no registry here ships it as a binary
# either, so it is built from the same k8s.io/kubernetes module and go.mod as kube-apiserver (the
# module cache and Go build cache are shared, so this costs only kubectl's own packages).
build_kubectl() {
  [ -x "$kubectl_bin" ] && [ -f "$build_dir/.complete-kubectl" ] && return 0
  build_apiserver
  exec 8>"$build_dir/.build.lock"
  flock 8
  if [ ! -f "$build_dir/.complete-kubectl" ]; then
    local t0 ldflags="-s -w" minor=${KUBE_VERSION#v1.}
    t0=$(now_ms)
    minor=${minor%%.*}
    for kv in "gitVersion=$KUBE_VERSION" gitMajor=1 "gitMinor=$minor" gitTreeState=clean; do
      ldflags+=" -X k8s.io/component-base/version.$kv"
    done
    say "building kubectl $KUBE_VERSION in $build_dir"
    if ! (cd "$build_dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
      -o "$kubectl_bin.tmp" k8s.io/kubernetes/cmd/kubectl) >"$build_dir/build-kubectl.log" 2>&1; then
      tail -n 60 "$build_dir/build-kubectl.log" >&2
      die "go build k8s.io/kubernetes/cmd/kubectl@$KUBE_VERSION failed (log: $build_dir/build-kubectl.log)"
    fi
    mv -f "$kubectl_bin.tmp" "$kubectl_bin"
    local ms=$(($(now_ms) - t0))
    echo "$KUBE_VERSION built in $ms ms on $(date -u +%FT%TZ)" >"$build_dir/.complete-kubectl"
    say "built $kubectl_bin in $ms ms"
  fi
  flock -u 8
  exec 8>&-
}

# The AdminNetworkPolicy / BaselineAdminNetworkPolicy (v1alpha1, last shipped in v0.1.7) and
# ClusterNetworkPolicy (v1alpha2, from v0.2.0) CRDs come from the sigs.k8s.io/network-policy-api module.
NPAPI_VERSIONS=${NPAPI_VERSIONS:-"v0.1.7 v0.2.0"}
crd_dir=$cache_root/network-policy-api-crds

fetch_crds() {
  [ -f "$crd_dir/.complete" ] && return 0
  mkdir -p "$crd_dir"
  local v dir
  for v in $NPAPI_VERSIONS; do
    dir=$(cd "$crd_dir" && GOFLAGS= go mod download -json "sigs.k8s.io/network-policy-api@$v" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p') || true
    [ -n "$dir" ] && [ -d "$dir/config/crd/standard" ] ||
      die "cannot download sigs.k8s.io/network-policy-api@$v from the Go module proxy"
    cp -f "$dir"/config/crd/standard/policy.networking.k8s.io_*.yaml "$crd_dir/"
    chmod u+w "$crd_dir"/*.yaml
  done
  echo "$NPAPI_VERSIONS" >"$crd_dir/.complete"
  say "network-policy-api CRDs ($NPAPI_VERSIONS) in $crd_dir"
}

# The Prometheus Operator's CRDs, from its Go module (example/prometheus-operator-crd), for the dry run
# of deploy/components/prometheus-operator's ServiceMonitor and PrometheusRule.
PROMOP_VERSION=${PROMOP_VERSION:-v0.85.0}
promop_crd_dir=$cache_root/prometheus-operator-crds-$PROMOP_VERSION

fetch_monitoring_crds() {
  [ -f "$promop_crd_dir/.complete" ] && return 0
  mkdir -p "$promop_crd_dir"
  local dir
  dir=$(cd "$promop_crd_dir" && GOFLAGS= go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$PROMOP_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p') || true
  [ -n "$dir" ] && [ -d "$dir/example/prometheus-operator-crd" ] ||
    die "cannot download github.com/prometheus-operator/prometheus-operator@$PROMOP_VERSION from the Go module proxy"
  cp -f "$dir"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml \
    "$promop_crd_dir/"
  chmod u+w "$promop_crd_dir"/*.yaml
  echo "$PROMOP_VERSION" >"$promop_crd_dir/.complete"
  say "Prometheus Operator CRDs ($PROMOP_VERSION) in $promop_crd_dir"
}

fetch() {
  install_etcd
  build_apiserver
  fetch_crds
}

pki=$KUBE_DATA_DIR/pki
etcd_pid_file=$KUBE_DATA_DIR/etcd.pid
apiserver_pid_file=$KUBE_DATA_DIR/kube-apiserver.pid
etcd_log=$KUBE_DATA_DIR/etcd.log
apiserver_log=$KUBE_DATA_DIR/kube-apiserver.log
ports_file=$KUBE_DATA_DIR/ports
kubeconfig=$KUBE_DATA_DIR/admin.kubeconfig

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    port_open "$p" || { echo "$p"; return 0; }
  done
  die "no free port found on 127.0.0.1"
}

# Ports are chosen once per data dir and remembered, so a restarted API server comes back at the address
# the watchers under test already have in their kubeconfig. The file is written once, by rename: the
# watchdog reads it every second (status), and a reader that met a half-written file would choose new
# ports and start the API server against an etcd port nobody listens on.
load_ports() {
  mkdir -p "$KUBE_DATA_DIR"
  if [ -f "$ports_file" ]; then
    # shellcheck disable=SC1090
    . "$ports_file"
    [ -n "${KUBE_APISERVER_PORT:-}" ] && [ -n "${ETCD_PORT:-}" ] && [ -n "${ETCD_PEER_PORT:-}" ] && return 0
  fi
  KUBE_APISERVER_PORT=${KUBE_APISERVER_PORT:-$(pick_port)}
  ETCD_PORT=${ETCD_PORT:-$(pick_port)}
  ETCD_PEER_PORT=${ETCD_PEER_PORT:-$(pick_port)}
  printf 'KUBE_APISERVER_PORT=%s\nETCD_PORT=%s\nETCD_PEER_PORT=%s\n' \
    "$KUBE_APISERVER_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" >"$ports_file.$$"
  mv -f "$ports_file.$$" "$ports_file"
}

# Reads the remembered ports, never chooses or writes them (status runs every second from the watchdog).
read_ports() {
  # shellcheck disable=SC1090
  [ -f "$ports_file" ] && . "$ports_file"
  return 0
}

# The pid file alone is not trusted: after a crash the pid may belong to another process.
running_pid() {
  local file=$1 marker=$2 pid
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
  echo "$pid"
}
etcd_pid() { running_pid "$etcd_pid_file" "$KUBE_DATA_DIR/etcd-data"; }
apiserver_pid() { running_pid "$apiserver_pid_file" "$pki/apiserver.crt"; }

make_pki() {
  [ -f "$pki/.complete" ] && return 0
  mkdir -p "$pki"
  local t0
  t0=$(now_ms)
  (
    set -e
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=netpol-audit-test-ca" 2>/dev/null
    # Serving certificate: clients reach the server as 127.0.0.1, in-cluster pods as kubernetes.default.
    {
      echo "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
      echo "extendedKeyUsage=serverAuth"
    } >apiserver.ext
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    # Admin client certificate: the API server itself binds the group system:masters to everything.
    echo "extendedKeyUsage=clientAuth" >client.ext
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
      -subj "/O=system:masters/CN=netpol-audit-admin" 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out admin.crt 2>/dev/null
    # Service-account token signing key pair (the TokenRequest API needs the private half).
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr
  ) || die "openssl failed to create the test PKI in $pki"
  touch "$pki/.complete"
  say "PKI created in $(($(now_ms) - t0)) ms"
}

write_kubeconfig() {
  cat >"$kubeconfig.tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: netpol-audit-test
  cluster:
    server: https://127.0.0.1:$KUBE_APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 <"$pki/admin.crt")
    client-key-data: $(base64 -w0 <"$pki/admin.key")
contexts:
- name: admin
  context:
    cluster: netpol-audit-test
    user: admin
current-context: admin
KUBECONFIG
  mv -f "$kubeconfig.tmp" "$kubeconfig"
}

start_watchdog() {
  local owner=$1
  # setsid + closed fds so the watchdog outlives this script without holding the caller's pipes open.
  # When the owner (a test runner) is gone, it stops whatever of ours still runs.
  setsid bash -c '
    owner=$1; script=$2
    while kill -0 "$owner" 2>/dev/null; do
      bash "$script" status >/dev/null 2>&1 || exit 0
      sleep 1
    done
    bash "$script" stop >/dev/null 2>&1
  ' watchdog "$owner" "${BASH_SOURCE[0]}" </dev/null >/dev/null 2>&1 &
}

start_etcd() {
  etcd_pid >/dev/null && return 0
  port_open "$ETCD_PORT" && die "etcd port $ETCD_PORT on 127.0.0.1 is already in use by another process"
  local bin pid
  bin=$(etcd_bin) || die "etcd not found (run: apiserver.sh fetch)"
  [ -f "$etcd_log" ] && mv -f "$etcd_log" "$etcd_log.prev"
  local url=http://127.0.0.1:$ETCD_PORT peer=http://127.0.0.1:$ETCD_PEER_PORT
  setsid "$bin" --name netpol-audit --data-dir "$KUBE_DATA_DIR/etcd-data" \
    --listen-client-urls "$url" --advertise-client-urls "$url" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "netpol-audit=$peer" --initial-cluster-state new \
    --quota-backend-bytes 2147483648 --logger zap --log-outputs stderr \
    </dev/null >"$etcd_log" 2>&1 &
  pid=$!
  echo "$pid" >"$etcd_pid_file"
  local deadline=$(($(date +%s) + KUBE_START_TIMEOUT))
  until etcd_healthy; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$etcd_log" >&2 || true
      rm -f "$etcd_pid_file"
      die "etcd exited during startup (log: $etcd_log)"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "etcd not healthy after ${KUBE_START_TIMEOUT}s (log: $etcd_log)"
    sleep 0.1
  done
}

etcd_healthy() { curl -fsS -m 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; }

# The API server's log says only "connection refused" when etcd is gone: say what etcd was doing.
etcd_state() {
  local pid
  if pid=$(etcd_pid); then
    say "etcd: pid $pid alive ($(grep -m1 '^State:' "/proc/$pid/status" 2>/dev/null | tr -s '\t ' ' ' || echo 'state unknown'))"
  else
    say "etcd: not running (pid file: $(cat "$etcd_pid_file" 2>/dev/null || echo none))"
  fi
  if etcd_healthy; then
    say "etcd: healthy on 127.0.0.1:$ETCD_PORT"
  elif port_open "$ETCD_PORT"; then
    say "etcd: 127.0.0.1:$ETCD_PORT accepts connections but does not report health"
  else
    say "etcd: nothing listens on 127.0.0.1:$ETCD_PORT"
  fi
  say "etcd log (last 30 lines):"
  tail -n 30 "$etcd_log" >&2 2>/dev/null || true
}

start_apiserver() {
  apiserver_pid >/dev/null && return 0
  [ -x "$apiserver_bin" ] || die "kube-apiserver not built (run: apiserver.sh fetch)"
  # A restart finds etcd by its pid; the API server needs it serving, not only alive.
  local etcd_deadline=$(($(date +%s) + KUBE_START_TIMEOUT))
  until etcd_healthy; do
    if [ "$(date +%s)" -ge "$etcd_deadline" ]; then
      etcd_state
      die "etcd at http://127.0.0.1:$ETCD_PORT not healthy after ${KUBE_START_TIMEOUT}s: the API server cannot start without it"
    fi
    sleep 0.2
  done
  port_open "$KUBE_APISERVER_PORT" &&
    die "API server port $KUBE_APISERVER_PORT on 127.0.0.1 is already in use by another process"
  [ -f "$apiserver_log" ] && mv -f "$apiserver_log" "$apiserver_log.prev"
  local -a extra=()
  # shellcheck disable=SC2206
  [ -n "${KUBE_APISERVER_ARGS:-}" ] && extra=($KUBE_APISERVER_ARGS)
  # Without a watch termination grace period, a graceful stop waits for every HTTP/1.1 watch (what
  # node:https clients open; client-go's HTTP/2 ones are told to go away) until it is killed.
  # The advertised address only goes into the `kubernetes` Service's endpoints, which must not be
  # loopback; 192.0.2.1 (TEST-NET-1) is never dialled. No controller-manager runs, so nothing creates the `default` ServiceAccount that the ServiceAccount
  # admission plugin demands of every pod: that plugin is off.
  local pid
  setsid "$apiserver_bin" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 192.0.2.1 --secure-port "$KUBE_APISERVER_PORT" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --authorization-mode RBAC \
    --disable-admission-plugins ServiceAccount \
    --service-cluster-ip-range 10.96.0.0/16 \
    --profiling=false \
    --shutdown-watch-termination-grace-period 5s \
    "${extra[@]}" \
    </dev/null >"$apiserver_log" 2>&1 &
  pid=$!
  echo "$pid" >"$apiserver_pid_file"
  local deadline=$(($(date +%s) + KUBE_START_TIMEOUT))
  local -a auth=(--cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key")
  until [ "$(curl -sS -o /dev/null -w '%{http_code}' "${auth[@]}" \
    "https://127.0.0.1:$KUBE_APISERVER_PORT/readyz" 2>/dev/null)" = 200 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 60 "$apiserver_log" >&2 || true
      etcd_state
      rm -f "$apiserver_pid_file"
      die "kube-apiserver exited during startup (log: $apiserver_log)"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 60 "$apiserver_log" >&2 || true
      etcd_state
      stop_one "$apiserver_pid_file" apiserver_pid kube-apiserver
      die "kube-apiserver not ready after ${KUBE_START_TIMEOUT}s (log: $apiserver_log)"
    fi
    sleep 0.2
  done
}

stop_one() {
  local file=$1 finder=$2 name=$3 signal=${4:-TERM} pid
  if ! pid=$($finder); then
    rm -f "$file"
    return 0
  fi
  kill "-$signal" "$pid" 2>/dev/null || true
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -eq $((KUBE_STOP_TIMEOUT * 10)) ]; then
      say "$name (pid $pid) still alive after ${KUBE_STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$file"
  say "$name stopped (pid $pid, SIG$signal)"
}

start() {
  fetch
  load_ports
  local t0 t1 t2
  t0=$(now_ms)
  make_pki
  write_kubeconfig
  start_etcd
  t1=$(now_ms)
  start_apiserver
  t2=$(now_ms)
  if [ -n "${KUBE_OWNER_PID:-}" ]; then start_watchdog "$KUBE_OWNER_PID"; fi
  say "etcd ready in $((t1 - t0)) ms, kube-apiserver $KUBE_VERSION ready in $((t2 - t1)) ms" \
    "on https://127.0.0.1:$KUBE_APISERVER_PORT (etcd http://127.0.0.1:$ETCD_PORT)"
  echo "$kubeconfig"
}

# The ports etcd and the API server were started with; a restart never chooses new ones.
require_ports() {
  read_ports
  [ -n "${KUBE_APISERVER_PORT:-}" ] && [ -n "${ETCD_PORT:-}" ] ||
    die "no ports remembered in $ports_file (use start)"
}

start_apiserver_only() {
  require_ports
  etcd_pid >/dev/null || die "etcd is not running (use start)"
  local t0
  t0=$(now_ms)
  start_apiserver
  say "kube-apiserver ready in $(($(now_ms) - t0)) ms on https://127.0.0.1:$KUBE_APISERVER_PORT"
  echo "$kubeconfig"
}

stop() {
  stop_one "$apiserver_pid_file" apiserver_pid kube-apiserver
  stop_one "$etcd_pid_file" etcd_pid etcd
}

kill_now() {
  stop_one "$apiserver_pid_file" apiserver_pid kube-apiserver KILL
  stop_one "$etcd_pid_file" etcd_pid etcd KILL
}

status() {
  read_ports
  local e a
  e=$(etcd_pid) || e=
  a=$(apiserver_pid) || a=
  if [ -n "$e" ] || [ -n "$a" ]; then
    echo "etcd=${e:-stopped} kube-apiserver=${a:-stopped} server=https://127.0.0.1:${KUBE_APISERVER_PORT:-?}" \
      "etcd_url=http://127.0.0.1:${ETCD_PORT:-?} kubeconfig=$kubeconfig version=$KUBE_VERSION data=$KUBE_DATA_DIR"
    return 0
  fi
  echo "stopped data=$KUBE_DATA_DIR"
  return 3
}

logs() {
  local n=${1:-100} f
  for f in "$etcd_log" "$apiserver_log"; do
    if [ -f "$f" ]; then
      echo "==> $f <=="
      tail -n "$n" "$f"
    fi
  done
}

latest_version() {
  curl -fsS https://proxy.golang.org/k8s.io/kubernetes/@v/list | grep -E '^v1\.[0-9]+\.[0-9]+$' | sort -V | tail -1
}

case "${1:-}" in
  fetch | build)
    fetch
    echo "$apiserver_bin"
    ;;
  start) start ;;
  stop) stop ;;
  kill) kill_now ;;
  restart)
    require_ports
    stop_one "$apiserver_pid_file" apiserver_pid kube-apiserver
    start_apiserver_only
    ;;
  stop-apiserver) stop_one "$apiserver_pid_file" apiserver_pid kube-apiserver ;;
  start-apiserver) start_apiserver_only ;;
  status) status ;;
  logs) logs "${2:-100}" ;;
  clean)
    stop
    rm -rf "$KUBE_DATA_DIR"
    ;;
  latest-version) latest_version ;;
  kubectl)
    build_kubectl
    echo "$kubectl_bin"
    ;;
  crds)
    fetch_crds
    ls "$crd_dir"/*.yaml
    ;;
  monitoring-crds)
    fetch_monitoring_crds
    ls "$promop_crd_dir"/*.yaml
    ;;
  *)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
