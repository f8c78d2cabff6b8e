#!/usr/bin/env bash
# A benchmark fleet: two backends and aux-srv as separate processes (so each
# backend's /metrics and /proc figures are its own), configured for load.
#
#   load-test/bench/fleet.sh start        # build first: cargo build --release --bins
#   load-test/bench/fleet.sh restart-aux [--no-wait]  # kill aux-srv, start it again
#   load-test/bench/fleet.sh stop
#
# Environment: BIN (folder of the release binaries, default target/release),
# RUN (state folder, default /tmp/instantchat-bench), BACKENDS (1 or 2),
# BACKEND_ENV (extra VAR=value words for the backends, e.g.
# "INSTANTCHAT_WS_WRITE_BUFFER_BYTES=4096").
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${BIN:-$ROOT/target/release}"
RUN="${RUN:-/tmp/instantchat-bench}"
BACKENDS="${BACKENDS:-2}"
TOKEN="bench-control-token-0123456789"
AUX=127.0.0.1:18080
mkdir -p "$RUN"

wait_ready() {
  for _ in $(seq 1 500); do
    if curl -fsS "http://$1/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.02
  done
  echo "fleet: $1 never became ready" >&2
  return 1
}

# Starts one service in the background, quiet but for warnings; its log and
# pid file are named after it. Usage: launch NAME BINARY [VAR=value...]
launch() {
  local name=$1 binary=$2
  shift 2
  env RUST_LOG=warn "$@" "$BIN/$binary" >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

start_backend() {
  local n=$1 extra
  read -ra extra <<<"${BACKEND_ENV:-}"
  launch "b$n" backend \
    INSTANTCHAT_ID="b$n" \
    INSTANTCHAT_LISTEN="127.0.0.1:1900$n" \
    INSTANTCHAT_CONTROL_LISTEN="127.0.0.1:1910$n" \
    INSTANTCHAT_PUBLIC_URL="ws://127.0.0.1:1900$n" \
    INSTANTCHAT_CONTROL_TOKEN="$TOKEN" \
    INSTANTCHAT_DEFENCES__JOINS_PER_MINUTE=100000000 \
    INSTANTCHAT_DEFENCES__JOINS_BURST=10000000 \
    INSTANTCHAT_DEFENCES__CONNECTIONS_PER_IP=100000 \
    INSTANTCHAT_DEFENCES__SURGE_MIN_PER_MINUTE=100000000 \
    INSTANTCHAT_DEFENCES__POW_AUTO_JOINS_PER_MINUTE=100000000 \
    INSTANTCHAT_EVACUATE_ON_SHUTDOWN=false \
    "${extra[@]}"
  wait_ready "127.0.0.1:1900$n"
}

start_aux() {
  local list=""
  for n in $(seq 1 "$BACKENDS"); do
    list="$list{id = \"b$n\", control_addr = \"127.0.0.1:1910$n\"},"
  done
  launch aux aux-srv \
    INSTANTCHAT_LISTEN="$AUX" \
    INSTANTCHAT_ADMIN_LISTEN="127.0.0.1:18090" \
    INSTANTCHAT_ADMIN_TOKEN="bench-admin-token-0123456789" \
    INSTANTCHAT_CONTROL_TOKEN="$TOKEN" \
    INSTANTCHAT_BACKENDS="[${list%,}]" \
    INSTANTCHAT_WEB_ROOT="$ROOT/web" \
    INSTANTCHAT_ROOM_CREATE_PER_MINUTE=100000000 \
    INSTANTCHAT_ROOM_CREATE_BURST=10000000 \
    INSTANTCHAT_SHUTDOWN_DRAIN_MS=0
  if [[ ${1:-} != --no-wait ]]; then wait_ready "$AUX"; fi
}

stop_one() {
  local f="$RUN/$1.pid"
  if [[ -f $f ]]; then
    local pid
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  fi
}

case "${1:-}" in
  start)
    for n in $(seq 1 "$BACKENDS"); do start_backend "$n"; done
    start_aux
    echo "fleet: aux http://$AUX, backends $(seq -s ' ' -f 'http://127.0.0.1:1900%g' 1 "$BACKENDS")"
    ;;
  restart-aux)
    # With --no-wait it returns as soon as the new process runs: the load
    # test's --restart-cmd times readiness itself.
    stop_one aux
    start_aux "${2:-}"
    ;;
  stop)
    stop_one aux
    for n in 1 2; do stop_one "b$n"; done
    ;;
  *)
    echo "usage: $0 start|restart-aux|stop" >&2
    exit 64
    ;;
esac
