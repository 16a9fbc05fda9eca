#!/usr/bin/env bash
# Runs the x86_64-unknown-linux-gnu part of .github/workflows/release.yml on this machine,
# without touching the work tree (everything goes to a scratch directory) and without
# publishing anything:
#   build    scripts/build-portable.sh (glibc 2.17 toolchain) -> SCRATCH/artifacts/bindings-x86_64-unknown-linux-gnu/
#            and check the committed index.js / index.d.ts equal the ones that build generates
#   glibc    scripts/glibc-report.sh --max 2.17
#   test     the ava suite against that binary (NAPI_RS_NATIVE_LIBRARY_PATH), the install test
#            packaging it (UDP_MMSG_BINARY), glibc baseline 2.17
#   publish  in a scratch copy: napi artifacts, check-versions, pack-check, napi pre-publish
#            --dry-run, npm publish --dry-run (root and linux-x64-gnu), for this one target
#   lint     scripts/lint-workflows.sh, if actionlint is available
#
#   scripts/release-local.sh [--quick] [--keep]
#     --quick   test only __test__/install.spec.ts and __test__/versions.spec.ts
#     --keep    keep the scratch directory
# Exits non-zero if any step failed; runs the later steps anyway and lists the failures.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
quick=0
keep=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    *) echo "usage: $0 [--quick] [--keep]" >&2; exit 2 ;;
  esac
done
triple=x86_64-unknown-linux-gnu
tag=linux-x64-gnu
glibc_max=2.17
work="$(mktemp -d "${TMPDIR:-/tmp}/udp-mmsg-release-local.XXXXXX")"
if [ "$keep" = 1 ]; then echo "release-local: scratch directory $work"; else trap 'rm -rf "$work"' EXIT; fi
failed=()
step() { printf '\n=== %s\n' "$1"; }
fail() { echo "release-local: FAILED: $1" >&2; failed+=("$1"); }

bin_dir="$work/artifacts/bindings-$triple"
bin="$bin_dir/udp-mmsg.$tag.node"

step "build $triple against glibc $glibc_max"
if bash "$root/scripts/build-portable.sh" "$bin_dir" "$triple"; then
  ls -l "$bin"
  for f in index.js index.d.ts; do
    if cmp -s "$bin_dir/$f" "$root/$f"; then echo "$f: the committed one is current"
    else fail "committed $f differs from the generated one (run npm run build and commit it)"; diff "$root/$f" "$bin_dir/$f" | head -20; fi
    rm -f "$bin_dir/$f"
  done
else
  fail "build"
fi

step "glibc requirement <= $glibc_max"
if [ -f "$bin" ] && bash "$root/scripts/glibc-report.sh" "$bin" --max "$glibc_max"; then :; else fail "glibc requirement"; fi

step "tests against the portable binary"
if [ -f "$bin" ]; then
  specs=()
  [ "$quick" = 1 ] && specs=(__test__/install.spec.ts __test__/versions.spec.ts)
  (cd "$root" && NAPI_RS_NATIVE_LIBRARY_PATH="$bin" UDP_MMSG_BINARY="$bin" UDP_MMSG_GLIBC_MAX="$glibc_max" npx ava "${specs[@]}") || fail "tests"
else
  fail "tests (no binary)"
fi

step "publish dry run ($triple only)"
stage="$work/publish"
mkdir -p "$stage"
for f in package.json README.md LICENSE Cargo.toml Cargo.lock index.js index.d.ts lib npm scripts; do
  [ -e "$root/$f" ] && cp -R "$root/$f" "$stage/"
done
ln -s "$root/node_modules" "$stage/node_modules"
mv "$work/artifacts" "$stage/artifacts"
bin="$stage/artifacts/bindings-$triple/udp-mmsg.$tag.node"
# The workflow has all six binaries; here only one, so napi sees only this target.
printf '{ "binaryName": "udp-mmsg", "targets": ["%s"] }\n' "$triple" > "$stage/napi-local.json"
(
  set -e
  cd "$stage"
  npx napi artifacts -c napi-local.json --output-dir artifacts --npm-dir npm
  ls -l "npm/$tag"
  node scripts/check-versions.js
  bash scripts/glibc-report.sh "npm/$tag/udp-mmsg.$tag.node" --max "$glibc_max"
) || fail "artifacts"
(cd "$stage" && node scripts/pack-check.js) || fail "pack-check"
(
  set -e
  cd "$stage"
  npx napi pre-publish -c napi-local.json -t npm --no-gh-release --dry-run
  (cd "npm/$tag" && npm publish --dry-run --ignore-scripts --access public)
  npm publish --dry-run --ignore-scripts --access public
) || fail "publish dry run"

step "lint workflows"
if [ -n "${ACTIONLINT:-}" ] || command -v actionlint >/dev/null; then
  bash "$root/scripts/lint-workflows.sh" || fail "lint workflows"
else
  echo "actionlint not available: skipped (see scripts/lint-workflows.sh)"
fi

echo
if [ "${#failed[@]}" -gt 0 ]; then
  echo "release-local: ${#failed[@]} step(s) failed: ${failed[*]}"
  exit 1
fi
echo "release-local: all steps passed"
