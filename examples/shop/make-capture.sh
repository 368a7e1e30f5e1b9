#!/usr/bin/env bash
# Re-creates capture.pcap: real traffic between network namespaces laid out like the cluster in
# cluster.yaml (pods on one bridge, as a node's pod network; nothing enforces the policies, so
# traffic the policies deny still flows and shows up as violations). Needs root, iproute2, tcpdump,
# socat, curl, python3. Touches only namespaces it creates (prefix npx-).
set -euo pipefail
cd "$(dirname "$0")"
P=npx-$$
NODE=$P-node
declare -A PODS=(
  [frontend]=10.244.1.10 [cart]=10.244.1.11 [coredns]=10.244.1.2
  [payments]=10.244.2.20 [prometheus]=10.244.2.30 [debug]=10.244.2.40
)
cleanup() {
  [ -n "${TCPDUMP_PID:-}" ] && kill "$TCPDUMP_PID" 2>/dev/null || true
  for n in "${!PODS[@]}"; do ip netns pids "$P-$n" 2>/dev/null | xargs -r kill 2>/dev/null || true; ip netns del "$P-$n" 2>/dev/null || true; done
  ip netns pids "$NODE" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$NODE" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$NODE"
ip -n "$NODE" link add br0 type bridge
ip -n "$NODE" link set br0 up
ip -n "$NODE" link set lo up
i=0
for n in "${!PODS[@]}"; do
  i=$((i + 1))
  ns=$P-$n
  ip netns add "$ns"
  ip link add "v$i-$$" netns "$NODE" type veth peer name eth0 netns "$ns"
  ip -n "$NODE" link set "v$i-$$" master br0 up
  ip -n "$ns" addr add "${PODS[$n]}/16" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done
sleep 1
ip netns exec "$NODE" tcpdump -i br0 -w capture.pcap -U -n -s 262144 --immediate-mode 2>/dev/null &
TCPDUMP_PID=$!
sleep 1

x() { local pod=$1; shift; ip netns exec "$P-$pod" "$@"; }
serve_http() { x "$1" python3 -m http.server "$3" --bind "$2" >/dev/null 2>&1 & }

serve_http cart 10.244.1.11 8080
serve_http cart 10.244.1.11 9102
serve_http payments 10.244.2.20 9000
x coredns socat UDP4-RECVFROM:53,bind=10.244.1.2,fork SYSTEM:'head -c 64' >/dev/null 2>&1 &
sleep 1.5

# Allowed by the policies.
x frontend curl -s -o /dev/null http://10.244.1.11:8080/            # frontend -> cart http (named port)
x frontend curl -s -o /dev/null http://10.244.1.11:8080/index.html
x cart curl -s -o /dev/null http://10.244.2.20:9000/                # cart -> payments
x prometheus curl -s -o /dev/null http://10.244.1.11:9102/          # monitoring scrape
x frontend sh -c 'echo "query example.svc" | socat -t1 - UDP4:10.244.1.2:53' >/dev/null || true
# Denied by the policies, and observed to flow: violations.
x debug curl -s -o /dev/null http://10.244.2.20:9000/               # dev/debug -> payments
x debug curl -s -o /dev/null http://10.244.1.11:8080/               # dev/debug -> cart
# Denied and stopped: denied attempts.
x debug curl -s -o /dev/null --max-time 1 http://10.244.1.11:5432/ || true   # refused (RST)
# payments can no longer route to the frontend: the frontend's attempt gets no answer.
x payments ip route add blackhole 10.244.1.10/32
x frontend curl -s -o /dev/null --max-time 2 http://10.244.2.20:9000/ || true
sleep 1.5
kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" 2>/dev/null || true
TCPDUMP_PID=
echo "wrote $(pwd)/capture.pcap"
