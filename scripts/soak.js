#!/usr/bin/env node
'use strict'
// Soak test of udp-mmsg: a native-speed sender (benchmark/ceiling `send --seq`, a separate
// process) floods a udp-mmsg receiver in this process over loopback for a bounded time. The
// receiver uses the batch API and does real per-datagram JS work: an FNV-1a checksum of every
// payload (compared with the pattern ceiling writes) and sequence-number bookkeeping (a bitmap:
// duplicates, out-of-order, out-of-range).
//
// Usage: node scripts/soak.js [--duration S] [--quick] [--rate PPS] [--size BYTES]
//                             [--batch-size N] [--find-rate] [--p99-limit MS]
//                             [--rss-growth-limit PCT] [--rss-growth-slack MIB]
//                             [--json-only] [--default-malloc]
//   --duration S       seconds of traffic (default 60; --quick: 12)
//   --rate PPS         sender rate, datagrams/s (default 200000)
//   --find-rate        first run 3 s trials at rising rates and soak at the highest one the
//                      receiver keeps up with (kernel drops <= 0.1 % and the sender on schedule)
//   --size BYTES       payload size, >= 8 (default 256)
//   --batch-size N     receiver batchSize (default 256)
//
// Checks (exit status 1 when one fails):
//   - exact accounting: received + kernelDrops === sent (sent as reported by the sender,
//     kernelDrops from stats(), i.e. SO_RXQ_OVFL / SO_MEMINFO), after the queue has drained
//   - every datagram intact: right length, checksum, not truncated, no duplicate sequence
//     number, none out of range
//   - RSS growth from the middle of the run to its end < --rss-growth-limit (default 5 %)
//     or < --rss-growth-slack MiB (default 24: the allocator's high-water mark, see below),
//     both sampled right after a forced full GC (batch buffers are external memory that only a
//     collection frees; without it RSS swings by tens of MiB with GC timing).
//     The baseline is the middle, not the start: the first seconds include warm-up that is
//     not a leak (V8 heap growth to its working size, JIT code, malloc arenas of the I/O
//     thread reaching their high-water mark, the bitmap pages being touched). A leak grows
//     with the datagram count and so keeps growing through the second half. Under CPU
//     contention the warm-up lasts longer (measured: RSS after GC climbs ~20 MiB over the
//     first 10-20 s of a 200 k/s run, then stays flat for the rest of a 40 s run; with two
//     CPU hogs running, 12.1 MiB was seen between 6 s and 12 s of the quick soak), so a growth
//     under the slack passes too: a leak of one batch buffer per batch (MiB per second) is far
//     above it, and small native leaks are the valgrind test's job.
//   - fds (/proc/self/fd) the same at the middle and the end of the run (the shared coalescing timerfd is made at the first backlog), and back to the
//     baseline (before the socket was opened) after close; threads (/proc/self/task) too
//   - event-loop delay p99 (perf_hooks.monitorEventLoopDelay) < --p99-limit (default 200 ms)
// Prints a table (stderr unless --json-only) and one JSON line on stdout.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')
const { parseArgs } = require('node:util')
const { monitorEventLoopDelay } = require('node:perf_hooks')
const { UdpSocket } = require('udp-mmsg')

const ROOT = path.join(__dirname, '..')
const CEILING_DIR = path.join(ROOT, 'benchmark', 'ceiling')
const CEILING = path.join(CEILING_DIR, 'target', 'release', 'ceiling')

const { values: argv } = parseArgs({
  options: {
    duration: { type: 'string' },
    quick: { type: 'boolean', default: false },
    rate: { type: 'string', default: '200000' },
    'find-rate': { type: 'boolean', default: false },
    size: { type: 'string', default: '256' },
    'batch-size': { type: 'string', default: '256' },
    'p99-limit': { type: 'string', default: '200' },
    'rss-growth-limit': { type: 'string', default: '5' },
    'rss-growth-slack': { type: 'string', default: '24' },
    'json-only': { type: 'boolean', default: false },
    'default-malloc': { type: 'boolean', default: false },
  },
})

