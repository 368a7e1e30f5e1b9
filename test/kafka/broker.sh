#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller in one JVM) for netpol-audit's integration tests.
#
#   broker.sh fetch            resolve the Kafka jars from Maven Central into the cache (network once)
#   broker.sh start            fetch if needed, format storage on first use, start, wait until ready
#   broker.sh stop             SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT seconds
#   broker.sh kill             SIGKILL at once (fault tests: unclean shutdown)
#   broker.sh restart          stop + start, keeping the data dir
#   broker.sh status           exit 0 and print the bootstrap address if running, exit 3 if not
#   broker.sh logs [N]         last N (default 200) lines of the broker log
#   broker.sh clean            stop and delete the data dir
#   broker.sh latest-version   ask Maven Central for the newest Kafka release (network)
#
# Settings (environment):
#   KAFKA_VERSION          Kafka release to run (default below; `latest-version` tells the newest one)
#   KAFKA_PORT             client listener on 127.0.0.1 (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener on 127.0.0.1 (default KAFKA_PORT+1)
#   KAFKA_DATA_DIR         config, pid file, log and partition data (default $TMPDIR/netpol-audit-kafka-<port>)
#   KAFKA_HEAP             JVM max heap (default 512m)
#   KAFKA_BROKER_PROPS     extra server.properties lines (newline separated); they override the defaults
#   KAFKA_OWNER_PID        if set, a watchdog stops the broker when that process exits (crashed test runner)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness (default 120)
#   NETPOL_AUDIT_CACHE     jar cache root (default $HOME/.cache/netpol-audit)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
KAFKA_DATA_DIR=${KAFKA_DATA_DIR:-${TMPDIR:-/tmp}/netpol-audit-kafka-${KAFKA_PORT}}
KAFKA_HEAP=${KAFKA_HEAP:-512m}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
cache_root=${NETPOL_AUDIT_CACHE:-$HOME/.cache/netpol-audit}
kafka_home=$cache_root/kafka-$KAFKA_VERSION
libs=$kafka_home/libs
pid_file=$KAFKA_DATA_DIR/broker.pid
log_file=$KAFKA_DATA_DIR/broker.log

