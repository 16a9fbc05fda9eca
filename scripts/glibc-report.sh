#!/usr/bin/env bash
# Prints the highest GLIBC symbol version a built .node needs, i.e. the oldest glibc it loads on.
#
#   scripts/glibc-report.sh [FILE.node] [--max X.Y]
#
# FILE defaults to udp-mmsg.linux-x64-gnu.node in the repository root. Output, one line each:
#   file <path>
#   size <bytes>
#   glibc_max <X.Y[.Z]>          (or "none" if it imports no versioned glibc symbol)
#   symbols <the symbols that need glibc_max>
# With --max X.Y it exits 1 when glibc_max is newer than X.Y (for CI and the install test).
# Needs readelf or objdump (binutils). Same result as: objdump -T FILE | grep GLIBC_ (highest version).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
file=""
max=""
while [ $# -gt 0 ]; do
  case "$1" in
    --max) max="${2:?--max needs a version}"; shift 2 ;;
    --max=*) max="${1#--max=}"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) file="$1"; shift ;;
  esac
done
file="${file:-$root/udp-mmsg.linux-x64-gnu.node}"
[ -f "$file" ] || { echo "glibc-report: no such file: $file" >&2; exit 2; }

# "<version> <symbol>" for every dynamic symbol bound to a GLIBC_x.y version. readelf first: it
# reads any architecture (the aarch64 binary on an x86_64 runner); objdump -T only its own.
syms=""
if command -v readelf >/dev/null && dyn="$(readelf --dyn-syms -W "$file" 2>/dev/null)"; then
  syms="$(printf '%s\n' "$dyn" | sed -n 's/.*[[:space:]]\([^[:space:]@]\{1,\}\)@\{1,2\}GLIBC_\([0-9][0-9.]*\).*/\2 \1/p')"
elif command -v objdump >/dev/null && dyn="$(objdump -T "$file" 2>/dev/null)"; then
  syms="$(printf '%s\n' "$dyn" | sed -n 's/.*[[:space:]](\{0,1\}GLIBC_\([0-9][0-9.]*\))\{0,1\}[[:space:]]\{1,\}\([^[:space:]]\{1,\}\)$/\1 \2/p')"
else
  echo "glibc-report: cannot read the dynamic symbols of $file (needs readelf or objdump: apt-get install binutils)" >&2
  exit 2
fi

echo "file $file"
echo "size $(wc -c < "$file" | tr -d " ")"
if [ -z "$syms" ]; then
  echo "glibc_max none"
  exit 0
fi
top="$(printf '%s\n' "$syms" | awk '{print $1}' | sort -u -V | tail -n 1)"
echo "glibc_max $top"
echo "symbols $(printf '%s\n' "$syms" | awk -v v="$top" '$1 == v {print $2}' | sort -u | tr '\n' ' ' | sed 's/ $//')"

if [ -n "$max" ]; then
  newest="$(printf '%s\n%s\n' "$top" "$max" | sort -V | tail -n 1)"
  if [ "$newest" != "$max" ]; then
    echo "glibc-report: $file needs GLIBC_$top, newer than the allowed GLIBC_$max" >&2
    exit 1
  fi
fi
