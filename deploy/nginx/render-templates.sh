#!/usr/bin/env bash
# Renders instantchat's nginx templates, then runs the given command (the
# nginx image's entrypoint: `render-templates.sh nginx -g 'daemon off;'`).
#
#   templates/upstreams.conf.template         -> $NGINX_CONF_DIR/instantchat-upstreams.conf
#   templates/sites/$NGINX_SITE.conf.template -> $NGINX_CONF_DIR/instantchat-site.conf
#
# Only ${NGINX_*} is replaced (nginx's own $variables are left alone), and a
# template naming an NGINX_* variable that is unset or empty is an error.
# NGINX_TEMPLATE_DIR (default /etc/nginx/templates) and NGINX_CONF_DIR
# (default /etc/nginx/conf.d) say where; NGINX_SITE is http or https.
set -euo pipefail

template_dir=${NGINX_TEMPLATE_DIR:-/etc/nginx/templates}
conf_dir=${NGINX_CONF_DIR:-/etc/nginx/conf.d}
site=${NGINX_SITE:-}

case "$site" in
    http | https) ;;
    *)
        echo "render-templates: NGINX_SITE must be http or https (got '${site}')" >&2
        exit 2
        ;;
esac

render() {
    local template=$1 output=$2 name missing=()
    # The single quotes are meant: these are patterns for ${NGINX_…}.
    # shellcheck disable=SC2016
    for name in $(grep -o '\${NGINX_[A-Z0-9_]*}' "$template" | sort -u | tr -d '${}' || true); do
        if [[ -z "${!name:-}" ]]; then
            missing+=("$name")
        fi
    done
    if ((${#missing[@]})); then
        echo "render-templates: $template needs ${missing[*]} to be set" >&2
        return 1
    fi
    local names
    # shellcheck disable=SC2016
    names=$(grep -o '\${NGINX_[A-Z0-9_]*}' "$template" | sort -u | tr '\n' ' ' || true)
    envsubst "$names" <"$template" >"$output.tmp"
    mv "$output.tmp" "$output"
    echo "render-templates: wrote $output" >&2
}

mkdir -p "$conf_dir"
render "$template_dir/upstreams.conf.template" "$conf_dir/instantchat-upstreams.conf"
render "$template_dir/sites/$site.conf.template" "$conf_dir/instantchat-site.conf"

if (($#)); then
    exec "$@"
fi
