#!/usr/bin/env bash
# Builds the release binary for one image architecture on a Debian build host of any architecture,
# cross-compiling (never emulating the build):
#     tools/cross-build.sh amd64|arm64 [OUT]
# ARCH is Docker's TARGETARCH. Installs what is missing: the Rust target (rustup) and, when ARCH is
# not the host's, Debian's cross C compiler (gcc-<triple>, which aws-lc-sys needs as much as the
# linker does). Writes target/<rust triple>/release/eks-ipam-exporter, and copies it to OUT if given.
# The Dockerfile runs this script; so does the test command (tests/arm64/run.sh), with the same
# settings, so what the image would hold is what the tests run under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:?usage: tools/cross-build.sh amd64|arm64 [OUT]}
out=${2:-}
case "$arch" in
  amd64) rust=x86_64-unknown-linux-gnu gnu=x86_64-linux-gnu pkgs="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;;
  arm64) rust=aarch64-unknown-linux-gnu gnu=aarch64-linux-gnu pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;;
  *) echo "cross-build: unsupported architecture '$arch' (amd64 or arm64)" >&2; exit 2 ;;
esac
host=$(dpkg --print-architecture 2>/dev/null || echo unknown)
if [ "$host" = "$arch" ]; then
  cc=gcc ar=ar
else
  cc=$gnu-gcc ar=$gnu-ar
  if ! command -v "$cc" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    echo "cross-build: installing $pkgs" >&2
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  fi
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$rust"; then
  rustup target add "$rust" >&2
fi
upper=$(echo "$rust" | tr 'a-z-' 'A-Z_')
lower=${rust//-/_}
export "CARGO_TARGET_${upper}_LINKER=$cc" "CC_${lower}=$cc" "AR_${lower}=$ar"
cargo build --release --locked --target "$rust" --bin eks-ipam-exporter
bin="${CARGO_TARGET_DIR:-target}/$rust/release/eks-ipam-exporter"
if [ -n "$out" ]; then
  install -D -m 0755 "$bin" "$out"
fi
echo "$bin"
