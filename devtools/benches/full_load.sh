#!/usr/bin/env bash
# `make bench`, part 1: the penalties full load (issue 8) through the real pipeline —
# `xinyong run --no-push`, the same code path as a nightly run — on generated exports
# of 100k, 1M and 10M rows, each measured with /usr/bin/time -v; then the nightly
# incremental case: a 1M-record history and a new export of 10k rows.
#
# Inputs are generated once (fixed seed) and cached under $BENCH_DIR
# (default target/bench-data). BENCH_SIZES="100000 1000000" limits the sizes;
# BENCH_UNSORTED_SIZES (default "1000000") the exports whose rows are not in
# decision-date order, as departments' exports come (`gen-load --unsorted`). The nights
# after the 1M history: 10k rows in two recent months, and 10k spread over every month
# (`--spread`), each also as a share of the full load's wall time.
#
# The unsorted 1M export is also run through the polars peer (peers/polars_job.py, the
# same job) right after xinyong, its output checked row for row against xinyong's
# (peers/compare.py), and the two wall times compared. BENCH_PYTHON names the Python
# with polars (`make bench` installs peers/requirements.txt into a venv); without one
# the peer is skipped. After the peer, iconv decodes the same export to nothing: the
# floor of any job that reads it, which the bench prints xinyong's time against.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${XINYONG_BIN:-${CARGO_TARGET_DIR:-target}/release/xinyong}
DIR=${BENCH_DIR:-${CARGO_TARGET_DIR:-target}/bench-data}
SIZES=${BENCH_SIZES:-"100000 1000000 10000000"}
MAPPINGS=$(pwd)/fixtures/bench/mappings
mkdir -p "$DIR"

UNSORTED=${BENCH_UNSORTED_SIZES:-"1000000"}

input() { # rows [incremental_of] [flag] -> path of the cached export
  local rows=$1 inc=${2:-} flag=${3:-}
  local name="penalties-${rows}${inc:+-after-$inc}${flag:+-${flag#--}}.csv"
  if [ ! -f "$DIR/inputs/$name" ]; then
    echo "generating $name ..." >&2
    "$BIN" gen-load --rows "$rows" --out "$DIR/inputs/$name" ${inc:+--incremental-of "$inc"} $flag >&2
  fi
  echo "$DIR/inputs/$name"
}

setup() { # name input -> run directory with config and the input dropped in
  local run="$DIR/runs/$1"
  rm -rf "$run"
  mkdir -p "$run/input"
  ln -s "$(realpath "$2")" "$run/input/export.csv"
  cat > "$run/xinyong.toml" <<TOML
data_dir = "data"
mappings = "$MAPPINGS"
TOML
  echo "$run"
}

