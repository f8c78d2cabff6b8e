#!/usr/bin/env bash
# base-images.sh — makes, from Debian packages, the base images the
# Dockerfile and the compose files name, for an engine that reaches no
# image registry (CI; a machine with only a Debian mirror):
#
#   debian:bookworm-slim        debootstrap --variant=minbase, then `docker import`
#   prom/prometheus:v3.5.0      stand-in: Debian's prometheus package
#   prom/node-exporter:v1.9.1   stand-in: Debian's prometheus-node-exporter
#   rust:1.95-slim-bookworm     only with --rust: the host's Rust toolchain
#                               (for the Dockerfile's full `build` stage)
#
# Grafana has no Debian package: the compose files start it only with the
# `grafana` profile. An image that exists already (same tag) is kept:
# `--rebuild` makes them again. Needs root, debootstrap and a running
# engine; DOCKER (default: docker) is the client to use.
#
# The stand-ins are not the upstream images: same command-line flags and
# paths as the compose files use, older versions (Debian bookworm's).
set -euo pipefail

DOCKER=${DOCKER:-docker}
DEBIAN_RELEASE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SLIM=debian:$DEBIAN_RELEASE-slim
PROMETHEUS=prom/prometheus:v3.5.0
NODE_EXPORTER=prom/node-exporter:v1.9.1
RUST=rust:1.95-slim-$DEBIAN_RELEASE

rebuild=0
rust=0
for arg in "$@"; do
    case "$arg" in
        --rebuild) rebuild=1 ;;
        --rust) rust=1 ;;
        *)
            sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
            exit 2
            ;;
    esac
done

say() { echo "base-images: $*" >&2; }

have() { [[ $rebuild -eq 0 ]] && "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# debian:bookworm-slim: a minbase root filesystem without documentation,
# manual pages, locales and package lists (what the official slim image
# leaves out), so that the runtime images stay small.
make_slim() {
    local root
    root=$(mktemp -d)
    trap 'rm -rf "$root"' RETURN
    say "debootstrap --variant=minbase $DEBIAN_RELEASE (about a minute)"
    debootstrap --variant=minbase "$DEBIAN_RELEASE" "$root" "$DEBIAN_MIRROR" >"$root.log" 2>&1 || {
        tail -n 20 "$root.log" >&2
        rm -f "$root.log"
        return 1
    }
    rm -f "$root.log"
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
EOF
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$root"/usr/share/{man,info,locale,groff,lintian}/* \
        "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
    echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/90no-recommends"
    # As the official image: apt keeps no caches in the image's layers.
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    tar -C "$root" -c . | "$DOCKER" import \
        --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$SLIM" >/dev/null
}

# A Debian package in the slim image, run as the package's user, with
# DATA_DIR (if any) made and owned by it, as in the upstream image.
make_standin() { # TAG PACKAGE BINARY USER PORT [DATA_DIR]
    local tag=$1 package=$2 binary=$3 user=$4 port=$5 data_dir=${6:-}
    "$DOCKER" build -q -t "$tag" - >/dev/null <<EOF
FROM $SLIM
RUN apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $package wget \\
    && rm -rf /var/lib/apt/lists/* \\
    && if [ -n "$data_dir" ]; then mkdir -p "$data_dir" && chown "$user:" "$data_dir"; fi
LABEL org.opencontainers.image.title="$tag (stand-in)" \\
      org.opencontainers.image.description="Debian's $package in place of $tag, for engines without a registry"
USER $user
EXPOSE $port
ENTRYPOINT ["$binary"]
EOF
}

# The Rust image for the Dockerfile's `build` stage: the host's toolchain
# (rustup's, the one that builds the workspace) on the slim image, with the
# host's CA certificates so that cargo reaches crates.io through the same
# TLS interception the host trusts. Made by a test, never published.
make_rust() {
    local context rustc_sysroot
    rustc_sysroot=$(rustc --print sysroot)
    context=$(mktemp -d)
    trap 'rm -rf "$context"' RETURN
    # The documentation is half of it and not needed to build.
    cp -a "$rustc_sysroot" "$context/toolchain"
    rm -rf "$context/toolchain/share/doc"
    cp /etc/ssl/certs/ca-certificates.crt "$context/ca-certificates.crt"
    "$DOCKER" build -q -t "$RUST" "$context" >/dev/null -f - <<EOF
FROM $SLIM
RUN apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \\
    && rm -rf /var/lib/apt/lists/*
COPY toolchain/ /usr/local/rust/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PATH=/usr/local/rust/bin:\$PATH CARGO_HOME=/usr/local/cargo
EOF
}

if have "$SLIM"; then say "$SLIM: present"; else
    make_slim
    say "$SLIM: made"
fi
if have "$PROMETHEUS"; then say "$PROMETHEUS: present"; else
    make_standin "$PROMETHEUS" prometheus /usr/bin/prometheus prometheus 9090 /prometheus
    say "$PROMETHEUS: made (stand-in)"
fi
if have "$NODE_EXPORTER"; then say "$NODE_EXPORTER: present"; else
    make_standin "$NODE_EXPORTER" prometheus-node-exporter /usr/bin/prometheus-node-exporter prometheus 9100
    say "$NODE_EXPORTER: made (stand-in)"
fi
if [[ $rust -eq 1 ]]; then
    if have "$RUST"; then say "$RUST: present"; else
        make_rust
        say "$RUST: made from the host's toolchain"
    fi
fi
