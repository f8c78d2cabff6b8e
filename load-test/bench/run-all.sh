#!/usr/bin/env bash
# Runs every benchmark of docs/BENCHMARKS.md and writes, per run, the table
# (NAME.txt), the JSON report (NAME.json) and the plot (NAME.svg) into
# docs/bench/, plus machine.txt. Each run gets a fresh fleet (fleet.sh), so
# memory figures start from an empty backend.
#
#   cargo build --release --bins          # backend, aux-srv, load-test
#   load-test/bench/run-all.sh            # all runs (about 10 minutes)
#   load-test/bench/run-all.sh fanout-100k idle-1b   # some of them
#
# Environment: BIN (default target/release), OUT (default docs/bench).
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export BIN="${BIN:-$ROOT/target/release}"
OUT="${OUT:-$ROOT/docs/bench}"
FLEET="$ROOT/load-test/bench/fleet.sh"
AUX=http://127.0.0.1:18080
# The migrate runs call aux-srv's admin API (fleet.sh sets this token).
MIGRATE_ADMIN="--admin http://127.0.0.1:18090 --admin-token bench-admin-token-0123456789"
mkdir -p "$OUT"
# One benchmark at a time on this machine: the fleet uses fixed ports, and two
# runs would share (and skew) the CPU.
exec 9>"${LOCK:-/tmp/instantchat-bench.lock}"
flock 9

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel: $(uname -sr)"
  echo "uptime: $(uptime)"
  echo; lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|Socket|MHz|L2|L3"
  echo; free -h
  echo; echo "open files (soft/hard): $(ulimit -Sn)/$(ulimit -Hn)"
  echo "ephemeral ports: $(cat /proc/sys/net/ipv4/ip_local_port_range)"
} >"$OUT/machine.txt"

# name | backends | extra backend env | load-test arguments
RUNS=(
  "idle-1b|1||idle --connections 19000 --room-size 4 --duration 20s"
  "idle-2b|2|INSTANTCHAT_MAX_CONNECTIONS=19500|idle --connections 38000 --room-size 4 --duration 20s --workers 2"
  "fanout-100k|2||fanout --members 1000 --publishers 50 --rate 100 --duration 30s --workers 2"
  "fanout-100k-1w|2||fanout --members 1000 --publishers 50 --rate 100 --duration 30s"
  "fanout-300k|2||fanout --members 1000 --publishers 100 --rate 300 --duration 30s --workers 2"
  "fanout-600k|2||fanout --members 1000 --publishers 100 --rate 600 --duration 30s --workers 2"
  "rooms-original|2||rooms --rooms 100 --room-size 4 --every-min 2s --every-max 5s --duration 30s"
  "rooms-5000|2||rooms --rooms 5000 --room-size 4 --every-min 3s --every-max 3s --duration 30s --workers 2"
  "connect|1||connect --connections 18000 --room-size 4 --no-lookup --duration 10s --workers 2"
  "aux|2||aux --concurrency 32 --duration 20s --workers 2 --sources 8"
  "aux-restart|2||aux --concurrency 32 --duration 10s --create-share 1 --workers 2 --sources 8"
  "migrate-1000|2||migrate --members 1000 --senders 20 --rate 100 --warmup 5s --after 5s $MIGRATE_ADMIN"
  "evacuate-2000|2||migrate --rooms 2000 --room-size 5 --every 2s --warmup 5s --after 3s --drain 5s $MIGRATE_ADMIN"
)

want() {
  [[ $# -le 1 ]] && return 0
  for w in "${@:2}"; do [[ $w == "$1" ]] && return 0; done
  return 1
}

status=0
for run in "${RUNS[@]}"; do
  IFS='|' read -r name backends env args <<<"$run"
  want "$name" "$@" || continue
  "$FLEET" stop
  BACKENDS=$backends BACKEND_ENV=$env "$FLEET" start >/dev/null || { echo "$name: fleet did not start" >&2; status=1; continue; }
  extra=()
  if [[ $name == aux-restart ]]; then
    extra=(--restart-cmd "$FLEET restart-aux --no-wait")
  fi
  # shellcheck disable=SC2086
  cmd=("$BIN/load-test" $args --aux "$AUX" --quiet --json "$OUT/$name.json" --plot "$OUT/$name.svg" "${extra[@]}")
  echo "== $name: load-test $args" >&2
  {
    echo "\$ load-test $args${extra:+ --restart-cmd '$FLEET restart-aux --no-wait'}"
    echo "(fleet: $backends backend(s)${env:+, $env}; load before: $(cut -d' ' -f1-3 /proc/loadavg))"
    "${cmd[@]}" 2>&1
    echo "exit: $?"
  } | tee "$OUT/$name.txt" >&2
done
"$FLEET" stop
exit $status
