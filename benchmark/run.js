#!/usr/bin/env node
'use strict'
// udp-mmsg benchmark suite: udp-mmsg vs node:dgram vs the raw recvmmsg/sendmmsg ceiling, on
// loopback only. See benchmark/README.md for what each scenario measures and how.
//
//   node benchmark/run.js [--quick] [--reps N] [--size BYTES] [--rate PPS] [--out DIR]
//                         [--only drain,live,max,send,memory,rtt,create,sockets,reqresp]
//
// Every participant runs in its own child process (benchmark/worker.js for JS, the `ceiling`
// binary for native code), the load generator of the receive scenarios is always
// `ceiling send`, and every child is bounded in time and killed when this process exits. The
// rtt, create, sockets and reqresp scenarios live in benchmark/scenarios/.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const report = require('./report.js')
const MODULES = require('./scenarios/index.js')
const { start, killAll, sleep, interleave } = require('./proc.js')

const HERE = __dirname
const CEILING_DIR = path.join(HERE, 'ceiling')
const CEILING = path.join(CEILING_DIR, 'target', 'release', 'ceiling')
const HOST = '127.0.0.1'
const MiB = 1024 * 1024
const CEILING_SCENARIOS = ['drain', 'live', 'max', 'send', 'memory'] // need the ceiling binary
const SCENARIOS = [...CEILING_SCENARIOS, ...MODULES.map((m) => m.id)]

// ---- options ------------------------------------------------------------------------------

const USAGE = `usage: node benchmark/run.js [options]
  --quick              tiny loads, 1 repetition (< 40 s); for tests
  --reps N             repetitions of every measurement (default 3; quick: 1)
  --size BYTES         datagram payload size (default 64)
  --rate PPS           offered load of the live-receive scenario (default 200000)
  --duration SECS      length of the live / max-live runs (default 3)
  --send-duration SECS length of each send run (default 1.5)
  --batch N            udp-mmsg batchSize and ceiling vlen for receiving (default 256,
                       the library default)
  --send-batch N       messages per sendBatch / ceiling sendmmsg call (default 1024)
  --backlog N          cap on the drain backlog (default 200000)
  --drain-warmup N     untimed datagrams each JS drain receiver takes before its backlog is
                       queued (default 32768; quick: 256; 0: a cold receiver)
  --memory-count N     datagrams of the memory scenario (default 10000000)
  --memory-rate PPS    sender rate of the memory scenario (default: 70% of the max-live
                       udp-mmsg rate, at most 1000000; 500000 when max-live did not run)
  --gso SEGS           datagrams per GSO send of the full-speed sender (max-live and memory
                       scenarios; default 64, 1 = plain sendmmsg)
  --rtt-count N        timed round trips per rtt run (default 2000, after 2000 untimed)
  --create-count N     timed create + bind + close per create run (default 1000, after 2000
                       untimed)
  --reqresp-duration S length of each reqresp run (default 3)
  --only LIST          comma-separated subset of:
                       drain,live,max,send,memory,rtt,create,sockets,reqresp
  --note TEXT          a line added to the notes of results.md (e.g. "busy machine")
  --out DIR            where results.md, results.json and chart.svg go (default benchmark/)
  --no-ceiling-build   do not try to build the ceiling binary when it is missing`