measure() { # label rows run-dir
  local label=$1 rows=$2 run=$3
  /usr/bin/time -v "$BIN" --config "$run/xinyong.toml" run --no-push > "$run/summary.txt" 2> "$run/time.txt" || {
    echo "run failed:"; cat "$run/summary.txt" "$run/time.txt"; exit 1; }
  local wall rss secs
  wall=$(grep "Elapsed (wall clock)" "$run/time.txt" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$run/time.txt" | awk '{print $NF}')
  secs=$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  LAST_SECS=$secs
  printf "%-32s %10s %9.2f %12.0f %10.1f%s\n" "$label" "$rows" "$secs" "$(echo "$rows / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "${4:-}"
  grep -E "读取 read" "$run/summary.txt" | sed 's/^ */    /' >&2
}

printf "%-32s %10s %9s %12s %10s\n" "scenario" "rows" "wall s" "rows/s" "peak MiB"
FULL_1M=
for n in $SIZES; do
  run=$(setup "full-$n" "$(input "$n")")
  measure "full load" "$n" "$run"
  [ "$n" = 1000000 ] && FULL_1M=$LAST_SECS
done
PY=${BENCH_PYTHON:-}
PEERS=$(pwd)/devtools/benches/peers
for n in $UNSORTED; do
  export_file=$(input "$n" "" --unsorted)
  run=$(setup "unsorted-$n" "$export_file")
  measure "full load, unsorted" "$n" "$run"
  ours=$LAST_SECS
  [ "$n" = 1000000 ] && [ -z "$FULL_1M" ] && FULL_1M=$LAST_SECS
  if [ -n "$PY" ] && "$PY" -c "import polars, polars_hash" 2>/dev/null; then
    peer="$DIR/runs/polars-$n"
    rm -rf "$peer"
    /usr/bin/time -v "$PY" "$PEERS/polars_job.py" "$export_file" "$peer" > "$DIR/runs/polars-$n.txt" 2> "$DIR/runs/polars-$n.time" || {
      echo "the polars peer failed:"; cat "$DIR/runs/polars-$n.txt" "$DIR/runs/polars-$n.time"; exit 1; }
    wall=$(grep "Elapsed (wall clock)" "$DIR/runs/polars-$n.time" | awk '{print $NF}')
    rss=$(grep "Maximum resident set size" "$DIR/runs/polars-$n.time" | awk '{print $NF}')
    secs=$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    printf "%-32s %10s %9.2f %12.0f %10.1f\n" "  polars peer, same job" "$n" "$secs" "$(echo "$n / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
    echo "    xinyong/polars wall = $(echo "$ours / $secs" | bc -l | xargs printf "%.2f")× (goal ≤ 0.33×)" >&2
    "$PY" "$PEERS/compare.py" "$run/data" "$peer" >&2 || { echo "the peer's output differs from xinyong's"; exit 1; }
  else
    echo "    (no polars: set BENCH_PYTHON, or run make bench, to time the polars peer)" >&2
  fi
  if command -v iconv > /dev/null; then
    # A floor, not a peer: the export's bytes decoded and thrown away, nothing else.
    /usr/bin/time -f "%e %M" -o "$DIR/runs/iconv-$n.time" iconv -f GB18030 -t UTF-8 "$export_file" > /dev/null || {
      echo "iconv failed:"; cat "$DIR/runs/iconv-$n.time"; exit 1; }
    read -r secs rss < <(tail -1 "$DIR/runs/iconv-$n.time")
    printf "%-32s %10s %9.2f %12.0f %10.1f\n" "  decoding alone (iconv)" "$n" "$secs" "$(echo "$n / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
    echo "    xinyong/iconv wall = $(echo "$ours / $secs" | bc -l | xargs printf "%.2f")×" >&2
  fi
done

# The run before a night, on the copied history with nothing new to read: a store is
# used night after night, and a night opens it as the previous run closed it. A copied
# store is a new file to its first open, which checks it page by page (PRAGMA
# quick_check, ~30 ms at this history's size); the nights after skip that while the
# files are as the last clean close left them (pipeline/src/state/closed_stamp.rs).
previous_night() { # run-dir
  "$BIN" --config "$1/xinyong.toml" run --no-push > /dev/null 2>&1 || {
    echo "the run before the night failed"; exit 1; }
}

# Incremental: the 1M full load's state is the history; a new 10k export arrives.
if [ -d "$DIR/runs/full-1000000/data" ]; then
  run="$DIR/runs/incremental"
  rm -rf "$run"
  cp -r "$DIR/runs/full-1000000" "$run"
  sed -i "s#^mappings = .*#mappings = \"$MAPPINGS\"#" "$run/xinyong.toml"
  # The night's drop directory holds the new export only (read files are archived).
  rm "$run/input/export.csv"
  previous_night "$run"
  ln -s "$(realpath "$(input 10000 1000000)")" "$run/input/export-next.csv"
  measure "night, 2 recent months (1M+10k)" 10000 "$run"
  echo "    = $(echo "100 * $LAST_SECS / $FULL_1M" | bc -l | xargs printf "%.1f")% of the 1M full load" >&2
  run="$DIR/runs/spread"
  rm -rf "$run"
  cp -r "$DIR/runs/full-1000000" "$run"
  sed -i "s#^mappings = .*#mappings = \"$MAPPINGS\"#" "$run/xinyong.toml"
  rm "$run/input/export.csv"
  previous_night "$run"
  ln -s "$(realpath "$(input 10000 1000000 --spread)")" "$run/input/export-next.csv"
  measure "night, spread over all months" 10000 "$run"
  echo "    = $(echo "100 * $LAST_SECS / $FULL_1M" | bc -l | xargs printf "%.1f")% of the 1M full load" >&2
fi
