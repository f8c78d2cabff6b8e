# shellcheck shell=bash disable=SC2034,SC2154
# (SC2034, SC2154: variables shared with deploy/test-containers.sh, which sources this.)
# deploy/multi-node on one engine, a stand-in for its machines (sourced by
# deploy/test-containers.sh): the gateway, backend nodes b1 and b2 and the
# monitoring node are separate compose projects from their own folders and
# .env files, joined by one shared network "instantchat-fleet" in place of
# the machines' private network. There each node's services have a name
# where the real nodes have an address:
#
#   gateway-aux:8080  gateway-files:8085  gateway-node:9100   (the gateway)
#   bN:9001 (websockets, /metrics)  bN:9101 (control)  bN-node:9100
#
# Then the scale-out of docs/OPERATIONS.md ("Adding a backend"): node b3
# starts, scripts/instantchat-backend.sh adds it on the gateway and to
# Prometheus on the monitoring node, and a chat runs in a room placed on it.

FLEET_NETWORK=instantchat-fleet

# The compose file joining a node's services to the shared network (the
# test's only addition to the shipped files: on real machines it is the
# private network between them).
fleet_override() { # FILE SERVICE=ALIAS... (ALIAS "-": the service also keeps its project network)
    local file=$1 pair service alias
    shift
    {
        echo "services:"
        for pair in "$@"; do
            service=${pair%%=*}
            alias=${pair#*=}
            echo "  $service:"
            echo "    networks:"
            if [[ "$alias" == -* ]]; then
                alias=${alias#-}
                echo "      default: {}"
            fi
            [[ "$service" == nginx ]] && echo "      instantchat: {ipv4_address: \"\${NGINX_IP:-172.30.50.10}\"}"
            [[ "$service" == aux-srv || "$service" == file-srv ]] && echo "      instantchat: {}"
            echo "      fleet: {aliases: [\"$alias\"]}"
        done
        echo "networks:"
        echo "  fleet: {external: true, name: $FLEET_NETWORK}"
    } >"$file"
}

# The node the next checks (and failure reports) are about.
use_node() { # DIR PROJECT
    current_dir=$1
    current_project=$2
    compose_args=(-p "$2" -f compose.yaml -f fleet.yaml)
}

start_backend_node() { # ID
    local id=$1 dir=$work/nodes/$1
    mkdir -p "$work/nodes"
    cp -a "$work/deploy/multi-node/backend" "$dir"
    cp "$dir/.env.example" "$dir/.env"
    set_env "$dir/.env" BACKEND_ID "$id"
    set_env "$dir/.env" NODE_IP "$(random_loopback)"
    set_env "$dir/.env" DOMAIN "$MULTI_DOMAIN"
    set_env "$dir/.env" NOFILE_LIMIT "$(nofile_limit)"
    set_env "$dir/.env" CONTROL_TOKEN "$(grep '^CONTROL_TOKEN=' "$work/deploy/multi-node/gateway/.env" | cut -d= -f2-)"
    fleet_override "$dir/fleet.yaml" "backend=$id" "node-exporter=$id-node"
    projects+=("instantchat-$id")
    use_node "$dir" "instantchat-$id"
    compose up -d --wait --wait-timeout 180
}

stack_multi_node() {
    MULTI_DOMAIN=chat.test
    local gateway monitoring public_ip prometheus
    gateway=$(stack_folder multi-node/gateway)
    monitoring=$(stack_folder multi-node/monitoring)
    public_ip=$(random_loopback)
    [[ -d "$work/letsencrypt" ]] || make_certificate "$work" "$MULTI_DOMAIN"
    check "multi-node: the shared network $FLEET_NETWORK" \
        "$DOCKER" network create "$FLEET_NETWORK"

    # The gateway: its .env, and where it finds b1 and b2 (what an operator
    # edits: the backends' private addresses, here their names).
    (cd "$gateway" && ../../scripts/gen-secrets.sh) 2>/dev/null
    local admin_port
    admin_port=$(free_port)
    set_env "$gateway/.env" DOMAIN "$MULTI_DOMAIN"
    set_env "$gateway/.env" LETSENCRYPT_DIR "$work/letsencrypt"
    set_env "$gateway/.env" ACME_WEBROOT "$work/acme"
    set_env "$gateway/.env" PUBLIC_BIND "$public_ip"
    set_env "$gateway/.env" GATEWAY_IP "$(random_loopback)"
    set_env "$gateway/.env" ADMIN_PORT "$admin_port"
    set_env "$gateway/.env" BACKENDS '[{id="b1", control_addr="b1:9101"}, {id="b2", control_addr="b2:9101"}]'
    local id
    for id in b1 b2; do
        printf '# control %s:9101\n%s %s:9001;\n' "$id" "$id" "$id" >"$gateway/nginx/backends.d/$id.map"
    done
    fleet_override "$gateway/fleet.yaml" nginx=gateway-nginx aux-srv=gateway-aux \
        file-srv=gateway-files node-exporter=gateway-node

    # The monitoring node: Prometheus scrapes the others by their names.
    (cd "$monitoring" && ../../scripts/gen-secrets.sh) 2>/dev/null
    local monitoring_ip
    monitoring_ip=$(random_loopback)
    set_env "$monitoring/.env" MONITORING_BIND "$monitoring_ip"
    set_env "$monitoring/.env" COMPOSE_PROFILES ""
    local targets=$monitoring/prometheus/targets
    echo '- targets: ["gateway-aux:8080"]' >"$targets/aux.yml"
    echo '- targets: ["gateway-files:8085"]' >"$targets/files.yml"
    printf -- '- targets: ["%s:9001"]\n  labels: {backend: %s}\n' b1 b1 >"$targets/backends/b1.yml"
    printf -- '- targets: ["%s:9001"]\n  labels: {backend: %s}\n' b2 b2 >"$targets/backends/b2.yml"
    cat >"$targets/nodes.yml" <<'EOF'
- targets: ["node-exporter:9100"]
  labels: {node: monitoring}
- targets: ["gateway-node:9100"]
  labels: {node: gateway}
- targets: ["b1-node:9100"]
  labels: {node: backend-b1}
- targets: ["b2-node:9100"]
  labels: {node: backend-b2}
EOF
    fleet_override "$monitoring/fleet.yaml" prometheus=-monitoring-prometheus

    check "multi-node: backend node b1 up (docker compose up -d --wait)" start_backend_node b1
    check "multi-node: backend node b2 up" start_backend_node b2
    projects+=(instantchat-gateway instantchat-monitoring)
    use_node "$gateway" instantchat-gateway
    check "multi-node: gateway up (nginx with TLS, aux-srv, file-srv)" \
        compose up -d --wait --wait-timeout 240
    use_node "$monitoring" instantchat-monitoring
    check "multi-node: monitoring up (Prometheus)" compose up -d --wait --wait-timeout 180
    prometheus=$monitoring_ip:9090

    use_node "$gateway" instantchat-gateway
    check "multi-node: a chat through the gateway's nginx" \
        chat "https://$MULTI_DOMAIN" "$public_ip:443" multi-room --ca "$work/ca.pem"
    # Itself, aux-srv, file-srv, b1, b2, four node-exporters.
    check "multi-node: Prometheus scrapes all 9 targets on the other nodes, every one up" \
        wait_for 90 "every target up" prometheus_targets_up "$prometheus" 9

    # Scale out: node b3, then the script on the gateway and on monitoring.
    check "multi-node: backend node b3 up" start_backend_node b3
    use_node "$gateway" instantchat-gateway
    check "multi-node: instantchat-backend.sh add b3 b3 (on the gateway)" \
        sh -c "cd '$gateway' && ADMIN_URL=http://127.0.0.1:$admin_port \
            NGINX_RELOAD='$DOCKER compose ${compose_args[*]} exec -T nginx nginx -s reload' \
            ../../scripts/instantchat-backend.sh add b3 b3"
    check "multi-node: the gateway's .env lists b3 in BACKENDS" grep -q 'id="b3"' "$gateway/.env"
    check "multi-node: instantchat-backend.sh target-add b3 b3:9001 (on monitoring)" \
        sh -c "cd '$monitoring' && ../../scripts/instantchat-backend.sh target-add b3 b3:9001"
    check "multi-node: Prometheus scrapes b3 too (10 targets up)" \
        wait_for 90 "every target up" prometheus_targets_up "$prometheus" 10
    # New rooms go to b3 while b1 and b2 drain.
    local scale="cd '$gateway' && ADMIN_URL=http://127.0.0.1:$admin_port ../../scripts/instantchat-backend.sh"
    check "multi-node: drain b1 and b2" sh -c "$scale drain b1 && $scale drain b2"
    check "multi-node: a chat in a room placed on b3" \
        chat "https://$MULTI_DOMAIN" "$public_ip:443" on-b3 --ca "$work/ca.pem" --backend b3
    check "multi-node: undrain b1 and b2" sh -c "$scale undrain b1 && $scale undrain b2"

    local node dir
    for node in gateway monitoring b1 b2 b3; do
        case "$node" in
            gateway) dir=$gateway ;;
            monitoring) dir=$monitoring ;;
            *) dir=$work/nodes/$node ;;
        esac
        use_node "$dir" "instantchat-$node"
        check "multi-node: docker compose down -v (instantchat-$node)" compose down -v
        check "multi-node: nothing of instantchat-$node is left" project_gone "instantchat-$node"
    done
    compose_args=()
    check "multi-node: the shared network removed" "$DOCKER" network rm "$FLEET_NETWORK"
}