function parseArgs(argv) {
  const o = { quick: false, out: HERE, only: null, build: true }
  const num = (name, v, min, max) => {
    const n = Number(v)
    if (v === undefined || !Number.isFinite(n) || n < min || n > max) {
      throw new Error(`${name} needs a number in ${min}..${max}, got ${v}`)
    }
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => argv[++i]
    switch (a) {
      case '--quick':
        o.quick = true
        break
      case '--reps':
        o.reps = num(a, val(), 1, 20)
        break
      case '--size':
        o.size = num(a, val(), 8, 65507)
        break
      case '--rate':
        o.rate = num(a, val(), 1000, 10_000_000)
        break
      case '--duration':
        o.duration = num(a, val(), 0.1, 60)
        break
      case '--send-duration':
        o.sendDuration = num(a, val(), 0.1, 60)
        break
      case '--batch':
        o.batch = num(a, val(), 1, 1024)
        break
      case '--send-batch':
        o.sendBatch = num(a, val(), 1, 1024)
        break
      case '--backlog':
        o.backlog = num(a, val(), 100, 10_000_000)
        break
      case '--drain-warmup':
        o.drainWarmup = num(a, val(), 0, 1_000_000)
        break
      case '--memory-count':
        o.memoryCount = num(a, val(), 1000, 100_000_000)
        break
      case '--memory-rate':
        o.memoryRate = num(a, val(), 1000, 10_000_000)
        break
      case '--gso':
        o.gso = num(a, val(), 1, 64)
        break
      case '--rtt-count':
        o.rttCount = num(a, val(), 10, 1_000_000)
        break
      case '--create-count':
        o.createCount = num(a, val(), 10, 1_000_000)
        break
      case '--reqresp-duration':
        o.reqrespDuration = num(a, val(), 0.1, 60)
        break
      case '--only':
        o.only = new Set(String(val()).split(','))
        for (const s of o.only) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s} (known: ${SCENARIOS.join(',')})`)
        break
      case '--note':
        o.note = String(val())
        break
      case '--out':
        o.out = path.resolve(String(val()))
        break
      case '--no-ceiling-build':
        o.build = false
        break
      case '-h':
      case '--help':
        console.log(USAGE)
        process.exit(0)
        break
      default:
        throw new Error(`unknown argument ${a}\n${USAGE}`)
    }
  }
  const q = o.quick
  const cfg = {
    quick: q,
    out: o.out,
    build: o.build,
    only: o.only,
    reps: o.reps ?? (q ? 1 : 3),
    size: o.size ?? 64,
    batch: o.batch ?? 256,
    sendBatch: o.sendBatch ?? 1024,
    drainRcvbuf: 64 * MiB, // requested; Linux grants twice that
    // Untimed datagrams each drain receiver takes first (see worker.js `warmUp`).
    drainWarmup: o.drainWarmup ?? (q ? 256 : 32_768),
    backlogCap: o.backlog ?? (q ? 5000 : 200_000),
    liveRcvbuf: 4 * MiB,
    rate: o.rate ?? (q ? 50_000 : 200_000),
    duration: o.duration ?? (q ? 0.5 : 3),
    sendDuration: o.sendDuration ?? (q ? 0.3 : 1.5),
    memoryCount: o.memoryCount ?? (q ? 200_000 : 10_000_000),
    memoryRate: o.memoryRate ?? null,
    gso: o.gso ?? 64,
    rttCount: o.rttCount ?? (q ? 200 : 2000),
    // Untimed round trips first, so both sides' JS is optimized before timing (see README.md,
    // scenario 6).
    rttWarmup: q ? 20 : 2000,
    createCount: o.createCount ?? (q ? 100 : 1000),
    // Untimed cycles first, so every implementation's JS has been optimized by V8 (with only
    // 100, the timed cycles still paid the tier-up: see README.md, scenario 7).
    createWarmup: q ? 10 : 2000,
    reqrespDuration: o.reqrespDuration ?? (q ? 0.3 : 3),
    socketsIdle: 100,
    socketsMany: q ? 200 : 1000,
    emfileFiles: q ? 256 : 4096, // RLIMIT_NOFILE of the EMFILE run
    emfileCount: q ? 1000 : 10_000,
    note: o.note ?? null,
    // Whole-run watchdog: a full run is designed for < 6 min.
    watchdogMs: q ? 120_000 : 15 * 60_000,
  }
  cfg.memoryCheckpoint = Math.max(1, Math.round(cfg.memoryCount / 10))
  return cfg
}

// ---- child processes ----------------------------------------------------------------------

/** Runs the ceiling binary to completion and returns its last JSON line. */
async function ceiling(args, limitMs) {
  const p = start(CEILING, args, { name: `ceiling ${args[0]}`, limitMs })
  const code = await p.done
  const last = p.lines[p.lines.length - 1]
  if (code !== 0 || !last) throw new Error(`ceiling ${args.join(' ')} failed (${code}): ${p.stderr.slice(-800)}`)
  return { ...last, stderr: p.stderr }
}

// ---- kernel socket accounting -------------------------------------------------------------

/** rx queue bytes and drop counter of the IPv4 UDP socket bound to `port`, from /proc/net/udp. */
function udpSocketInfo(port) {
  let text
  try {
    text = fs.readFileSync('/proc/net/udp', 'utf8')
  } catch {
    return null
  }
  const want = port.toString(16).toUpperCase().padStart(4, '0')
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 13) continue
    if (f[1].split(':')[1] !== want) continue
    const rx = parseInt(f[4].split(':')[1], 16)
    return { rxQueue: rx, drops: Number(f[12]) }
  }
  return null
}

/** Waits (bounded: 1 s) until the receive queue of `port` stops growing. */
async function settle(port) {
  let prev = -1
  let stable = 0
  for (let i = 0; i < 200 && stable < 2; i++) {
    await sleep(5)
    const info = udpSocketInfo(port)
    const now = info ? info.rxQueue : 0
    if (now === prev) stable++
    else stable = 0
    prev = now
  }
  return udpSocketInfo(port)
}

// ---- machine ------------------------------------------------------------------------------

function readText(file) {
  try {
    return fs.readFileSync(file, 'utf8').trim()
  } catch {
    return null
  }
}

function machineInfo() {
  const cpus = os.cpus()
  const bun = spawnSync('bun', ['--version'], { encoding: 'utf8', timeout: 5000 })
  return {
    cpu: cpus.length > 0 ? cpus[0].model.trim() : 'unknown',
    cores: cpus.length,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    date: new Date().toISOString(),
    rmemMax: Number(readText('/proc/sys/net/core/rmem_max')) || null,
    wmemMax: Number(readText('/proc/sys/net/core/wmem_max')) || null,
    root: typeof process.getuid === 'function' && process.getuid() === 0,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    bun: bun.status === 0 ? String(bun.stdout).trim() : null,
  }
}

/** True when a ceiling source file is newer than the binary (a rebuild is due). */
function ceilingStale() {
  let built
  try {
    built = fs.statSync(CEILING).mtimeMs
  } catch {
    return true
  }
  const srcDir = path.join(CEILING_DIR, 'src')
  const files = [path.join(CEILING_DIR, 'Cargo.toml'), ...fs.readdirSync(srcDir).map((f) => path.join(srcDir, f))]
  return files.some((f) => fs.statSync(f).mtimeMs > built)
}

function ensureCeiling(cfg) {
  if (!ceilingStale()) return
  if (fs.existsSync(CEILING) && !cfg.build) {
    console.error('warning: the ceiling binary is older than its sources (rebuild with cargo build --release)')
    return
  }
  if (!cfg.build) throw new Error(`the ceiling binary is missing (${CEILING}); build it with: cargo build --release --manifest-path benchmark/ceiling/Cargo.toml`)
  console.error('building the ceiling binary (cargo build --release; it is missing or older than its sources)...')
  const r = spawnSync('cargo', ['build', '--release', '--manifest-path', path.join(CEILING_DIR, 'Cargo.toml')], {
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 600_000,
  })
  if (r.status !== 0 || !fs.existsSync(CEILING)) {
    throw new Error('could not build the ceiling binary, which is also the load generator of every scenario; install cargo or build it by hand')
  }
}

// ---- scenarios ----------------------------------------------------------------------------

/**
 * Buffer calibration: what the kernel grants for the drain buffer request, whether it was
 * forced past rmem_max, and the receive memory one datagram of `size` bytes costs (skb
 * truesize), measured on a sink that does not read.
 */
async function calibrate(cfg) {
  const sink = start(CEILING, ['sink', '--port', '0', '--duration', '30', '--rcvbuf', String(cfg.drainRcvbuf)], {
    name: 'ceiling sink (calibration)',
    limitMs: 40_000,
  })
  const hello = await sink.next(10_000)
  const n = 2000
  await ceiling(['send', '--port', String(hello.listening), '--size', String(cfg.size), '--batch', '1024', '--count', String(n)], 20_000)
  await settle(hello.listening)
  sink.end()
  const fin = await sink.next(10_000)
  await sink.done
  const truesize = fin.queuedBytes > 0 ? fin.queuedBytes / (n - fin.kernelDrops) : 1024
  const backlog = Math.max(100, Math.min(cfg.backlogCap, Math.floor((0.9 * hello.rcvbuf) / truesize)))
  return { granted: hello.rcvbuf, forced: hello.forced, truesize, backlog, requested: cfg.drainRcvbuf }
}

/** Forces a node:dgram socket's receive buffer through the ceiling (pidfd_getfd). */
async function forceDgramBuffer(ready, bytes, notes) {
  if (!(ready.fd >= 0)) {
    notes.add('node:dgram: no fd exposed; its receive buffer could not be forced')
    return { rcvbuf: ready.rcvbuf, forced: false }
  }
  try {
    const r = await ceiling(['setbuf', '--pid', String(ready.pid), '--fd', String(ready.fd), '--rcvbuf', String(bytes)], 10_000)
    notes.add("node:dgram's receive buffer was forced to the others' size by `ceiling setbuf` (pidfd_getfd + SO_RCVBUFFORCE on its fd).")
    return { rcvbuf: r.rcvbuf, forced: r.forced }
  } catch (e) {
    notes.add(`node:dgram: SO_RCVBUFFORCE through pidfd_getfd failed (${e.message.split('\n')[0].slice(0, 160)}); it keeps the capped buffer`)
    return { rcvbuf: ready.rcvbuf, forced: false }
  }
}

const WORKER_LIMIT = 90_000

/**
 * Queues the drain backlog into a stalled receiver (`ceiling send`, a separate process for every
 * receiver alike), waits until the queue stops growing, then tells the receiver `go N`.
 * Returns the fill result and the socket's kernel accounting.
 */
async function fillAndGo(receiver, port, cfg, cal) {
  // The socket's drop counter is cumulative: count from here (a warm-up came before).
  const before = udpSocketInfo(port)
  const fill = await ceiling(['send', '--port', String(port), '--size', String(cfg.size), '--batch', '1024', '--count', String(cal.backlog)], 60_000)
  const info = await settle(port)
  if (info && before) info.drops -= before.drops
  receiver.write(`go ${fill.sent}`)
  return { fill, info }
}

async function drainJs(cfg, cal, mode, notes) {
  const w = start('worker', [mode, JSON.stringify({ rcvbuf: cfg.drainRcvbuf, batchSize: cfg.batch, limitMs: WORKER_LIMIT, drainLimitMs: 30_000, warmup: cfg.drainWarmup, size: cfg.size })], {
    name: mode,
    limitMs: WORKER_LIMIT + 5000,
  })
  try {
    const ready = await w.next(20_000)
    let buf = { rcvbuf: ready.rcvbuf, forced: ready.forced }
    if (mode === 'drain-dgram') buf = await forceDgramBuffer(ready, cfg.drainRcvbuf, notes)
    const { fill, info } = await fillAndGo(w, ready.port, cfg, cal)
    const { result } = await w.next(40_000)
    await w.done
    return {
      pps: (result.received / result.ns) * 1e9,
      ms: result.ns / 1e6,
      received: result.received,
      backlog: fill.sent,
      drops: info ? info.drops : null,
      cpuNsPerDgram: result.cpuNs / Math.max(1, result.received),
      faultsPerK: (1000 * result.minorFaults) / Math.max(1, result.received),
      rcvbuf: buf.rcvbuf,
      complete: result.why === 'complete',
      native: result.native,
      ...perBatch(result.native),
    }
  } finally {
    w.kill()
  }
}

async function drainCeiling(cfg, cal, keep = false) {
  // Filled by a separate `ceiling send` process, exactly as for the JS receivers: a backlog sent
  // by the draining thread itself drains ~20 % faster (skbs allocated and freed on one CPU).
  // With `keep`, every batch is also copied into fresh memory kept to the end (`--keep`).
  const args = ['drain', '--external', '--count', String(cal.backlog), '--size', String(cfg.size), '--batch', String(cfg.batch), '--rcvbuf', String(cfg.drainRcvbuf)]
  if (keep) args.push('--keep')
  const p = start(CEILING, args, { name: 'ceiling drain', limitMs: 120_000 })
  try {
    const ready = await p.next(20_000)
    await fillAndGo(p, ready.port, cfg, cal)
    const r = await p.next(120_000)
    const code = await p.done
    if (code !== 0) throw new Error(`ceiling ${args.join(' ')} failed (${code}): ${p.stderr.slice(-800)}`)
    return {
      pps: r.pps,
      ms: r.ns / 1e6,
      received: r.received,
      backlog: r.sent,
      drops: r.kernelDrops,
      cpuNsPerDgram: r.cpuNs / Math.max(1, r.received),
      faultsPerK: (1000 * r.minorFaults) / Math.max(1, r.received),
      rcvbuf: r.rcvbuf,
      complete: r.received === r.sent,
    }
  } finally {
    p.kill()
  }
}

/** One live run: the receiver is started, then `ceiling send` offers load for `duration`. */
async function liveJs(cfg, mode, rate, notes, socketOptions = {}) {
  const limit = Math.round(cfg.duration * 1000) + 30_000
  const w = start('worker', [mode, JSON.stringify({ rcvbuf: cfg.liveRcvbuf, batchSize: cfg.batch, limitMs: limit, idleMs: 300, socketOptions })], {
    name: mode,
    limitMs: limit + 5000,
  })
  try {
    const ready = await w.next(20_000)
    let buf = { rcvbuf: ready.rcvbuf }
    if (mode === 'live-dgram') buf = await forceDgramBuffer(ready, cfg.liveRcvbuf, notes)
    w.write('go')
    await sleep(30) // let the receiver attach its listener
    const snd = await ceiling(senderArgs(cfg, ready.port, rate), limit)
    w.write(JSON.stringify({ expect: snd.sent }))
    const { result } = await w.next(limit)
    await w.done
    return { ...liveRow(snd, result.received, result.ns, result.cpuNs, buf.rcvbuf), native: result.native, ...perBatch(result.native) }
  } finally {
    w.kill()
  }
}

/** Datagrams per batch / per receive system call, from udp-mmsg's counters. */
function perBatch(n) {
  if (!n || !n.batchesReceived) return {}
  return { perBatch: n.datagramsReceived / n.batchesReceived, perSyscall: n.datagramsReceived / Math.max(1, n.recvSyscalls) }
}

/** The load generator: paced plain sendmmsg for a rate, GSO at full speed (see README). */
function senderArgs(cfg, port, rate) {
  const a = ['send', '--port', String(port), '--size', String(cfg.size), '--batch', String(cfg.batch), '--duration', String(cfg.duration)]
  if (rate) a.push('--rate', String(rate))
  else if (cfg.gso > 1) a.push('--gso', String(cfg.gso))
  return a
}

function liveRow(snd, received, ns, cpuNs, rcvbuf) {
  const lost = Math.max(0, snd.sent - received)
  return {
    sent: snd.sent,
    senderPps: snd.pps,
    received,
    lost,
    lossPct: (100 * lost) / Math.max(1, snd.sent),
    pps: ns > 0 ? (received / ns) * 1e9 : 0,
    cpuNsPerDgram: cpuNs / Math.max(1, received),
    rcvbuf,
  }
}

/** udp-mmsg's default receive coalescing window (µs), mirrored by one ceiling variant. */
function libraryCoalesceUs() {
  try {
    // Not public API: read from the compiled package the benchmark runs (its options module).
    const d = require(require('node:path').join(require('node:path').dirname(require.resolve('udp-mmsg')), 'options.js')).DEFAULTS
    return Number.isInteger(d.coalesceMicros) ? d.coalesceMicros : 0
  } catch {
    return 0
  }
}

async function liveCeiling(cfg, rate, coalesceUs = 0) {
  const limit = Math.round(cfg.duration * 1000) + 30_000
  const args = ['recv', '--port', '0', '--batch', String(cfg.batch), '--duration', String(cfg.duration + 20), '--rcvbuf', String(cfg.liveRcvbuf), '--bufsize', '2048', '--idle-ms', '300', '--stop-on-eof']
  if (rate) args.push('--expect', String(Math.ceil(rate * cfg.duration)))
  if (coalesceUs > 0) args.push('--coalesce-us', String(coalesceUs))
  const rx = start(CEILING, args, { name: 'ceiling recv', limitMs: limit })
  try {
    const hello = await rx.next(10_000)
    const snd = await ceiling(senderArgs(cfg, hello.listening, rate), limit)
    rx.end() // the sender is done: the receiver stops after 300 ms without a datagram
    const r = await rx.next(limit)
    await rx.done
    return liveRow(snd, r.received, r.ns, r.cpuNs, null)
  } finally {
    rx.kill()
  }
}

async function sendJs(cfg, mode, port, socketOptions = {}) {
  const limit = Math.round(cfg.sendDuration * 1000) + 30_000
  const w = start('worker', [mode, JSON.stringify({ port, size: cfg.size, durationMs: cfg.sendDuration * 1000, batch: cfg.sendBatch, limitMs: limit, socketOptions })], {
    name: mode,
    limitMs: limit + 5000,
  })
  try {
    await w.next(20_000)
    w.write('go')
    const { result } = await w.next(limit)
    await w.done
    return {
      pps: (result.sent / result.ns) * 1e9,
      sent: result.sent,
      total: result.sent + result.warmup, // the sink also sees the (untimed) warm-up
      cpuNsPerDgram: result.cpuNs / Math.max(1, result.sent),
      errors: result.errors,
    }
  } finally {
    w.kill()
  }
}

async function sendCeiling(cfg, port, gso = 1) {
  const args = ['send', '--port', String(port), '--size', String(cfg.size), '--batch', String(cfg.sendBatch), '--duration', String(cfg.sendDuration)]
  if (gso > 1) args.push('--gso', String(gso))
  const r = await ceiling(args, Math.round(cfg.sendDuration * 1000) + 30_000)
  return { pps: r.pps, sent: r.sent, total: r.sent, cpuNsPerDgram: null, errors: 0 }
}

/**
 * Memory: the batch API receives `memoryCount` datagrams from a paced sender. The sender runs
 * until the receiver reports the target (a time cap bounds it), so the target is reached even
 * if the machine drops some datagrams; kernel drops are reported.
 */
async function memory(cfg, rate) {
  const seconds = cfg.memoryCount / rate
  const cap = Math.ceil(seconds * 1.5 + 5)
  const limit = cap * 1000 + 30_000
  const w = start(
    'worker',
    ['memory', JSON.stringify({ rcvbuf: cfg.drainRcvbuf, batchSize: cfg.batch, limitMs: limit, idleMs: 1000, target: cfg.memoryCount, checkpoints: [cfg.memoryCheckpoint] })],
    { name: 'memory', limitMs: limit + 5000, nodeArgs: ['--expose-gc'] },
  )
  let snd = null
  try {
    const ready = await w.next(20_000)
    w.write('go')
    await sleep(30)
    const args = ['send', '--port', String(ready.port), '--size', String(cfg.size), '--batch', String(cfg.batch), '--duration', String(cap), '--rate', String(rate)]
    if (cfg.gso > 1) args.push('--gso', String(cfg.gso))
    snd = start(CEILING, args, { name: 'ceiling send (memory)', limitMs: limit })
    const t0 = Date.now()
    const { result } = await w.next(limit)
    const elapsed = (Date.now() - t0) / 1000
    snd.kill()
    await w.done
    const cp = result.checkpoints[0] || null
    return {
      rate,
      seconds: elapsed,
      target: cfg.memoryCount,
      received: result.received,
      kernelDrops: result.native ? result.native.kernelDrops : null,
      complete: result.why === 'complete',
      before: result.before,
      checkpoint: cp,
      end: result.end,
      endAfterGc: result.endAfterGc || null,
      checkpointAt: cfg.memoryCheckpoint,
    }
  } finally {
    if (snd) snd.kill()
    w.kill()
  }
}

// ---- driver -------------------------------------------------------------------------------

async function main() {
  const cfg = parseArgs(process.argv.slice(2))
  const watchdog = setTimeout(() => {
    console.error(`benchmark: watchdog: still running after ${cfg.watchdogMs / 1000} s, giving up`)
    killAll()
    process.exit(1)
  }, cfg.watchdogMs)
  watchdog.unref()
  const t0 = Date.now()
  const want = (s) => cfg.only === null || cfg.only.has(s)
  // Only the receive/send scenarios need the ceiling binary (and the buffer calibration).
  const needCeiling = CEILING_SCENARIOS.some(want)
  if (needCeiling) ensureCeiling(cfg)
  const machine = machineInfo()
  const notes = new Set()
  if (cfg.note) notes.add(cfg.note)
  const res = { config: { ...cfg, only: cfg.only ? [...cfg.only] : null }, machine, scenarios: {}, notes: [] }

  console.error(`udp-mmsg benchmark: ${cfg.quick ? 'quick' : 'full'} run, ${cfg.reps} rep(s), ${cfg.size}-byte datagrams, loopback ${HOST}`)
  const cal = needCeiling ? await calibrate(cfg) : null
  res.calibration = cal
  if (cal && !cal.forced) {
    notes.add(
      `Receive buffers were capped by net.core.rmem_max (${machine.rmemMax} B; not root, SO_RCVBUFFORCE refused): ` +
        `the drain buffer is ${cal.granted} B instead of ${2 * cfg.drainRcvbuf} B, so the backlog is only ${cal.backlog} datagrams.`,
    )
  }
  if (!machine.bun) notes.add('Bun: no `bun` binary on PATH, its udpSocket was skipped.')
  else notes.add(`Bun ${machine.bun} is on PATH, but this suite has no Bun participant yet (skipped).`)

  if (want('drain')) {
    console.error(`drain: backlog ${cal.backlog} datagrams (${cal.truesize.toFixed(0)} B of receive memory each, buffer ${cal.granted} B${cal.forced ? ', forced' : ', capped'})`)
    const s = { backlog: cal.backlog, impls: {} }
    // A drain run is short (< 1 s), so it gets more rounds than the other scenarios.
    s.impls = await interleave('drain', cfg.quick ? cfg.reps : Math.max(cfg.reps, 7), [
      ['udp-mmsg batch', () => drainJs(cfg, cal, 'drain-batch', notes)],
      ['udp-mmsg per-message', () => drainJs(cfg, cal, 'drain-iter', notes)],
      ['node:dgram', () => drainJs(cfg, cal, 'drain-dgram', notes)],
      ['ceiling', () => drainCeiling(cfg, cal)],
      ['ceiling, batches kept', () => drainCeiling(cfg, cal, true)],
    ])
    for (const [impl, rows] of Object.entries(s.impls)) {
      for (const r of rows) {
        if (r.failed) continue
        if (r.drops) notes.add(`drain ${impl}: the kernel dropped ${r.drops} datagrams while the backlog was queued`)
        if (!r.complete) notes.add(`drain ${impl}: only ${r.received} of ${r.backlog} datagrams arrived`)
        if (r.rcvbuf < cal.granted) notes.add(`drain ${impl}: receive buffer ${r.rcvbuf} B, smaller than the ${cal.granted} B the others got`)
      }
    }
    res.scenarios.drain = s
  }
  if (want('live')) {
    console.error(`live: ${cfg.rate} pps offered for ${cfg.duration} s`)
    const s = { rate: cfg.rate, duration: cfg.duration, impls: {} }
    const impls = [
      ['udp-mmsg batch', () => liveJs(cfg, 'live-batch', cfg.rate, notes)],
      ['node:dgram', () => liveJs(cfg, 'live-dgram', cfg.rate, notes)],
      ['ceiling', () => liveCeiling(cfg, cfg.rate)],
    ]
    const us = libraryCoalesceUs()
    if (us > 0) impls.push([`ceiling + ${us} µs coalescing`, () => liveCeiling(cfg, cfg.rate, us)])
    s.impls = await interleave('live', cfg.reps, impls)
    res.scenarios.live = s
  }
  if (want('max')) {
    console.error(`max: sender at full speed for ${cfg.duration} s${cfg.gso > 1 ? ` (GSO, ${cfg.gso} datagrams per send)` : ''}`)
    const s = { duration: cfg.duration, gso: cfg.gso, impls: {} }
    const impls = [
      ['udp-mmsg batch', () => liveJs(cfg, 'live-batch', null, notes)],
      ['node:dgram', () => liveJs(cfg, 'live-dgram', null, notes)],
      ['ceiling', () => liveCeiling(cfg, null)],
    ]
    // Not a like-for-like row: with UDP_GRO the kernel hands over whole GSO trains.
    if (cfg.gso > 1) impls.push(['udp-mmsg batch + gro', () => liveJs(cfg, 'live-batch', null, notes, { gro: true })])
    s.impls = await interleave('max', cfg.reps, impls)
    res.scenarios.max = s
  }
  if (want('send')) {
    console.error(`send: ${cfg.sendDuration} s per run into a bound socket nobody reads`)
    const sink = start(CEILING, ['sink', '--port', '0', '--duration', '600'], { name: 'ceiling sink', limitMs: 660_000 })
    try {
      const hello = await sink.next(10_000)
      const port = hello.listening
      const s = { duration: cfg.sendDuration, sinkRcvbuf: hello.rcvbuf, impls: {} }
      const checked = (fn) => async () => {
        const before = udpSocketInfo(port)
        const r = await fn()
        await settle(port)
        const after = udpSocketInfo(port)
        if (before && after) {
          const delivered = after.drops - before.drops + Math.round((after.rxQueue - before.rxQueue) / cal.truesize)
          r.sinkSaw = delivered
        }
        return r
      }
      const impls = [
        ['udp-mmsg sendBatch', checked(() => sendJs(cfg, 'send-batch', port))],
        ['udp-mmsg sendBatch (gso: false)', checked(() => sendJs(cfg, 'send-batch', port, { gso: false }))],
        ['node:dgram (callback-paced)', checked(() => sendJs(cfg, 'send-dgram-cb', port))],
        [`node:dgram (bursts of ${cfg.sendBatch})`, checked(() => sendJs(cfg, 'send-dgram-burst', port))],
        ['ceiling', checked(() => sendCeiling(cfg, port))],
      ]
      if (cfg.gso > 1) impls.push([`ceiling + GSO ${cfg.gso}`, checked(() => sendCeiling(cfg, port, cfg.gso))])
      // A send run is short, so it gets more rounds than the live scenarios.
      s.impls = await interleave('send', cfg.quick ? cfg.reps : Math.max(cfg.reps, 5), impls)
      res.scenarios.send = s
    } finally {
      sink.end()
      await Promise.race([sink.done, sleep(2000)])
      sink.kill()
    }
  }
  if (want('memory')) {
    let rate = cfg.memoryRate
    if (rate === null) {
      const maxRows = res.scenarios.max ? res.scenarios.max.impls['udp-mmsg batch'].filter((r) => !r.failed) : []
      const m = report.median(maxRows.map((r) => r.pps))
      // 70% of what udp-mmsg received at full speed, but fast enough to finish in ~25 s.
      const floor = cfg.memoryCount / 25
      rate = cfg.quick ? 200_000 : m ? Math.round(Math.min(1_000_000, Math.max(floor, 0.7 * m)) / 1000) * 1000 : 500_000
    }
    console.error(`memory: ${cfg.memoryCount} datagrams at ${rate} pps through the batch API`)
    try {
      res.scenarios.memory = await memory(cfg, rate)
      const m = res.scenarios.memory
      console.error(`  rss ${report.fmtBytes(m.before.rss)} -> ${m.checkpoint ? report.fmtBytes(m.checkpoint.rss) : '?'} -> ${report.fmtBytes(m.end.rss)}`)
    } catch (e) {
      console.error(`  memory FAILED: ${e.message.split('\n')[0]}`)
      res.scenarios.memory = { failed: e.message.split('\n')[0].slice(0, 300) }
    }
  }
  for (const mod of MODULES) {
    if (!want(mod.id)) continue
    try {
      res.scenarios[mod.id] = await mod.run(cfg)
    } catch (e) {
      console.error(`  ${mod.id} FAILED: ${e.message.split('\n')[0]}`)
      notes.add(`${mod.id}: the scenario failed: ${e.message.split('\n')[0].slice(0, 300)}`)
    }
  }
  res.notes = [...notes]
  res.elapsedMs = Date.now() - t0

  const tables = report.buildTables(res)
  console.log(report.renderText(res, tables))
  fs.mkdirSync(cfg.out, { recursive: true })
  fs.writeFileSync(path.join(cfg.out, 'results.md'), report.renderMarkdown(res, tables))
  fs.writeFileSync(path.join(cfg.out, 'results.json'), JSON.stringify(res, null, 2) + '\n')
  fs.writeFileSync(path.join(cfg.out, 'chart.svg'), report.renderSvg(res, tables))
  console.error(`wrote ${path.join(cfg.out, 'results.md')}, results.json and chart.svg (${(res.elapsedMs / 1000).toFixed(1)} s)`)
  clearTimeout(watchdog)
}

main().then(
  () => {
    killAll()
    process.exit(0)
  },
  (e) => {
    console.error(`benchmark failed: ${(e && e.stack) || e}`)
    killAll()
    process.exit(1)
  },
)
