#!/usr/bin/env bash
# Callgrind profile of the consume path: ferrafka's, and the raw loop's for comparison.
#
# Callgrind counts instructions, so the figures repeat on a loaded machine (timings do not).
# The script starts one embedded broker (`ferrafka-bench broker`), fills a topic once (with
# an unprofiled raw round), then runs one consume round per client under
# `valgrind --tool=callgrind` against that topic and prints, per client, the total
# instructions, instructions per message, and the top functions by self cost
# (`callgrind_annotate --inclusive=no`). The whole client process is profiled, start-up and
# group join included (a few million instructions, e.g. config validation's string
# distances); at the default 100 k messages the consume path dominates. Under valgrind a
# 100 k-message round takes 10-30 s.
#
# CLIENTS="events0 events1" runs ferrafka with no event subscriber and with one (a counting
# closure). Their totals differ by more than the events cost (under valgrind the threads'
# interleaving, and so fetch sizes and allocations, change from run to run): the line
# "events handed to subscribers" gives the inclusive cost of `Monitor::emit_to_all`, which
# only runs with a subscriber (building an event, a few copies inlined where it is emitted, is
# not in it).
#
# Environment: MESSAGES (100000), PARTITIONS (1), TOP (15), CLIENTS ("ferrafka raw"),
# OUT (/var/tmp/ferrafka-profile), CARGO_TARGET_DIR (/var/tmp/ferrafka-target),
# MAX_MESSAGES (100, ferrafka's default batch size).
set -euo pipefail

MESSAGES=${MESSAGES:-100000}
PARTITIONS=${PARTITIONS:-1}
TOP=${TOP:-15}
CLIENTS=${CLIENTS:-"ferrafka raw"}
OUT=${OUT:-/var/tmp/ferrafka-profile}
MAX_MESSAGES=${MAX_MESSAGES:-100}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/ferrafka-target}

cd "$(dirname "$0")/../.."
cargo build --release -p ferrafka-bench
bin=$CARGO_TARGET_DIR/release/ferrafka-bench
mkdir -p "$OUT"

# The broker serves until its stdin closes: a coprocess keeps that pipe open for us.
coproc BROKER { exec "$bin" broker; }
broker_pid=$BROKER_PID
trap 'kill "$broker_pid" 2>/dev/null || true' EXIT
read -r addr <&"${BROKER[0]}"
echo "broker at $addr"

topic=ferrafka-bench-profile-$$
common=(--brokers "$addr" --consume-topic "$topic" --messages "$MESSAGES"
  --partitions "$PARTITIONS" --max-messages "$MAX_MESSAGES" --phase consume --rounds 1)
# Fills the topic; the raw round it measures is a check that the topic is readable.
"$bin" "${common[@]}" --client raw --peer-python /nonexistent >/dev/null

for client in $CLIENTS; do
  out=$OUT/callgrind.$client.out
  # Under valgrind everything runs ~50x slower: a generous timeout keeps the phase whole.
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$bin" "${common[@]}" --client "$client" --timeout 900 --peer-python /nonexistent \
    >"$OUT/bench.$client.log" 2>"$OUT/valgrind.$client.log"
  total=$(callgrind_annotate "$out" | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
  echo
  echo "== $client: $total instructions in all, $((total / MESSAGES)) per message =="
  grep '^round' "$OUT/bench.$client.log" || true
  # awk stops at TOP rows itself: `head` would end the pipe early (SIGPIPE under pipefail).
  callgrind_annotate --inclusive=no "$out" 2>/dev/null |
    awk -v top="$TOP" '/file:function/ { on = 1; next }
      on && NF && !/^-+$/ && shown < top { print; shown++ }'
  # What handing events to subscribers cost (inclusive; absent when nobody subscribed).
  emit=$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null |
    awk '/Monitor::emit_to_all/ && !done { gsub(",", "", $1); print $1; done = 1 }')
  if [[ -n $emit ]]; then
    echo "events handed to subscribers (Monitor::emit_to_all, inclusive): $emit instructions," \
      "$(awk -v e="$emit" -v m="$MESSAGES" 'BEGIN { printf "%.2f", e / m }') per message"
  else
    echo "events handed to subscribers: none (Monitor::emit_to_all never ran)"
  fi
done
echo
echo "callgrind files in $OUT (open with kcachegrind or callgrind_annotate --inclusive=yes)"
