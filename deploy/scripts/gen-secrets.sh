#!/usr/bin/env bash
# gen-secrets.sh [DIR] — makes DIR/.env (DIR: the current folder) from
# DIR/.env.example if there is none, then fills every empty *_TOKEN,
# *_PASSWORD and *_SECRET in it with a random value. Values already set are
# kept, so running it again changes nothing. The file is made readable by
# its owner only.
set -euo pipefail

dir=${1:-.}
env_file="$dir/.env"
example="$dir/.env.example"

if [[ ! -f "$env_file" ]]; then
    if [[ ! -f "$example" ]]; then
        echo "gen-secrets: neither $env_file nor $example exists" >&2
        exit 1
    fi
    (umask 077 && cp "$example" "$env_file")
    echo "gen-secrets: created $env_file from $example" >&2
fi
chmod 600 "$env_file"

random_secret() {
    if command -v openssl >/dev/null 2>&1; then
        openssl rand -hex 32
    else
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'
    fi
}

tmp=$(mktemp "$env_file.XXXXXX")
trap 'rm -f "$tmp"' EXIT
filled=()
while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ "$line" =~ ^([A-Z0-9_]*(TOKEN|PASSWORD|SECRET))=$ ]]; then
        name=${BASH_REMATCH[1]}
        line="$name=$(random_secret)"
        filled+=("$name")
    fi
    printf '%s\n' "$line" >>"$tmp"
done <"$env_file"
chmod 600 "$tmp"
mv "$tmp" "$env_file"
trap - EXIT

if ((${#filled[@]})); then
    echo "gen-secrets: filled ${filled[*]} in $env_file" >&2
else
    echo "gen-secrets: no empty secret in $env_file" >&2
fi
