#!/usr/bin/env bash
# `make bench`, part 2: the push of a 50,000-record snapshot to the built-in simulator on
# loopback, at 0% and 30% injected faults (all kinds; slow answers just past the
# client's timeout), measured with /usr/bin/time -v: records per second until every
# record is acknowledged. PUSH_RECORDS changes the size; XINYONG_BIN the binary. The
# generated decisions date from early 2021: the push runs as of 2023-01-01
# (XINYONG_TODAY), before their 3-year publication ends.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${XINYONG_BIN:-${CARGO_TARGET_DIR:-target}/release/xinyong}
DIR=${BENCH_DIR:-${CARGO_TARGET_DIR:-target}/bench-data}/push-$(basename "$BIN")
ROWS=${PUSH_RECORDS:-50000}
MAPPINGS=$(pwd)/fixtures/bench/mappings
SECRET=bench-secret
rm -rf "$DIR"
mkdir -p "$DIR/input"
"$BIN" gen-load --rows "$ROWS" --out "$DIR/input/export.csv" > /dev/null

printf "%-12s %9s %9s %12s %10s %8s\n" "faults" "records" "wall s" "records/s" "peak MiB" "exit"
for rate in 0 0.3; do
  run="$DIR/run-$rate"
  mkdir -p "$run"
  cp -r "$DIR/input" "$run/input"
  printf 'data_dir = "data"\nmappings = "%s"\n' "$MAPPINGS" > "$run/xinyong.toml"
  (cd "$run" && "$BIN" --config xinyong.toml run --no-push > /dev/null)
  "$BIN" simulate --platform bench --listen 127.0.0.1:0 --app "tongjiang-city=$SECRET" \
    --fault-rate "$rate" --slow-ms 1200 --processing-ms 300 > "$run/sim.out" 2> "$run/sim.err" &
  sim=$!
  for _ in $(seq 50); do grep -q "listening on" "$run/sim.out" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/^listening on //p' "$run/sim.out")
  cat >> "$run/xinyong.toml" <<TOML

[[platform]]
name = "bench"
title = "bench"
base_url = "$url"
app_id = "tongjiang-city"
secret = "$SECRET"
timeout_seconds = 1
retry_budget_seconds = 600
TOML
  code=0
  XINYONG_TODAY=${PUSH_TODAY:-2023-01-01} /usr/bin/time -v "$BIN" --config "$run/xinyong.toml" push > "$run/summary.txt" 2> "$run/time.txt" || code=$?
  kill "$sim" 2>/dev/null || true
  wait "$sim" 2>/dev/null || true
  records=$(sed -n 's/.*接受 accepted \([0-9]*\).*/\1/p' "$run/summary.txt" | head -1)
  wall=$(grep "Elapsed (wall clock)" "$run/time.txt" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$run/time.txt" | awk '{print $NF}')
  secs=$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  printf "%-12s %9s %9.2f %12.0f %10.1f %8s\n" "$rate" "${records:-?}" "$secs" \
    "$(echo "${records:-0} / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$code"
done