// Allocator: glibc keeps freed chunks of its arenas resident, so with the default settings the
// RSS after a GC reflects the allocator's high-water mark (set by how many batch buffers were
// waiting for a collection at the worst moment) rather than what is live, and swings by
// +-20 MiB from run to run. To measure what is really retained, the soak re-runs itself with
// MALLOC_MMAP_THRESHOLD_=8192: every batch buffer of 8 KiB or more gets its own mapping, given
// back to the kernel when it is freed, so RSS after a GC is live memory. --default-malloc
// keeps glibc's defaults (the peak RSS is then reported too, and should plateau).
const MALLOC_ENV = { MALLOC_MMAP_THRESHOLD_: '8192', MALLOC_TRIM_THRESHOLD_: '65536' }
if (!argv['default-malloc'] && process.env.MALLOC_MMAP_THRESHOLD_ === undefined) {
  const r = spawnSync(process.execPath, [__filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, ...MALLOC_ENV },
  })
  process.exit(r.status === null ? 2 : r.status)
}

function num(name, min, max) {
  const v = Number(argv[name])
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${name} must be a number in ${min}..${max}, got ${argv[name]}`)
  return v
}

const DURATION = argv.duration !== undefined ? num('duration', 1, 86_400) : argv.quick ? 12 : 60
const SIZE = Math.floor(num('size', 8, 2048))
const BATCH = Math.floor(num('batch-size', 1, 1024))
const P99_LIMIT_MS = num('p99-limit', 1, 60_000)
const RSS_LIMIT_PCT = num('rss-growth-limit', 0, 1000)
const RSS_SLACK_MIB = num('rss-growth-slack', 0, 1_000_000)
/** Sampling interval of the event-loop delay histogram. Node records the whole interval between
 * two samples, so an idle loop reads ~5 ms: the figures are an upper bound of the real delay. */
const LOOP_RESOLUTION_MS = 5
const log = argv['json-only'] ? () => {} : (...a) => console.error(...a)

// Ctrl-C: stop the sender too (installed before any fd baseline is taken).
let currentSender = null
process.on('SIGINT', () => {
  if (currentSender) currentSender.kill('SIGKILL')
  process.exit(130)
})

// A full GC before the start/middle/end samples: batch buffers are external memory freed only
// when V8 collects them, so RSS between collections swings by tens of MiB with GC timing.
// Sampling after a forced collection compares what is really retained.
require('node:v8').setFlagsFromString('--expose-gc')
const forceGc = require('node:vm').runInNewContext('gc')

async function oneCollectedSample(t0) {
  for (let k = 0; k < 2; k++) {
    forceGc()
    // Let finalizers of collected external buffers run.
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setImmediate(r))
  }
  return memSample(t0)
}

// Batches keep arriving while a sample is taken (they are received on this thread, between the
// collection and the reading of RSS), so one sample can catch several MiB of buffers not yet
// collectable. The lowest of three, 100 ms apart, is what is really retained: a leak raises
// that floor, a transient does not.
async function collectedSample(t0) {
  let best = null
  for (let k = 0; k < 3; k++) {
    if (k > 0) await new Promise((r) => setTimeout(r, 100))
    const s = await oneCollectedSample(t0)
    if (best === null || s.rss < best.rss) best = s
  }
  return best
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function countDir(dir) {
  try {
    return fs.readdirSync(dir).length
  } catch {
    return -1
  }
}
const fdCount = () => countDir('/proc/self/fd')
const threadCount = () => countDir('/proc/self/task')

function readNumber(file) {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim())
  } catch {
    return NaN
  }
}

/** Sum of the `dropped` column of /proc/net/softnet_stat (backlog drops, all CPUs, system-wide). */
function softnetDrops() {
  try {
    return fs
      .readFileSync('/proc/net/softnet_stat', 'utf8')
      .trim()
      .split('\n')
      .reduce((s, line) => s + parseInt(line.trim().split(/\s+/)[1], 16), 0)
  } catch {
    return -1
  }
}

function ensureCeiling() {
  if (fs.existsSync(CEILING)) return
  log(`building ${path.relative(ROOT, CEILING)} (cargo build --release) ...`)
  const r = spawnSync('cargo', ['build', '--release', '--manifest-path', path.join(CEILING_DIR, 'Cargo.toml')], {
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 600_000,
  })
  if (r.status !== 0 || !fs.existsSync(CEILING)) throw new Error('could not build benchmark/ceiling')
}

// ---- the receiver's per-datagram work ------------------------------------------------------

/** FNV-1a (32-bit) of bytes [from, to) of `b`. */
function fnv1a(b, from, to) {
  let h = 0x811c9dc5
  for (let k = from; k < to; k++) h = Math.imul(h ^ b[k], 0x01000193)
  return h >>> 0
}

/** Expected FNV-1a of bytes 8..size of datagram `seq`, which depend only on seq & 0xff:
 * ceiling writes byte j (j >= 8) of datagram i as (i + j) & 0xff. */
function expectedTable(size) {
  const table = new Uint32Array(256)
  const b = new Uint8Array(size)
  for (let r = 0; r < 256; r++) {
    for (let j = 8; j < size; j++) b[j] = (r + j) & 0xff
    table[r] = fnv1a(b, 8, size)
  }
  return table
}

class Verifier {
  constructor(capacity, size) {
    this.size = size
    this.capacity = capacity
    this.seen = new Uint8Array(Math.ceil(capacity / 8))
    // Touch every page now: a fresh typed array is lazily committed zero pages, which would
    // otherwise show up as RSS growth while the sequence numbers advance through it.
    this.seen.fill(1)
    this.seen.fill(0)
    this.table = expectedTable(size)
    this.received = 0
    this.unique = 0
    this.duplicates = 0
    this.badLength = 0
    this.badChecksum = 0
    this.truncated = 0
    this.outOfRange = 0
    this.outOfOrder = 0
    this.lastSeq = -1
    this.batches = 0
    this.maxBatch = 0
    this.firstProblems = []
  }

  problem(text) {
    if (this.firstProblems.length < 10) this.firstProblems.push(text)
  }

  onBatch(batch) {
    const n = batch.count
    const buf = batch.buffer
    const offsets = batch.offsets
    const lengths = batch.lengths
    const flags = batch.flags
    this.batches++
    if (n > this.maxBatch) this.maxBatch = n
    for (let i = 0; i < n; i++) {
      this.received++
      const off = offsets[i]
      const len = lengths[i]
      if (flags[i] & 1) {
        this.truncated++
        this.problem(`datagram flagged truncated (length ${len})`)
      }
      if (len !== this.size) {
        this.badLength++
        this.problem(`length ${len}, expected ${this.size}`)
        continue
      }
      const seq = buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 0x100000000
      if (fnv1a(buf, off + 8, off + len) !== this.table[seq % 256]) {
        this.badChecksum++
        this.problem(`seq ${seq}: checksum mismatch`)
      }
      if (seq >= this.capacity) {
        this.outOfRange++
        this.problem(`seq ${seq} out of range`)
        continue
      }
      if (seq < this.lastSeq) this.outOfOrder++
      this.lastSeq = seq
      const byte = seq >>> 3
      const bit = 1 << (seq & 7)
      if (this.seen[byte] & bit) {
        this.duplicates++
        this.problem(`seq ${seq} received twice`)
      } else {
        this.seen[byte] |= bit
        this.unique++
      }
    }
  }

  /** Sequence numbers below `sent` never seen (only the count, and the first few). */
  missing(sent) {
    let count = 0
    const first = []
    for (let s = 0; s < sent && s < this.capacity; s++) {
      if ((this.seen[s >>> 3] & (1 << (s & 7))) === 0) {
        count++
        if (first.length < 5) first.push(s)
      }
    }
    return { count, first }
  }
}

// ---- one run ---------------------------------------------------------------------------------

/** Peak RSS of this process so far (VmHWM, bytes). */
function peakRss() {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))
    return m ? Number(m[1]) * 1024 : NaN
  } catch {
    return NaN
  }
}

function memSample(t0) {
  const m = process.memoryUsage()
  return { t: (Date.now() - t0) / 1000, rss: m.rss, peakRss: peakRss(), heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, fds: fdCount(), threads: threadCount() }
}

let senderRuns = 0

/**
 * Starts `ceiling send`. Its stdout/stderr go to temporary files whose fds this process closes
 * right after the spawn, so the sender holds no fd of ours (the fd counts are the receiver's).
 */
function runSender(port, rate, seconds, size) {
  const args = ['send', '--port', String(port), '--host', '127.0.0.1', '--size', String(size), '--batch', '1024', '--rate', String(rate), '--duration', String(seconds), '--seq']
  const base = path.join(os.tmpdir(), `udp-mmsg-soak-${process.pid}-${senderRuns++}`)
  const outFd = fs.openSync(`${base}.out`, 'w')
  const errFd = fs.openSync(`${base}.err`, 'w')
  let child
  try {
    child = spawn(CEILING, args, { stdio: ['ignore', outFd, errFd] })
  } finally {
    fs.closeSync(outFd)
    fs.closeSync(errFd)
  }
  const done = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      const read = (f) => {
        try {
          return fs.readFileSync(f, 'utf8')
        } catch {
          return ''
        } finally {
          fs.rmSync(f, { force: true })
        }
      }
      const out = read(`${base}.out`)
      const err = read(`${base}.err`)
      let report
      for (const line of out.trim().split('\n')) {
        try {
          const j = JSON.parse(line)
          if (j.mode === 'send') report = j
        } catch {}
      }
      resolve({ code, signal, report, stderr: err.trim() })
    })
  })
  return { child, done }
}

/**
 * Runs one soak (or calibration trial): binds the receiver, starts the sender, samples memory,
 * fds and threads, waits for the sender and the drain, closes and returns the figures.
 */
async function runOnce({ rate, seconds, size, batchSize, sample }) {
  const t0 = Date.now()
  const baseline = { fds: fdCount(), threads: threadCount() }
  const capacity = Math.ceil(rate * seconds) + 1024
  const verifier = new Verifier(capacity, size)
  const rmemMax = readNumber('/proc/sys/net/core/rmem_max')
  const recvBufferSize = Number.isFinite(rmemMax) && rmemMax > 0 ? Math.min(rmemMax, 8 << 20) : 4 << 20
  const rx = await UdpSocket.bind({ address: '127.0.0.1', port: 0, batchSize, maxDatagramSize: 2048, recvBufferSize })
  const port = rx.localAddress().port
  const errors = []
  rx.on('error', (e) => {
    if (errors.length < 10) errors.push(`${e.code} ${e.message}`)
  })
  rx.onBatch((b) => verifier.onBatch(b))
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
  const samples = []
  samples.push({ ...(await collectedSample(t0)), label: 'start' })
  const softnetBefore = softnetDrops()
  loop.enable()
  const sender = runSender(port, rate, seconds, size)
  let senderDone = false
  const senderResult = sender.done.then((r) => {
    senderDone = true
    return r
  })
  currentSender = sender.child
  // Sample every second until the sender ends (bounded: seconds + 60 s).
  const sendStart = Date.now()
  const hardStop = sendStart + (seconds + 60) * 1000
  let nextTick = sendStart + 1000
  let middle
  while (!senderDone && Date.now() < hardStop) {
    await sleep(Math.max(1, Math.min(100, nextTick - Date.now())))
    if (Date.now() >= nextTick) {
      nextTick += 1000
      const s = memSample(t0)
      s.received = verifier.received
      samples.push(s)
      if (sample && !middle && Date.now() - sendStart >= (seconds * 1000) / 2) {
        middle = { ...(await collectedSample(t0)), received: verifier.received, label: 'middle' }
        log(`  middle: ${verifier.received} datagrams so far, rss after GC ${(middle.rss / 1048576).toFixed(1)} MiB, fds ${middle.fds}, threads ${middle.threads}`)
      }
    }
  }
  if (!senderDone) sender.child.kill('SIGKILL')
  const sr = await senderResult
  currentSender = null
  const sent = sr.report ? sr.report.sent : NaN
  // Drain: wait until every datagram is accounted for (received or dropped by the kernel)
  // and the receive queue is empty; bounded at 30 s.
  const drainDeadline = Date.now() + 30_000
  let st = rx.stats()
  while (Date.now() < drainDeadline) {
    st = rx.stats()
    if (verifier.received + st.kernelDrops >= sent && st.recvQueueBytes === 0 && st.queuedBatches === 0) break
    await sleep(20)
  }
  // Settle: nothing more may arrive (an over-count would show here).
  await sleep(300)
  st = rx.stats()
  loop.disable()
  const end = { ...(await collectedSample(t0)), label: 'end', received: verifier.received }
  const softnetAfter = softnetDrops()
  const closed = new Promise((r) => rx.once('close', r))
  rx.close()
  await closed
  // Back to baseline: the socket's fd, the shared timerfd, the sender's pipes.
  const settleDeadline = Date.now() + 5000
  let after = { fds: fdCount(), threads: threadCount() }
  while ((after.fds !== baseline.fds || after.threads !== baseline.threads) && Date.now() < settleDeadline) {
    await sleep(20)
    after = { fds: fdCount(), threads: threadCount() }
  }
  const missing = verifier.missing(Number.isFinite(sent) ? sent : 0)
  return {
    rate,
    seconds,
    sender: sr,
    sent,
    verifier,
    stats: st,
    errors,
    baseline,
    samples,
    start: samples[0],
    middle: middle || samples[Math.floor(samples.length / 2)],
    end,
    after,
    missing,
    loop: {
      p50: loop.percentile(50) / 1e6,
      p99: loop.percentile(99) / 1e6,
      max: loop.max / 1e6,
      mean: loop.mean / 1e6,
    },
    softnetDrops: softnetBefore >= 0 && softnetAfter >= 0 ? softnetAfter - softnetBefore : null,
  }
}

// ---- rate search -----------------------------------------------------------------------------

async function findRate() {
  const rates = [100_000, 150_000, 200_000, 250_000, 300_000, 400_000, 500_000, 700_000]
  let best = rates[0]
  const trials = []
  for (const rate of rates) {
    const r = await runOnce({ rate, seconds: 3, size: SIZE, batchSize: BATCH, sample: false })
    const pps = r.sender.report ? r.sender.report.pps : 0
    const dropPct = r.sent > 0 ? (100 * r.stats.kernelDrops) / r.sent : 100
    const onSchedule = pps >= rate * 0.97
    const ok = onSchedule && dropPct <= 0.1 && r.verifier.received + r.stats.kernelDrops === r.sent
    trials.push({ rate, pps: Math.round(pps), dropPct: Number(dropPct.toFixed(3)), ok })
    log(`  trial ${rate} pps: sender ${Math.round(pps)} pps, kernel drops ${dropPct.toFixed(3)} % -> ${ok ? 'keeps up' : 'does not keep up'}`)
    if (!ok) break
    best = rate
  }
  return { best, trials }
}

// ---- report ----------------------------------------------------------------------------------

function mib(b) {
  return `${(b / 1048576).toFixed(1)} MiB`
}

async function main() {
  ensureCeiling()
  let rate = Math.floor(num('rate', 1, 10_000_000))
  let calibration
  if (argv['find-rate']) {
    log('finding the highest rate the receiver keeps up with (3 s trials) ...')
    calibration = await findRate()
    rate = calibration.best
  }
  log(`soak: ${DURATION} s at ${rate} datagrams/s of ${SIZE} bytes (ceiling send --seq) into one udp-mmsg socket (batchSize ${BATCH})`)
  const r = await runOnce({ rate, seconds: DURATION, size: SIZE, batchSize: BATCH, sample: true })
  const v = r.verifier
  const drops = r.stats.kernelDrops
  const rssGrowthPct = (100 * (r.end.rss - r.middle.rss)) / r.middle.rss
  const checks = {
    senderOk: r.sender.code === 0 && Number.isFinite(r.sent) && r.sent > 0,
    exactAccounting: v.received + drops === r.sent,
    intact: v.badLength === 0 && v.badChecksum === 0 && v.truncated === 0 && v.outOfRange === 0,
    noDuplicates: v.duplicates === 0 && v.unique === v.received,
    missingAreDrops: r.missing.count === drops,
    noReceiveErrors: r.errors.length === 0 && r.stats.recvErrors === 0,
    rssGrowth: rssGrowthPct < RSS_LIMIT_PCT || r.end.rss - r.middle.rss < RSS_SLACK_MIB * 1048576,
    // From the middle on: the thread's shared coalescing timerfd appears with the first backlog.
    fdsSteady: r.middle.fds === r.end.fds,
    fdsBackToBaseline: r.after.fds === r.baseline.fds,
    threadsBackToBaseline: r.after.threads === r.baseline.threads,
    loopDelayP99: r.loop.p99 < P99_LIMIT_MS,
  }
  const ok = Object.values(checks).every(Boolean)
  const achieved = r.sender.report ? r.sender.report.pps : 0
  const result = {
    soak: true,
    ok,
    durationS: DURATION,
    rate,
    senderPps: Math.round(achieved),
    size: SIZE,
    batchSize: BATCH,
    sent: r.sent,
    received: v.received,
    kernelDrops: drops,
    dropPct: r.sent > 0 ? Number(((100 * drops) / r.sent).toFixed(4)) : null,
    missing: r.missing.count,
    duplicates: v.duplicates,
    outOfOrder: v.outOfOrder,
    badChecksum: v.badChecksum,
    badLength: v.badLength,
    truncated: v.truncated,
    batches: v.batches,
    maxBatch: v.maxBatch,
    recvErrors: r.stats.recvErrors,
    eventsDropped: r.stats.eventsDropped,
    softnetDrops: r.softnetDrops,
    rss: { start: r.start.rss, middle: r.middle.rss, end: r.end.rss, growthPct: Number(rssGrowthPct.toFixed(2)) },
    peakRss: { start: r.start.peakRss, middle: r.middle.peakRss, end: r.end.peakRss, growthPct: Number(((100 * (r.end.peakRss - r.middle.peakRss)) / r.middle.peakRss).toFixed(2)) },
    heapUsed: { start: r.start.heapUsed, middle: r.middle.heapUsed, end: r.end.heapUsed },
    fds: { baseline: r.baseline.fds, start: r.start.fds, middle: r.middle.fds, end: r.end.fds, afterClose: r.after.fds },
    threads: { baseline: r.baseline.threads, start: r.start.threads, middle: r.middle.threads, end: r.end.threads, afterClose: r.after.threads },
    loopDelayMs: { resolution: LOOP_RESOLUTION_MS, p50: Number(r.loop.p50.toFixed(2)), p99: Number(r.loop.p99.toFixed(2)), max: Number(r.loop.max.toFixed(2)) },
    timeline: r.samples.slice(1).map((s) => ({ t: Number(s.t.toFixed(1)), rssMiB: Number((s.rss / 1048576).toFixed(1)), peakMiB: Number((s.peakRss / 1048576).toFixed(1)), heapMiB: Number((s.heapUsed / 1048576).toFixed(1)), externalMiB: Number((s.external / 1048576).toFixed(1)), received: s.received })),
    malloc: argv['default-malloc'] ? 'glibc defaults' : `MALLOC_MMAP_THRESHOLD_=${process.env.MALLOC_MMAP_THRESHOLD_}`,
    limits: { p99Ms: P99_LIMIT_MS, rssGrowthPct: RSS_LIMIT_PCT, rssGrowthSlackMiB: RSS_SLACK_MIB },
    checks,
    problems: v.firstProblems.concat(r.errors),
    calibration,
  }
  if (!argv['json-only']) {
    const row = (k, val) => log(`  ${k.padEnd(34)} ${val}`)
    log('')
    row('rate requested / achieved (pps)', `${rate} / ${result.senderPps}`)
    row('datagrams sent', r.sent)
    row('datagrams received', v.received)
    row('dropped by kernel (kernelDrops)', `${drops} (${result.dropPct} %)`)
    row('received + kernelDrops === sent', `${v.received} + ${drops} = ${v.received + drops} ${checks.exactAccounting ? '===' : '!=='} ${r.sent}`)
    row('missing seqs / duplicates / reordered', `${r.missing.count} / ${v.duplicates} / ${v.outOfOrder}`)
    row('bad checksum / length / truncated', `${v.badChecksum} / ${v.badLength} / ${v.truncated}`)
    row('batches (max size)', `${v.batches} (${v.maxBatch})`)
    row('softnet backlog drops (system)', r.softnetDrops)
    row('RSS start / middle / end', `${mib(r.start.rss)} / ${mib(r.middle.rss)} / ${mib(r.end.rss)} (middle->end ${result.rss.growthPct} %)`)
    row('fds baseline / start / mid / end / closed', `${r.baseline.fds} / ${r.start.fds} / ${r.middle.fds} / ${r.end.fds} / ${r.after.fds}`)
    row('threads baseline / start / mid / end / closed', `${r.baseline.threads} / ${r.start.threads} / ${r.middle.threads} / ${r.end.threads} / ${r.after.threads}`)
    row('event-loop delay p50 / p99 / max', `${result.loopDelayMs.p50} / ${result.loopDelayMs.p99} / ${result.loopDelayMs.max} ms (${LOOP_RESOLUTION_MS} ms sampling included)`)
    log('')
    for (const [k, pass] of Object.entries(checks)) log(`  ${pass ? 'PASS' : 'FAIL'}  ${k}`)
    if (result.problems.length) log(`  first problems: ${result.problems.join('; ')}`)
    if (r.sender.stderr) log(`  sender: ${r.sender.stderr.split('\n').join(' | ')}`)
    log(ok ? 'soak: OK' : 'soak: FAILED')
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exitCode = ok ? 0 : 1
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 2
})
