# shellcheck shell=bash
# Helpers of deploy/test-containers.sh (sourced): the engine, checks that
# count, waiting with a deadline, and what a failure prints.

passed=0
failed=0
skipped=0
failures=()
# The compose project a failure prints the logs of (set per stack).
current_project=""
current_dir=""
# Extra arguments of compose for it (the multi-node projects' -p and -f).
compose_args=()

say() { echo "containers: $*" >&2; }

# compose ARGS... — docker compose in the current stack's folder.
compose() { (cd "$current_dir" && "$DOCKER" compose "${compose_args[@]}" "$@"); }

# The state of the current stack, for a failure's report.
dump_stack() {
    [[ -n "$current_dir" ]] || return 0
    echo "---- docker compose ps ($current_project)" >&2
    compose ps -a >&2 || true
    local service
    for service in $(compose ps -a --services 2>/dev/null); do
        echo "---- logs of $service (last 40 lines)" >&2
        compose logs --no-color --tail 40 "$service" >&2 || true
    done
}

# check NAME COMMAND... — runs COMMAND; counts and prints the outcome, with
# the command's output and the stack's state when it failed.
check() {
    local name=$1 out
    shift
    out=$(mktemp)
    if "$@" >"$out" 2>&1; then
        passed=$((passed + 1))
        echo "ok   - $name"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL - $name"
        sed 's/^/    /' "$out" | tail -n 60
        dump_stack
        rm -f "$out"
        return 1
    fi
    rm -f "$out"
}

# skip NAME WHY — a check that cannot run yet, said out loud (not counted
# as passed).
skip() {
    skipped=$((skipped + 1))
    echo "SKIP - $1: $2"
}

# wait_for SECONDS WHAT COMMAND... — polls COMMAND (quietly) until it
# succeeds; fails with its last output after SECONDS.
wait_for() {
    local seconds=$1 what=$2 deadline out
    shift 2
    deadline=$((SECONDS + seconds))
    out=$(mktemp)
    until "$@" >"$out" 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "not within ${seconds}s: $what" >&2
            cat "$out" >&2
            rm -f "$out"
            return 1
        fi
        sleep 1
    done
    rm -f "$out"
}

# A free TCP port on 127.0.0.1 (the kernel's choice; the compose file
# publishes on it right after).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A random loopback address 127.X.Y.Z (not 127.0.0.1): the stack's public
# ports 80/443/8080 there clash with nothing else on the machine.
random_loopback() {
    echo "127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 2))"
}

# set_env FILE NAME VALUE — sets NAME=VALUE in a .env file.
set_env() {
    local file=$1 name=$2 value=$3
    if grep -q "^$name=" "$file"; then
        python3 - "$file" "$name" "$value" <<'EOF'
import sys
path, name, value = sys.argv[1:]
lines = open(path).read().splitlines()
lines = [f"{name}={value}" if l.startswith(name + "=") else l for l in lines]
open(path, "w").write("\n".join(lines) + "\n")
EOF
    else
        echo "$name=$value" >>"$file"
    fi
}

# Every container of the current stack runs, and those with a healthcheck
# are healthy.
all_healthy() {
    local ids id line bad=0
    ids=$(compose ps -q)
    [[ -n "$ids" ]] || { echo "no containers"; return 1; }
    for id in $ids; do
        line=$("$DOCKER" inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}' "$id")
        echo "$line"
        [[ "$line" == *" running healthy" ]] || bad=1
    done
    return "$bad"
}

# Prometheus (at HOST:PORT) has scraped every target it knows, at least
# EXPECTED of them, and each is up.
prometheus_targets_up() { # HOST:PORT EXPECTED
    curl -fsS "http://$1/api/v1/targets?state=active" | python3 -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
for t in targets:
    print(t["labels"]["job"], t["scrapeUrl"], t["health"], t.get("lastError", ""))
expected = int(sys.argv[1])
sys.exit(0 if len(targets) >= expected and all(t["health"] == "up" for t in targets) else 1)
' "$2"
}

# No container, volume or network of compose project $1 is left.
project_gone() {
    local left
    left=$("$DOCKER" ps -aq --filter "label=com.docker.compose.project=$1")
    left+=$("$DOCKER" volume ls -q --filter "label=com.docker.compose.project=$1")
    left+=$("$DOCKER" network ls -q --filter "label=com.docker.compose.project=$1")
    [[ -z "$left" ]] || { echo "left behind by $1: $left"; return 1; }
}

# The main process of SERVICE's container dies (SIGKILL from the host, as
# a crash would: `docker kill` counts as a manual stop, which the restart
# policy leaves alone); the engine restarts it and it is healthy again.
crash_and_restart() { # SERVICE
    local id before
    id=$(compose ps -q "$1")
    before=$("$DOCKER" inspect -f '{{.RestartCount}}' "$id")
    kill -KILL "$("$DOCKER" inspect -f '{{.State.Pid}}' "$id")"
    wait_for 60 "$1 restarted by its restart policy" restarted_since "$id" "$before" || return 1
    wait_for 90 "$1 healthy again" health_is "$id" healthy || return 1
    echo "$1: restart count $before -> $("$DOCKER" inspect -f '{{.RestartCount}}' "$id"), healthy"
}

# Container ID has restarted more than BEFORE times.
restarted_since() { # ID BEFORE
    (($("$DOCKER" inspect -f '{{.RestartCount}}' "$1") > $2))
}

# Container ID's health is STATUS.
health_is() { # ID STATUS
    [[ "$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$1")" == "$2" ]]
}
