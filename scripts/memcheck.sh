#!/usr/bin/env bash
# Memory-safety checks of udp-mmsg. Each step is skipped (and says why) when its tool is missing.
#
#   1. unsafe audit     every `unsafe` block/impl/fn in src/ has a `// SAFETY:` comment
#   2. valgrind (Rust)  the crate's unit tests and tests/proptest_core.rs under memcheck
#   3. Miri             the pure-Rust unit tests (batch, cmsg, addr, send::validate) and the
#                       property tests (socket-based ones are cfg'd out: Miri cannot do syscalls)
#   4. ASan             unit + property tests built with -Zsanitizer=address (nightly), sockets included
#   5. valgrind (Node)  a representative JS workload (__test__/fixtures/reliability-memcheck.js:
#                       every native path, batched and portable, IPv4/IPv6, cmsgs, GSO/GRO, drops,
#                       ICMP errors, close in callbacks, GC finalizers, worker termination) against
#                       a debug build of the addon (symbols), memcheck errors fatal
#   6. valgrind (leaks) 110 sockets opened and closed; no definitely-lost block may come from
#                       the addon
#
# Usage: bash scripts/memcheck.sh [--quick] [--skip STEP]...   (STEP: audit valgrind-rust miri asan node leaks)
# --quick: fewer property cases and a shorter Miri run. Exit status 1 when a step fails.
# Nothing here rebuilds the shipped addon: the debug addon goes to target/memcheck/ and is loaded
# through NAPI_RS_NATIVE_LIBRARY_PATH.
set -uo pipefail
cd "$(dirname "$0")/.."

QUICK=0
SKIP=" "
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --skip) shift; SKIP="$SKIP$1 " ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

OUT=target/memcheck
mkdir -p "$OUT"
declare -a RESULTS=()
FAILED=0
record() { RESULTS+=("$(printf '%-16s %-5s %s' "$1" "$2" "$3")"); [ "$2" = FAIL ] && FAILED=1; return 0; }
skipped() { case "$SKIP" in *" $1 "*) return 0 ;; esac; return 1; }
step() { printf '\n=== %s\n' "$1"; }
have() { command -v "$1" >/dev/null 2>&1; }

CASES=64
MIRI_CASES=4
if [ "$QUICK" = 1 ]; then CASES=16; MIRI_CASES=2; fi

# ---- 1. unsafe audit ------------------------------------------------------------------------------
step "unsafe audit: every unsafe in src/ has a SAFETY comment"
if skipped audit; then record audit SKIP "--skip"; else
  node - <<'EOF' > "$OUT/unsafe-audit.txt"
