#!/usr/bin/env bash
# Installs the tools the deploy checks (deploy/check, `cargo test -p
# instantchat-deploy-check`) run: Debian's nginx, promtool (package
# prometheus), node-exporter, openssl, envsubst, curl, systemd-analyze and
# ShellCheck, and check-jsonschema from PyPI. Idempotent: quick when everything is there.
# Needs root (or sudo) for apt-get.
set -euo pipefail

CHECK_JSONSCHEMA_VERSION=0.39.0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# command -> Debian package
declare -A packages=(
  [nginx]=nginx
  [promtool]=prometheus
  [prometheus-node-exporter]=prometheus-node-exporter
  [openssl]=openssl
  [envsubst]=gettext-base
  [curl]=curl
  [systemd-analyze]=systemd
  [shellcheck]=shellcheck
)
missing=()
for tool in "${!packages[@]}"; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    missing+=("${packages[$tool]}")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deploy-tools: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  # The packages' services are not wanted running (the checks start their
  # own on ephemeral ports): policy-rc.d stops the postinst from starting them.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

installed=$(check-jsonschema --version 2>/dev/null | awk '{print $NF}' || true)
if [ "$installed" != "$CHECK_JSONSCHEMA_VERSION" ]; then
  echo "install-deploy-tools: pip install check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
fi
# Make it findable whatever PATH the tests get (pyenv shims, venvs).
bin=$(python3 -c 'import sys, os; print(os.path.join(sys.prefix, "bin", "check-jsonschema"))')
if [ -x "$bin" ] && [ ! -e /usr/local/bin/check-jsonschema ]; then
  $SUDO ln -s "$bin" /usr/local/bin/check-jsonschema
fi

for tool in nginx promtool prometheus-node-exporter openssl envsubst curl systemd-analyze shellcheck check-jsonschema; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || [ -x "/usr/local/bin/$tool" ] || {
    echo "install-deploy-tools: $tool is still missing" >&2
    exit 1
  }
done
echo "install-deploy-tools: all deploy check tools are installed"
