'use strict'
// Child process of the create and sockets scenarios (driven by create.js / sockets.js):
//
//   node benchmark/scenarios/resources.js create KIND 'JSON opts'   create + bind + close loop
//   node benchmark/scenarios/resources.js idle KIND 'JSON opts'     /proc deltas of N idle sockets
//   node benchmark/scenarios/resources.js many KIND 'JSON opts'     N sockets each get a datagram
//   node benchmark/scenarios/resources.js emfile KIND 'JSON opts'   open until the fd limit
//
// KIND is dgram (node:dgram), udpsocket (udp-mmsg UdpSocket) or facade (udp-mmsg/dgram), each
// at its defaults. Each mode prints one {"result":{...}} line and exits. Loopback only.

const { HOST, out, hardLimit, procStatus, fdCount, fileLimit, load, dgramBind, dgramClose, openReceiving, sleep } = require('./child.js')

const [MODE, KIND, ARG] = process.argv.slice(2)
const OPTS = JSON.parse(ARG || '{}')
hardLimit(OPTS.limitMs || 60_000, `resources ${MODE} ${KIND}`)

const gc = typeof global.gc === 'function' ? global.gc : () => {}

/**
 * One create + bind(127.0.0.1, 0) + close, finished as the API defines it: node:dgram and the
 * facade wait for the bind callback ('listening') and the close callback; UdpSocket awaits
 * bind() and the 'close' event.
 */
function cycleFor(kind) {
  const mod = load(kind)
  if (kind === 'udpsocket') {
    return async () => {
      const s = await mod.bind({ address: HOST, port: 0 })
      const closed = new Promise((resolve) => s.once('close', resolve))
      s.close()
      await closed
    }
  }
  return async () => {
    const s = mod.createSocket('udp4')
    await dgramBind(s)
    await dgramClose(s)
  }
}

/** `warmup` untimed cycles, then `count` timed ones; per-cycle times in µs. */
async function create() {
  const cycle = cycleFor(KIND)
  const { count, warmup } = OPTS
  for (let i = 0; i < warmup; i++) await cycle()
  const us = new Float64Array(count)
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < count; i++) {
    const t = process.hrtime.bigint()
    await cycle()
    us[i] = Number(process.hrtime.bigint() - t) / 1000
  }
  const totalUs = Number(process.hrtime.bigint() - t0) / 1000
  us.sort()
  out({ result: { count, medianUs: us[count >> 1], p99Us: us[Math.min(count - 1, Math.ceil(0.99 * count) - 1)], meanUs: totalUs / count } })
}

/** Opens `n` receiving sockets one after the other; stops at the first error. */
async function openMany(n, onDatagram) {
  const socks = []
  let error = null
  for (let i = 0; i < n; i++) {
    try {
      socks.push(await openReceiving(KIND, () => onDatagram(i)))
    } catch (e) {
      error = e
      break
    }
  }
  return { socks, error }
}

const closeAll = (socks) => Promise.all(socks.map((s) => s.close()))

/**
 * Threads, RSS and virtual memory before and after opening `count` bound sockets that all
 * receive (a listener attached) and then sit idle for `settleMs`. The module is loaded before
 * the first reading; gc() runs before both (with --expose-gc).
 */
async function idle() {
  load(KIND)
  gc()
  await sleep(50)
  const before = procStatus()
  const { socks, error } = await openMany(OPTS.count, () => {})
  if (error) throw error
  await sleep(OPTS.settleMs)
  gc()
  const after = procStatus()
  await closeAll(socks)
  out({
    result: {
      count: socks.length,
      before,
      after,
      threads: after.threads - before.threads,
      rss: after.rss - before.rss,
      vsize: after.vsize - before.vsize,
    },
  })
}

/**
 * `count` sockets open at once, all bound and receiving; one node:dgram socket then sends one
 * datagram to each. Succeeds when every socket bound and got its datagram within `waitMs`.
 */
async function many() {
  const { count, waitMs } = OPTS
  const got = new Uint8Array(count)
  let received = 0
  let whenAll = null
  const all = new Promise((resolve) => (whenAll = resolve))
  const t0 = Date.now()
  const { socks, error } = await openMany(count, (i) => {
    if (got[i]++ === 0 && ++received === count) whenAll()
  })
  const openMs = Date.now() - t0
  const peak = procStatus()
  const sender = load('dgram').createSocket('udp4')
  await dgramBind(sender)
  const payload = Buffer.from('one datagram')
  for (const s of socks) sender.send(payload, s.port, HOST)
  const t1 = Date.now()
  await Promise.race([all, sleep(waitMs)])
  const recvMs = Date.now() - t1
  await dgramClose(sender)
  await closeAll(socks)
  out({
    result: {
      count,
      opened: socks.length,
      received,
      openMs,
      recvMs,
      threads: peak.threads,
      rss: peak.rss,
      error: error ? `${error.code || ''} ${error.message}`.trim() : null,
    },
  })
}

/**
 * Run under a lowered RLIMIT_NOFILE (the parent starts it through `sh -c 'ulimit -n L'`):
 * tries to open `count` receiving sockets, expects the first failure to be an error with code
 * EMFILE, closes everything, and compares the number of open fds with the start. One socket
 * is opened and closed first, so process-wide fds created on first use are in both counts.
 * Then checks the process still works: a new socket binds and receives a datagram.
 */
async function emfile() {
  const first = await openReceiving(KIND, () => {})
  await first.close()
  await sleep(50) // as before the second count
  const fdStart = fdCount()
  const { socks, error } = await openMany(OPTS.count, () => {})
  await closeAll(socks)
  await sleep(50)
  const fdEnd = fdCount()
  let worksAfter = false
  try {
    let arrived = null
    const got = new Promise((resolve) => (arrived = resolve))
    const s = await openReceiving(KIND, () => arrived())
    const sender = load('dgram').createSocket('udp4')
    await dgramBind(sender)
    sender.send(Buffer.from('after'), s.port, HOST)
    worksAfter = await Promise.race([got.then(() => true), sleep(2000).then(() => false)])
    await dgramClose(sender)
    await s.close()
  } catch {}
  out({
    result: {
      limit: fileLimit(),
      attempted: OPTS.count,
      opened: socks.length,
      code: error ? error.code || null : null,
      message: error ? String(error.message).slice(0, 200) : null,
      fdStart,
      fdEnd,
      worksAfter,
    },
  })
}

const MODES = { create, idle, many, emfile }

;(MODES[MODE] || (() => Promise.reject(new Error(`unknown mode ${MODE}`))))().then(
  () => process.exit(0),
  (e) => {
    out({ error: String((e && e.stack) || e) })
    process.exit(2)
  },
)
