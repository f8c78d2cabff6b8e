#!/usr/bin/env bash
# instantchat-backend.sh — add, drain and remove backends without a restart.
#
# On the gateway (or the single node), in the layout's folder:
#   add ID PUBLIC_ADDR [CONTROL_ADDR]  route /b/ID/ to PUBLIC_ADDR in nginx, then
#                                      add the backend to aux-srv (admin API)
#   drain ID                           aux-srv places no new rooms there
#   undrain ID                         undoes drain
#   evacuate ID                        drain, then move every room to the
#                                      other backends while people talk
#                                      (answers when done: moved, failed)
#   move ROOM [TO_ID]                  move one room (to the least loaded
#                                      other backend, or TO_ID)
#   remove ID [--wait SECS] [--force]  take it out of aux-srv (refused while
#                                      it holds rooms: --wait retries until
#                                      they expired, --force forgets them),
#                                      then out of nginx
#   list                               the backends, as aux-srv sees them
# On the monitoring node, in its folder:
#   target-add ID METRICS_ADDR         Prometheus scrapes it (no restart)
#   target-remove ID
#
# An ADDR is host:port; a bare host gets the default port (public 9001,
# control 9101). Settings, from the environment:
#   ADMIN_URL           aux-srv's admin API     (http://127.0.0.1:8090)
#   ADMIN_TOKEN         its token               (read from ENV_FILE)
#   ENV_FILE            the layout's .env       (./.env); its BACKENDS= line,
#                       if it has one, is rewritten to the current list
#   NGINX_BACKENDS_DIR  nginx's backends.d      (./nginx/backends.d)
#   NGINX_RELOAD        how to reload nginx     (docker compose exec -T nginx nginx -s reload)
#   PROM_TARGETS_DIR    Prometheus' backend targets (./prometheus/targets/backends)
set -euo pipefail