const fs = require('node:fs')
const path = require('node:path')
let total = 0
const missing = []
// Every .rs file under src/, subdirectories included.
const files = fs.readdirSync('src', { recursive: true }).filter((f) => f.endsWith('.rs')).sort()
for (const f of files) {
  const lines = fs.readFileSync(path.join('src', f), 'utf8').split('\n')
  const testStart = lines.findIndex((l) => /^#\[cfg\(test\)\]/.test(l))
  lines.forEach((l, i) => {
    const code = l.replace(/\/\/.*$/, '')
    if (!/\bunsafe\s*(\{|impl\b|fn\b|extern\b)/.test(code)) return
    // A function-pointer type (`unsafe extern "C" fn(...)`, `unsafe fn(...)`) is not a site.
    if (!/\bunsafe\s*(\{|impl\b|fn\s+\w|extern\s+"C"\s+fn\s+\w)/.test(code)) return
    total++
    // A SAFETY comment on the line, or in the comment block / statement head just above it.
    // (An `unsafe fn` documents its contract in a `# Safety` doc section, which counts too.)
    let ok = /SAFETY/.test(l)
    for (let k = i - 1; k >= 0 && k >= i - 8 && !ok; k--) {
      if (/SAFETY|^\s*\/\/\/ # Safety/.test(lines[k])) ok = true
      else if (/^\s*$/.test(lines[k]) || (/[;}{]\s*$/.test(lines[k]) && !/^\s*\/\//.test(lines[k]))) break
    }
    const where = `${f}:${i + 1}${testStart !== -1 && i > testStart ? ' (test code)' : ''}`
    if (!ok) missing.push(`${where}: ${l.trim()}`)
  })
}
console.log(`unsafe sites: ${total}; without a SAFETY comment: ${missing.length}`)
for (const m of missing) console.log(`  ${m}`)
process.exitCode = missing.filter((m) => !m.includes('(test code)')).length ? 1 : 0
EOF
  rc=$?
  cat "$OUT/unsafe-audit.txt"
  if [ $rc -eq 0 ]; then record audit PASS "$(head -1 "$OUT/unsafe-audit.txt") (only test code may lack one)"; else record audit FAIL "$(head -1 "$OUT/unsafe-audit.txt")"; fi
fi

# ---- 2. valgrind on the Rust tests ------------------------------------------------------------------
step "valgrind memcheck: cargo unit tests and tests/proptest_core.rs (PROPTEST_CASES=$CASES)"
if skipped valgrind-rust; then record valgrind-rust SKIP "--skip"
elif ! have valgrind; then record valgrind-rust SKIP "valgrind not installed"
else
  bins=$(cargo test --no-run --lib --test proptest_core --message-format=json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of s.split("\n")){try{const j=JSON.parse(l);if(j.reason==="compiler-artifact"&&j.executable)console.log(j.executable)}catch{}}})')
  ok=1
  for b in $bins; do
    echo "--- $b"
    if PROPTEST_CASES=$CASES valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite "$b" --test-threads=2 > "$OUT/valgrind-$(basename "$b").txt" 2>&1; then
      grep -E "^test result" "$OUT/valgrind-$(basename "$b").txt"
    else
      ok=0; tail -40 "$OUT/valgrind-$(basename "$b").txt"
    fi
  done
  if [ -z "$bins" ]; then record valgrind-rust FAIL "no test binaries built"
  elif [ $ok = 1 ]; then record valgrind-rust PASS "0 memcheck errors, 0 definite leaks"; else record valgrind-rust FAIL "see $OUT/valgrind-*.txt"; fi
fi

# ---- 3. Miri -----------------------------------------------------------------------------------------
step "Miri: pure-Rust tests (PROPTEST_CASES=$MIRI_CASES for the property tests)"
if skipped miri; then record miri SKIP "--skip"
elif ! cargo +nightly miri --version >/dev/null 2>&1; then
  record miri SKIP "no nightly toolchain with the miri component (rustup +nightly component add miri rust-src)"
else
  # addr::tests::parses_literals_* calls if_nametoindex, recv/send/wake tests use sockets, poll
  # and eventfd: foreign calls Miri cannot make. Everything else runs.
  if cargo +nightly miri test --lib -- batch:: cmsg:: addr::tests::sockaddr addr::tests::short addr::tests::maps \
      send::tests::validate > "$OUT/miri-lib.txt" 2>&1 &&
    PROPTEST_CASES=$MIRI_CASES cargo +nightly miri test --test proptest_core > "$OUT/miri-proptest.txt" 2>&1; then
    grep -hE "^test result" "$OUT/miri-lib.txt" "$OUT/miri-proptest.txt"
    record miri PASS "no undefined behaviour ($(grep -hE '^test result' "$OUT/miri-lib.txt" "$OUT/miri-proptest.txt" | awk '{s+=$4} END {print s}') tests)"
  else
    tail -40 "$OUT/miri-lib.txt" "$OUT/miri-proptest.txt"
    record miri FAIL "see $OUT/miri-*.txt"
  fi
fi

# ---- 4. AddressSanitizer ------------------------------------------------------------------------------
step "AddressSanitizer: unit and property tests (nightly, -Zsanitizer=address)"
if skipped asan; then record asan SKIP "--skip"
elif ! cargo +nightly --version >/dev/null 2>&1; then record asan SKIP "no nightly toolchain"
else
  if RUSTFLAGS="-Zsanitizer=address" PROPTEST_CASES=$((CASES * 4)) cargo +nightly test --target x86_64-unknown-linux-gnu \
      --target-dir "$OUT/asan" --lib --test proptest_core > "$OUT/asan.txt" 2>&1; then
    grep -E "^test result" "$OUT/asan.txt"
    record asan PASS "no ASan/LSan report"
  else
    grep -E "ERROR: AddressSanitizer|ERROR: LeakSanitizer|panicked|^test result" "$OUT/asan.txt" | head -20
    record asan FAIL "see $OUT/asan.txt"
  fi
fi

# ---- 5/6. the addon under valgrind ------------------------------------------------------------------
DEBUG_NODE="$OUT/udp-mmsg.debug.node"
build_debug_addon() {
  # Up to date only if no source file (at any depth) or manifest changed since it was built.
  [ -f "$DEBUG_NODE" ] && [ -z "$(find src Cargo.toml Cargo.lock build.rs -newer "$DEBUG_NODE" -print -quit 2>/dev/null)" ] && return 0
  echo "building a debug addon with symbols into $OUT (cargo build --lib; the shipped binary is untouched)"
  cargo build --lib --target-dir "$OUT" >"$OUT/build.txt" 2>&1 || { tail -20 "$OUT/build.txt"; return 1; }
  cp "$OUT/debug/libudp_mmsg.so" "$DEBUG_NODE"
}
cat > "$OUT/node.supp" <<'EOF'
{
   v8-conservative-stack-scan-cond
   Memcheck:Cond
   fun:*IteratePointersInStack*
}
{
   v8-conservative-stack-scan-value
   Memcheck:Value8
   fun:*IteratePointersInStack*
}
EOF

step "valgrind memcheck: node + debug addon, representative workload"
if skipped node; then record node SKIP "--skip"
elif ! have valgrind; then record node SKIP "valgrind not installed"
elif ! build_debug_addon; then record node FAIL "debug addon build failed"
else
  NAPI_RS_NATIVE_LIBRARY_PATH="$PWD/$DEBUG_NODE" MEMCHECK_WAIT_MS=180000 valgrind --error-exitcode=99 \
    --suppressions="$OUT/node.supp" --leak-check=no --num-callers=40 \
    node --expose-gc __test__/fixtures/reliability-memcheck.js > "$OUT/node-workload.out" 2> "$OUT/node-workload.txt"
  rc=$?
  cat "$OUT/node-workload.out"
  summary=$(grep -E "ERROR SUMMARY" "$OUT/node-workload.txt" | tail -1 | sed 's/^==[0-9]*== //')
  if [ $rc -eq 0 ] && grep -q '"ok":true' "$OUT/node-workload.out" && grep -q 'udp-mmsg.debug.node' "$OUT/node-workload.out"; then
    record node PASS "$summary (V8 conservative stack scan suppressed)"
  else
    grep -E "Invalid|uninitialised|Mismatched|overlap" -A12 "$OUT/node-workload.txt" | head -60
    record node FAIL "exit $rc; $summary; see $OUT/node-workload.txt"
  fi
fi

step "valgrind leak check: 110 sockets opened and closed (release addon)"
if skipped leaks; then record leaks SKIP "--skip"
elif ! have valgrind; then record leaks SKIP "valgrind not installed"
else
  valgrind --leak-check=full --show-leak-kinds=definite --num-callers=40 \
    node --expose-gc __test__/fixtures/reliability-churn.js 10 100 1 > "$OUT/leaks.out" 2> "$OUT/leaks.txt"
  blocks=$(node -e '
    const txt = require("node:fs").readFileSync(process.argv[1], "utf8")
    let n = 0
    for (const rec of txt.split(/\n==\d+== \n/)) {
      const m = /bytes in ([\d,]+) blocks are definitely lost/.exec(rec)
      // napi_register_module_v1 runs once per process (napi-rs keeps its class constructors
      // referenced for the lifetime of the module): not a per-socket leak.
      if (m && /udp-mmsg|udp_mmsg/.test(rec) && !/napi_register_module_v1/.test(rec)) n += Number(m[1].replace(/,/g, ""))
    }
    console.log(n)' "$OUT/leaks.txt")
  grep -A4 "LEAK SUMMARY" "$OUT/leaks.txt" | sed 's/^==[0-9]*== //'
  if [ "$blocks" = 0 ]; then record leaks PASS "no definitely-lost block from the addon"
  else record leaks FAIL "$blocks definitely-lost blocks from the addon for 110 sockets (see $OUT/leaks.txt)"; fi
fi

printf '\n=== memcheck summary\n'
for r in "${RESULTS[@]}"; do echo "$r"; done
exit $FAILED
