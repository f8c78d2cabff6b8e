#!/usr/bin/env bash
# healthcheck [URL] — exits 0 when URL (http:// only) answers 200, 1 otherwise.
# Without URL: http://127.0.0.1:<port of $INSTANTCHAT_LISTEN>/readyz, the
# service's own readiness (503 while starting or draining).
# Plain bash (/dev/tcp): the runtime images carry no curl or wget.
set -u

url=${1:-}
if [[ -z "$url" ]]; then
    listen=${INSTANTCHAT_LISTEN:-}
    if [[ "$listen" != *:* ]]; then
        echo "healthcheck: give a URL or set INSTANTCHAT_LISTEN" >&2
        exit 1
    fi
    url="http://127.0.0.1:${listen##*:}/readyz"
fi
if [[ "$url" != http://* ]]; then
    echo "healthcheck: only http:// URLs: $url" >&2
    exit 1
fi
rest=${url#http://}
hostport=${rest%%/*}
path=/
if [[ "$rest" == */* ]]; then
    path=/${rest#*/}
fi
host=${hostport%:*}
port=${hostport##*:}
if [[ "$host" == "$hostport" ]]; then
    port=80
fi

# A stuck service must not hang the check: give up after 3 seconds.
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$hostport" >&3
if ! IFS= read -r -t 3 status_line <&3; then
    echo "healthcheck: no answer from $url" >&2
    exit 1
fi
status_line=${status_line%$'\r'}
if [[ "$status_line" =~ ^HTTP/1\.[01]\ 200 ]]; then
    exit 0
fi
echo "healthcheck: $url answered: $status_line" >&2
exit 1
