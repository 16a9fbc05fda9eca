#!/usr/bin/env bash
# Builds a linux-*-gnu binary against glibc 2.17 with napi-rs's cross toolchain
# (`napi build --use-napi-cross`), so the published .node loads on any glibc >= 2.17
# (CentOS/RHEL 7, Amazon Linux 2, Debian 8+, Ubuntu 14.04+), not only on glibc >= the build host's.
#
#   scripts/build-portable.sh [OUTPUT_DIR] [TARGET]
#     OUTPUT_DIR  default: the repository root, like `npm run build` (writes the .node, index.js, index.d.ts)
#     TARGET      x86_64-unknown-linux-gnu (default) or aarch64-unknown-linux-gnu (needs
#                 `rustup target add aarch64-unknown-linux-gnu`)
#   npm run build:portable           same as scripts/build-portable.sh (repository root, x86_64)
#
# Then check it: scripts/glibc-report.sh OUTPUT_DIR/udp-mmsg.linux-x64-gnu.node --max 2.17
#
# Why not plain `napi build --use-napi-cross`: with @napi-rs/cli 3.10 it fails twice over.
#  1. It unpacks the toolchain with @napi-rs/lzma, whose binary package declares engines.node
#     "^22.20 || ^24.12 || >=25", so npm skips it on Node 20 and the CLI dies with
#     "Failed to set up the `--use-napi-cross` toolchain ... Cannot find native binding".
#  2. It fetches `@napi-rs/cross-toolchain-x64-target-<arch>@<version of @napi-rs/cross-toolchain>`
#     (1.0.5), but those packages stop at 1.0.0 (x86_64) and 1.0.3 (aarch64) on the registry.
# The CLI skips its download when ~/.napi-rs/cross-toolchain/<version>/<triple>/package.json
# exists, so this script puts the toolchain there itself (npm pack + system tar/xz), then runs
# the ordinary `napi build --use-napi-cross`. It needs the npm registry once (the unpacked
# toolchain, ~210 MB, stays cached in ~/.napi-rs); after that it works offline.
# Only x86_64 Linux hosts: the registry has no toolchain packages for arm64 hosts.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root}"
triple="${2:-x86_64-unknown-linux-gnu}"
case "$triple" in
  x86_64-unknown-linux-gnu) pkg="@napi-rs/cross-toolchain-x64-target-x86_64@${NAPI_CROSS_TOOLCHAIN_PKG_VERSION:-1.0.0}" ;;
  aarch64-unknown-linux-gnu) pkg="@napi-rs/cross-toolchain-x64-target-aarch64@${NAPI_CROSS_TOOLCHAIN_PKG_VERSION:-1.0.3}" ;;
  *) echo "build-portable: unsupported target $triple (x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu)" >&2; exit 2 ;;
esac

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "build-portable: needs a Linux x86_64 host (this is $(uname -s)-$(uname -m))" >&2
  exit 2
fi
for tool in tar xz npm node; do
  command -v "$tool" >/dev/null || { echo "build-portable: '$tool' not found" >&2; exit 2; }
done

# The directory the CLI looks in is keyed by @napi-rs/cross-toolchain's version as the CLI resolves it.
ver="$(cd "$root" && node -p "require(require.resolve('@napi-rs/cross-toolchain/package.json', { paths: [require.resolve('@napi-rs/cli/package.json')] })).version")"
dest="${HOME}/.napi-rs/cross-toolchain/${ver}/${triple}"

if [ ! -f "$dest/package.json" ] || [ ! -x "$dest/bin/${triple}-gcc" ]; then
  echo "build-portable: installing $pkg into $dest"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  rm -rf "$dest"
  mkdir -p "$dest"
  tar -xJf "$tmp/package/${triple}.tar.xz" -C "$dest"
  [ -f "$dest/package.json" ] || cp "$tmp/package/package.json" "$dest/package.json"
  rm -rf "$tmp"
  trap - EXIT
fi

mkdir -p "$out"
cd "$root"
# A target dir of its own: the cross linker and sysroot differ from a host build, so sharing
# target/ would make the two builds invalidate each other's cache.
exec npx napi build --platform --release --use-napi-cross \
  --target "$triple" \
  --target-dir "$root/target/napi-cross" \
  --output-dir "$out"