status=""
answer=""
ADMIN_URL=${ADMIN_URL:-http://127.0.0.1:8090}
ENV_FILE=${ENV_FILE:-./.env}
NGINX_BACKENDS_DIR=${NGINX_BACKENDS_DIR:-./nginx/backends.d}
NGINX_RELOAD=${NGINX_RELOAD:-docker compose exec -T nginx nginx -s reload}
PROM_TARGETS_DIR=${PROM_TARGETS_DIR:-./prometheus/targets/backends}

die() {
    echo "instantchat-backend: $*" >&2
    exit 1
}
say() {
    echo "instantchat-backend: $*" >&2
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

check_id() {
    [[ "$1" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "bad backend id '$1' (1-64 of A-Z a-z 0-9 - _ .)"
}

with_port() { # ADDR DEFAULT_PORT
    local addr=$1
    [[ "$addr" =~ ^[A-Za-z0-9.-]+(:[0-9]{1,5})?$ ]] || die "bad address '$addr' (host or host:port)"
    if [[ "$addr" != *:* ]]; then
        addr="$addr:$2"
    fi
    printf '%s' "$addr"
}

admin_token() {
    if [[ -n "${ADMIN_TOKEN:-}" ]]; then
        printf '%s' "$ADMIN_TOKEN"
    elif [[ -f "$ENV_FILE" ]] && grep -q '^ADMIN_TOKEN=.' "$ENV_FILE"; then
        grep '^ADMIN_TOKEN=' "$ENV_FILE" | tail -n 1 | cut -d= -f2-
    else
        die "set ADMIN_TOKEN, or run where ENV_FILE ($ENV_FILE) has it"
    fi
}

# admin METHOD PATH [BODY] — sets $status (the HTTP status) and $answer
# (the body).
admin() {
    local method=$1 path=$2 body=${3:-} out token
    token=$(admin_token) || exit 1
    out=$(mktemp)
    local args=(-sS -o "$out" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token")
    if [[ -n "$body" ]]; then
        args+=(-H 'Content-Type: application/json' --data "$body")
    fi
    if ! status=$(curl "${args[@]}" "$ADMIN_URL$path"); then
        rm -f "$out"
        die "cannot reach aux-srv's admin API at $ADMIN_URL"
    fi
    answer=$(cat "$out")
    rm -f "$out"
}

reload_nginx() {
    say "reloading nginx: $NGINX_RELOAD"
    sh -c "$NGINX_RELOAD" || die "reloading nginx failed"
}

# Rewrites ENV_FILE's BACKENDS= line from the files in NGINX_BACKENDS_DIR,
# so that aux-srv starts with the same list after a restart.
persist_backends() {
    [[ -f "$ENV_FILE" ]] && grep -q '^BACKENDS=' "$ENV_FILE" || return 0
    local list="" file id control
    for file in "$NGINX_BACKENDS_DIR"/*.map; do
        [[ -e "$file" ]] || continue
        id=$(basename "$file" .map)
        control=$(sed -n 's/^# control \(.*\)$/\1/p' "$file" | head -n 1)
        [[ -n "$control" ]] || die "$file has no '# control host:port' line"
        list+="${list:+, }{id=\"$id\", control_addr=\"$control\"}"
    done
    local tmp
    tmp=$(mktemp "$ENV_FILE.XXXXXX")
    while IFS= read -r line || [[ -n "$line" ]]; do
        if [[ "$line" == BACKENDS=* ]]; then
            line="BACKENDS=[$list]"
        fi
        printf '%s\n' "$line" >>"$tmp"
    done <"$ENV_FILE"
    chmod --reference="$ENV_FILE" "$tmp" 2>/dev/null || chmod 600 "$tmp"
    mv "$tmp" "$ENV_FILE"
    say "$ENV_FILE: BACKENDS=[$list]"
}

cmd_add() {
    (($# >= 2 && $# <= 3)) || usage
    local id=$1 public control
    check_id "$id"
    public=$(with_port "$2" 9001)
    control=$(with_port "${3:-${2%%:*}}" 9101)
    mkdir -p "$NGINX_BACKENDS_DIR"
    local map="$NGINX_BACKENDS_DIR/$id.map"
    printf '# control %s\n%s %s;\n' "$control" "$id" "$public" >"$map.tmp"
    mv "$map.tmp" "$map"
    say "nginx: /b/$id/ -> $public ($map)"
    reload_nginx
    admin POST /admin/backends "{\"id\":\"$id\",\"control_addr\":\"$control\"}"
    case "$status" in
        201) say "aux-srv: added $id" ;;
        409) say "aux-srv: $id was already there" ;;
        *) die "aux-srv refused to add $id ($status): $answer" ;;
    esac
    printf '%s\n' "$answer"
    persist_backends
    say "next, on the monitoring node: instantchat-backend.sh target-add $id ${public%%:*}:9001"
}

cmd_drain() { # ID true|false
    check_id "$1"
    admin POST "/admin/backends/$1/drain" "{\"draining\":$2}"
    case "$status" in
        200) say "aux-srv: $1 draining=$2" ;;
        202) say "aux-srv: $1 draining=$2 (the backend will be told when it answers)" ;;
        *) die "drain $1 failed ($status): $answer" ;;
    esac
    printf '%s\n' "$answer"
}

cmd_evacuate() {
    (($# == 1)) || usage
    check_id "$1"
    say "evacuating $1: moving its rooms to the other backends"
    admin POST "/admin/backends/$1/evacuate"
    [[ "$status" == 200 ]] || die "evacuate $1 failed ($status): $answer"
    printf '%s\n' "$answer"
    if [[ "$answer" != *'"failed":0'* ]]; then
        die "some rooms of $1 could not move (see above); they stay there"
    fi
}

cmd_move() {
    (($# >= 1 && $# <= 2)) || usage
    local body='{}'
    if (($# == 2)); then
        check_id "$2"
        body="{\"to\":\"$2\"}"
    fi
    admin POST "/admin/rooms/$1/move" "$body"
    [[ "$status" == 200 ]] || die "move $1 failed ($status): $answer"
    printf '%s\n' "$answer"
}

cmd_remove() {
    (($# >= 1)) || usage
    local id=$1 wait=0 force=false
    shift
    check_id "$id"
    while (($#)); do
        case "$1" in
            --wait) wait=${2:?--wait needs seconds}; shift 2 ;;
            --force) force=true; shift ;;
            *) usage ;;
        esac
    done
    local deadline=$((SECONDS + wait)) query=""
    if [[ $force == true ]]; then
        query="?force=true"
    fi
    while :; do
        admin DELETE "/admin/backends/$id$query"
        case "$status" in
            200) say "aux-srv: removed $id"; break ;;
            404) say "aux-srv: $id was not there"; break ;;
            409)
                if ((SECONDS >= deadline)); then
                    die "$id still holds rooms: drain it and use --wait, or --force ($answer)"
                fi
                say "$id still holds rooms; waiting"
                sleep "$(( (deadline - SECONDS) < 10 ? (deadline - SECONDS) : 10 ))"
                ;;
            *) die "removing $id failed ($status): $answer" ;;
        esac
    done
    rm -f "$NGINX_BACKENDS_DIR/$id.map"
    reload_nginx
    persist_backends
    say "next, on the monitoring node: instantchat-backend.sh target-remove $id"
}

cmd_target_add() {
    (($# == 2)) || usage
    check_id "$1"
    local addr
    addr=$(with_port "$2" 9001)
    mkdir -p "$PROM_TARGETS_DIR"
    printf -- '- targets: ["%s"]\n  labels: {backend: "%s"}\n' "$addr" "$1" >"$PROM_TARGETS_DIR/.$1.yml.tmp"
    mv "$PROM_TARGETS_DIR/.$1.yml.tmp" "$PROM_TARGETS_DIR/$1.yml"
    say "Prometheus scrapes $1 at $addr from its next file check ($PROM_TARGETS_DIR/$1.yml)"
}

cmd_target_remove() {
    (($# == 1)) || usage
    check_id "$1"
    rm -f "$PROM_TARGETS_DIR/$1.yml"
    say "Prometheus stops scraping $1"
}

(($#)) || usage
command=$1
shift
case "$command" in
    add) cmd_add "$@" ;;
    drain) (($# == 1)) || usage; cmd_drain "$1" true ;;
    undrain) (($# == 1)) || usage; cmd_drain "$1" false ;;
    evacuate) cmd_evacuate "$@" ;;
    move) cmd_move "$@" ;;
    remove) cmd_remove "$@" ;;
    list)
        admin GET /admin/backends
        [[ "$status" == 200 ]] || die "listing failed ($status): $answer"
        printf '%s\n' "$answer"
        ;;
    target-add) cmd_target_add "$@" ;;
    target-remove) cmd_target_remove "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