say() { printf 'broker.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

now_ms() { date +%s%3N; }

# Kafka 3.x logs through slf4j 1.7 + reload4j, 4.x through log4j2; the pom has one profile for each.
is_kafka3() { [[ $KAFKA_VERSION == 3.* ]]; }

fetch() {
  [ -f "$libs/.complete" ] && return 0
  command -v mvn >/dev/null || die "mvn not found: Maven is needed once to fetch Kafka $KAFKA_VERSION"
  command -v java >/dev/null || die "java not found: Kafka needs Java 17"
  mkdir -p "$kafka_home"
  # Parallel test workers may all try the first fetch; one does it, the others wait and reuse it.
  exec 9>"$kafka_home/.fetch.lock"
  flock 9
  if [ ! -f "$libs/.complete" ]; then
    local t0 tmp profile=()
    t0=$(now_ms)
    tmp=$(mktemp -d "$kafka_home/libs.tmp.XXXXXX")
    is_kafka3 && profile=(-P reload4j)
    say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $libs"
    if ! mvn -B -q --no-transfer-progress -f "$here/pom.xml" "${profile[@]}" \
      -Dkafka.version="$KAFKA_VERSION" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$kafka_home/fetch.log" 2>&1; then
      rm -rf "$tmp"
      cat "$kafka_home/fetch.log" >&2
      die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (see above)"
    fi
    [ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || die "mvn finished but kafka_2.13-$KAFKA_VERSION.jar is missing"
    rm -rf "$libs"
    mv "$tmp" "$libs"
    echo "$KAFKA_VERSION" >"$libs/.complete"
    say "fetched $(find "$libs" -name '*.jar' | wc -l) jars in $(($(now_ms) - t0)) ms"
  fi
  flock -u 9
  exec 9>&-
}

# The pid file alone is not trusted: after a reboot or a crash the pid may belong to another process.
running_pid() {
  [ -f "$pid_file" ] || return 1
  local pid
  pid=$(cat "$pid_file")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$KAFKA_DATA_DIR/server.properties" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Sends a Metadata v1 request (all topics) and succeeds if the reply lists at least one broker: proof that
# the request path works, not merely that the socket is bound. Needs no Kafka client tools.
metadata_ok() {
  local bytes
  bytes=$(
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    # size=16 | api_key=3 (Metadata) | version=1 | correlation_id=7 | client_id="nb" | topics=null (-1)
    printf '\x00\x00\x00\x10\x00\x03\x00\x01\x00\x00\x00\x07\x00\x02nb\xff\xff\xff\xff' >&3
    timeout 5 head -c 12 <&3 | od -An -tu1
  ) 2>/dev/null || return 1
  read -r -a b <<<"$bytes"
  # reply: int32 size, int32 correlation_id (must be 7), int32 broker count (must be >= 1)
  [ "${#b[@]}" -eq 12 ] && [ "${b[7]}" -eq 7 ] && [ $((b[8] | b[9] | b[10] | b[11])) -ne 0 ]
}

write_config() {
  mkdir -p "$KAFKA_DATA_DIR/data"
  cat >"$KAFKA_DATA_DIR/server.properties" <<EOF
# generated by test/kafka/broker.sh for Kafka $KAFKA_VERSION
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA_DIR/data
auto.create.topics.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.segment.bytes=16777216
log.retention.hours=24
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
EOF
  if [ -n "${KAFKA_BROKER_PROPS:-}" ]; then
    printf '# KAFKA_BROKER_PROPS\n%s\n' "$KAFKA_BROKER_PROPS" >>"$KAFKA_DATA_DIR/server.properties"
  fi
  if is_kafka3; then
    cat >"$KAFKA_DATA_DIR/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.common.config=WARN
EOF
  else
    cat >"$KAFKA_DATA_DIR/log4j2.properties" <<'EOF'
status=warn
appender.out.type=Console
appender.out.name=STDOUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=STDOUT
logger.config.name=org.apache.kafka.common.config
logger.config.level=WARN
EOF
  fi
}

java_cmd() {
  local cmd=(java "-Xmx$KAFKA_HEAP" -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true)
  if is_kafka3; then
    cmd+=("-Dlog4j.configuration=file:$KAFKA_DATA_DIR/log4j.properties")
  else
    cmd+=("-Dlog4j2.configurationFile=$KAFKA_DATA_DIR/log4j2.properties")
  fi
  cmd+=(-cp "$libs/*")
  printf '%s\n' "${cmd[@]}"
}

format_storage() {
  [ -f "$KAFKA_DATA_DIR/data/meta.properties" ] && return 0
  # A Kafka Uuid is 16 random bytes in unpadded base64url; generating it here saves one JVM start.
  local cluster_id
  # One starting with '-' would be parsed by StorageTool's argparse4j as an option, so draw again.
  cluster_id=-
  while [[ $cluster_id == -* ]]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  local -a cmd
  mapfile -t cmd < <(java_cmd)
  if ! "${cmd[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
    -c "$KAFKA_DATA_DIR/server.properties" >"$KAFKA_DATA_DIR/format.log" 2>&1; then
    cat "$KAFKA_DATA_DIR/format.log" >&2
    die "formatting KRaft storage in $KAFKA_DATA_DIR/data failed"
  fi
}

start_watchdog() {
  local owner=$1 pid=$2
  # setsid + closed fds so the watchdog outlives this script without holding the caller's pipes open.
  setsid bash -c '
    owner=$1; pid=$2; grace=$3
    while kill -0 "$owner" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
    kill -0 "$pid" 2>/dev/null || exit 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq "$grace"); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 1; done
    kill -KILL "$pid" 2>/dev/null
  ' watchdog "$owner" "$pid" "$KAFKA_STOP_TIMEOUT" </dev/null >/dev/null 2>&1 &
}

start() {
  local pid
  if pid=$(running_pid); then
    say "already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
    echo "127.0.0.1:$KAFKA_PORT"
    return 0
  fi
  command -v java >/dev/null || die "java not found: Kafka needs Java 17"
  fetch
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$p" && die "port $p on 127.0.0.1 is already in use by another process"
  done
  local t0
  t0=$(now_ms)
  write_config
  format_storage
  [ -f "$log_file" ] && mv -f "$log_file" "$log_file.prev"
  local -a cmd
  mapfile -t cmd < <(java_cmd)
  setsid "${cmd[@]}" kafka.Kafka "$KAFKA_DATA_DIR/server.properties" </dev/null >"$log_file" 2>&1 &
  pid=$!
  echo "$pid" >"$pid_file"
  [ -n "${KAFKA_OWNER_PID:-}" ] && start_watchdog "$KAFKA_OWNER_PID" "$pid"

  # Ready = the server logged that startup finished (KRaft metadata loaded, listeners up) AND a Metadata
  # request on the client port names a broker.
  local deadline=$(($(date +%s) + KAFKA_START_TIMEOUT))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 60 "$log_file" >&2 || true
      rm -f "$pid_file"
      die "Kafka $KAFKA_VERSION exited during startup (log: $log_file)"
    fi
    if grep -q 'Kafka Server started' "$log_file" 2>/dev/null && metadata_ok "$KAFKA_PORT"; then
      break
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 60 "$log_file" >&2 || true
      stop
      die "Kafka $KAFKA_VERSION not ready after ${KAFKA_START_TIMEOUT}s (log: $log_file)"
    fi
    sleep 0.2
  done
  say "Kafka $KAFKA_VERSION ready on 127.0.0.1:$KAFKA_PORT (pid $pid) in $(($(now_ms) - t0)) ms"
  echo "127.0.0.1:$KAFKA_PORT"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pid_file"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge $((KAFKA_STOP_TIMEOUT * 5)) ]; then
      say "pid $pid still alive after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$pid_file"
  say "stopped (pid $pid)"
}

kill_now() {
  local pid
  if pid=$(running_pid); then
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    say "killed (pid $pid)"
  fi
  rm -f "$pid_file"
}

status() {
  local pid
  if pid=$(running_pid); then
    echo "running pid=$pid bootstrap=127.0.0.1:$KAFKA_PORT version=$KAFKA_VERSION data=$KAFKA_DATA_DIR"
    return 0
  fi
  echo "stopped data=$KAFKA_DATA_DIR"
  return 3
}

latest_version() {
  # dependency:get with the artifact's maven-metadata.xml is the one place Central names its newest release.
  local tmp
  tmp=$(mktemp -d)
  mvn -B -q --no-transfer-progress dependency:get -Dtransitive=false \
    -Dartifact=org.apache.kafka:kafka-clients:LATEST:pom -Ddest="$tmp/" >/dev/null 2>&1 || true
  local meta
  meta=$(find "${MAVEN_REPO:-$HOME/.m2/repository}/org/apache/kafka/kafka-clients" -maxdepth 1 \
    -name 'maven-metadata*.xml' | head -n 1)
  rm -rf "$tmp"
  [ -n "$meta" ] || die "could not read kafka-clients maven-metadata.xml"
  sed -n 's:.*<release>\(.*\)</release>.*:\1:p' "$meta"
}

case "${1:-}" in
  fetch) fetch; echo "$libs" ;;
  start) start ;;
  stop) stop ;;
  kill) kill_now ;;
  restart) stop; start ;;
  status) status ;;
  logs) tail -n "${2:-200}" "$log_file" ;;
  clean) stop; rm -rf "$KAFKA_DATA_DIR" ;;
  latest-version) latest_version ;;
  *) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
