#!/usr/bin/env bash
# Checks that a change to the collector (capture reader, decoder, flow table, JSONL sink) keeps
# `netpol-audit collect pcap` output byte-for-byte identical.
#
#   bash bench/collect-identical.sh save      # before the change: bundle the CLI, record outputs
#   bash bench/collect-identical.sh check     # after it: bundle again, record, diff against the saved ones
#
# Inputs: every capture of test/corpus/pcap (one by one with four option sets, and all together),
# examples/shop/capture.pcap and the synthetic captures in bench/out (bench/gen-capture.ts; the
# 3,000,000-packet one with default options and with --max-flows 5000, when present: a few minutes).
# Records, the stderr summary and the exit status are compared. SKIP_BIG=1 leaves out the big capture.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out/identical
MODE=${1:-}
case $MODE in
  save) DIR=$OUT/before ;;
  check) DIR=$OUT/after ;;
  *) echo "usage: $0 save|check" >&2; exit 2 ;;
esac
cd "$ROOT"
mkdir -p "$OUT"
BUNDLE=$OUT/netpol-audit-$MODE.mjs
node_modules/.bin/esbuild cli/index.ts --bundle --platform=node --format=esm --target=node20 \
  --packages=external "--outfile=$BUNDLE" --log-level=warning
rm -rf "$DIR" && mkdir -p "$DIR"
shopt -s nullglob
CORPUS=(test/corpus/pcap/*.pcap test/corpus/pcap/*.pcapng test/corpus/pcap/*.cap)
run() { # name, args...
  local name=$1
  shift
  local rc=0
  node "$BUNDLE" collect pcap "$@" --output "$DIR/$name.jsonl" 2>"$DIR/$name.err" || rc=$?
  echo "$rc" >"$DIR/$name.rc"
}
for c in "${CORPUS[@]}" examples/shop/capture.pcap bench/out/synthetic-200000-*.pcap; do
  n=$(basename "$c")
  run "$n.default" "$c"
  run "$n.idle5" "$c" --idle-timeout 5 --active-timeout 20
  run "$n.maxflows" "$c" --max-flows 50 --node n1
  run "$n.wire" "$c" --bytes wire
done
run ALL "${CORPUS[@]}"
if [ "${SKIP_BIG:-0}" != 1 ]; then
  for c in bench/out/synthetic-3000000-*.pcap; do
    n=$(basename "$c")
    run "$n.default" "$c"
    run "$n.maxflows" "$c" --max-flows 5000
  done
fi
echo "$(ls "$DIR" | wc -l) files in $DIR"
if [ "$MODE" = check ]; then
  diff -r -q "$OUT/before" "$OUT/after" && echo 'identical'
fi
