'use strict'
// One benchmark participant, run as a child process of benchmark/run.js so that every
// implementation gets a fresh process (own heap, own JIT state, own CPU accounting).
//
//   node benchmark/worker.js MODE 'JSON options'
//
// Protocol: the worker writes JSON lines on stdout; the parent writes lines on its stdin.
//   worker -> {"ready":true, port, pid, fd?, rcvbuf, forced}   once bound
//   parent -> go                                               start (timing begins)
//   parent -> {"expect":N}                                     live modes: the sender is done
//   worker -> {"result":{...}}                                 then the worker exits
// Until 'go' arrives the worker blocks its thread in a synchronous read of stdin, so the
// event loop does not run and nothing reads the socket: the backlog of a drain run waits in
// the kernel for every implementation alike (udp-mmsg also has no 'batch' listener yet, so
// its I/O thread is paused). Every wait is bounded by a deadline (`limitMs`).

const fs = require('node:fs')
const dgram = require('node:dgram')

const MODE = process.argv[2]
const OPTS = JSON.parse(process.argv[3] || '{}')
const HOST = '127.0.0.1' // loopback only, always
const LIMIT_MS = OPTS.limitMs || 60_000

process.noDeprecation = true // dgram's _handle.fd is deprecated but is the only way to the fd

// Hard stop: whatever happens, this process ends.
setTimeout(() => {
  out({ error: `worker ${MODE} exceeded its ${LIMIT_MS} ms limit` })
  process.exit(3)
}, LIMIT_MS).unref()

function out(obj) {
  fs.writeSync(1, JSON.stringify(obj) + '\n')
}

let stdinRest = ''
/** Blocks the whole thread until one line arrives on stdin (or the deadline passes). */
function readLineSync(deadlineMs) {
  const buf = Buffer.alloc(256)
  const sleeper = new Int32Array(new SharedArrayBuffer(4))
  const deadline = Date.now() + deadlineMs
  while (!stdinRest.includes('\n')) {
    if (Date.now() > deadline) throw new Error('no command from the parent before the deadline')
    let n = 0
    try {
      n = fs.readSync(0, buf, 0, buf.length, null)
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e
      Atomics.wait(sleeper, 0, 0, 1) // non-blocking pipe: sleep 1 ms, thread stays blocked
      continue
    }
    if (n === 0) throw new Error('stdin closed before a command arrived')
    stdinRest += buf.toString('utf8', 0, n)
  }
  const i = stdinRest.indexOf('\n')
  const line = stdinRest.slice(0, i)
  stdinRest = stdinRest.slice(i + 1)
  return line.trim()
}

/** Calls `fn(obj)` for every later JSON line on stdin (asynchronously). */
function onCommands(fn) {
  let rest = stdinRest
  const flush = () => {
    let i
    while ((i = rest.indexOf('\n')) !== -1) {
      const line = rest.slice(0, i).trim()
      rest = rest.slice(i + 1)
      if (line) fn(JSON.parse(line))
    }
  }
  flush()
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (d) => {
    rest += d
    flush()
  })
  process.stdin.on('end', () => process.exit(0)) // parent gone
}

function cpuNs() {
  const u = process.cpuUsage() // getrusage(RUSAGE_SELF): every thread, the I/O thread included
  return (u.user + u.system) * 1000
}

function mem() {
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

/**
 * Memory after a full GC whose finalizers have run: N-API finalizers of collected Buffers (the
 * batch buffers) run on a later turn of the event loop, so a plain gc() still counts them.
 */
async function memAfterGc() {
  global.gc()
  await turn()
  await turn()
  global.gc()
  return mem()
}

/** udp-mmsg's own counters (batches, receive system calls), or undefined for node:dgram. */
function nativeStats(sock) {
  if (typeof sock.stats !== 'function') return undefined
  const s = sock.stats()
  return { batchesReceived: s.batchesReceived, recvSyscalls: s.recvSyscalls, datagramsReceived: s.datagramsReceived, kernelDrops: s.kernelDrops }
}

function loadUdpMmsg() {
  return require('udp-mmsg').UdpSocket
}

/** Binds the receiver of `kind` ('batch' | 'iter' | 'dgram') and resolves with its handles. */
async function bindReceiver(kind) {
  if (kind === 'dgram') {
    const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: OPTS.rcvbuf })
    await new Promise((resolve, reject) => {
      sock.once('error', reject)
      sock.bind(0, HOST, resolve)
    })
    const fd = sock._handle && typeof sock._handle.fd === 'number' ? sock._handle.fd : -1
    return { sock, port: sock.address().port, fd, rcvbuf: sock.getRecvBufferSize(), forced: false }
  }
  const UdpSocket = loadUdpMmsg()
  const opts = { address: HOST, port: 0, recvBufferSize: OPTS.rcvbuf, forceBufferSize: true }
  if (OPTS.batchSize) opts.batchSize = OPTS.batchSize
  Object.assign(opts, OPTS.socketOptions) // experiments: any other bind option
  const prev = process.listeners('warning')
  process.removeAllListeners('warning') // the "capped" warning is reported by the parent
  const sock = await UdpSocket.bind(opts)
  for (const l of prev) process.on('warning', l)
  const sizes = sock.bufferSizes()
  return { sock, port: sock.localAddress().port, fd: -1, rcvbuf: sizes.recvBufferSize, forced: sizes.recvForced }
}

/**
 * Starts counting datagrams on a bound receiver. `onDatagrams(n)` is called after every
 * batch / message with the running total. Returns nothing; the caller decides when to stop.
 */
function startReceiving(kind, r, onDatagrams) {
  let count = 0
  let sink = 0 // consumed values, so the per-message work cannot be optimised away
  if (kind === 'batch') {
    r.sock.onBatch((batch) => {
      count += batch.count
      onDatagrams(count)
    })
  } else if (kind === 'iter') {
    r.sock.onBatch((batch) => {
      for (const m of batch) {
        sink += m.data.length + m.address.length + m.port
        count++
      }
      onDatagrams(count)
    })
  } else {
    r.sock.on('message', (msg, rinfo) => {
      sink += msg.length + rinfo.address.length + rinfo.port
      count++
      onDatagrams(count)
    })
  }
  return () => sink
}

// ---- drain ----------------------------------------------------------------------------------
// Bound, warmed up, then silent until 'go <N>'; then time how long it takes to receive N
// datagrams.
async function drain(kind) {
  const r = await bindReceiver(kind)
  let onCount = () => {}
  startReceiving(kind, r, (count) => onCount(count))
  const base = await warmUp(r, OPTS.warmup || 0, OPTS.size || 64, (fn) => (onCount = fn))
  out({ ready: true, port: r.port, pid: process.pid, fd: r.fd, rcvbuf: r.rcvbuf, forced: r.forced })
  const cmd = readLineSync(LIMIT_MS) // blocks: the event loop (and so every receiver) does not read
  const expect = Number(cmd.split(' ')[1])
  const cpu0 = cpuNs()
  const faults0 = process.resourceUsage().minorPageFault
  const t0 = process.hrtime.bigint()
  let done = false
  const finish = (count, why) => {
    if (done) return
    done = true
    const ns = Number(process.hrtime.bigint() - t0)
    const cpu = cpuNs() - cpu0
    const minorFaults = process.resourceUsage().minorPageFault - faults0
    out({ result: { received: count, warmup: base, ns, cpuNs: cpu, minorFaults, why, ...mem(), native: nativeStats(r.sock) } })
    r.sock.close()
    process.exit(0)
  }
  let last = 0
  onCount = (total) => {
    last = total - base
    if (last >= expect) finish(last, 'complete')
  }
  // Bounded: give up after the drain time limit, reporting what arrived.
  setTimeout(() => finish(last, 'timeout'), OPTS.drainLimitMs || 30_000)
}

/**
 * Untimed warm-up of a receiver whose counting handler is attached: `n` datagrams of `size`
 * bytes, queued from a node:dgram socket of this process while the event loop cannot run (so
 * they arrive as a backlog, as the timed one will), then received through the same handler.
 * The timed drain then measures a running receiver, as a service is after its first seconds:
 * its JS compiled and optimized, its socket armed. A cold process spent 4-5 ms of a ~190 ms
 * drain before its first batch (lazy compilation, a scavenge), then ran its handlers in V8's
 * baseline tier for a good part of the drain (udp-mmsg calls JS once per 256 datagrams, so
 * its code warms up slower than a per-datagram handler's). Resolves with the count received.
 */
async function warmUp(r, n, size, setOnCount) {
  if (n <= 0) return 0
  const tx = dgram.createSocket('udp4')
  await new Promise((resolve, reject) => {
    tx.once('error', reject)
    tx.bind(0, HOST, resolve)
  })
  let received = 0
  const arrived = new Promise((resolve) => {
    setOnCount((total) => {
      received = total
      if (total >= n) resolve()
    })
  })
  const payload = Buffer.alloc(size, 0x5a)
  // In chunks the receive buffer holds (node:dgram's is still rmem_default-sized here: the
  // parent forces it after 'ready'), each read before the next is sent, so none is dropped.
  const chunk = Math.max(32, Math.min(n, Math.floor(r.rcvbuf / 2048)))
  const deadline = Date.now() + 5000
  for (let sent = 0; sent < n && Date.now() < deadline; ) {
    const end = Math.min(n, sent + chunk)
    for (let i = sent; i < end; i++) tx.send(payload, r.port, HOST)
    sent = end
    while (received < sent && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await Promise.race([arrived, new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref())])
  tx.close()
  setOnCount(() => {})
  await turn() // whatever the last wake-up armed (udp-mmsg's coalescing window) settles
  return received
}

// ---- live receive ---------------------------------------------------------------------------
// Counts datagrams from 'go' until the parent says how many were sent ({"expect":N}) and they
// all arrived, or until `idleMs` pass without one after that.
async function live(kind, opts = {}) {
  const r = await bindReceiver(kind)
  out({ ready: true, port: r.port, pid: process.pid, fd: r.fd, rcvbuf: r.rcvbuf, forced: r.forced })
  readLineSync(LIMIT_MS)
  const cpu0 = cpuNs()
  const mem0 = mem()
  let count = 0
  let first = 0n
  let last = 0n
  // Memory mode knows its target up front (the sender runs until the target is reached).
  let expect = OPTS.target || Infinity
  let lastChange = Date.now()
  let done = false
  const checkpoints = []
  const nextCheckpoint = opts.checkpoints ? opts.checkpoints.slice() : []
  let checkpointGc = Promise.resolve()
  const finish = async (why) => {
    if (done) return
    done = true
    const result = {
      received: count,
      ns: first === 0n ? 0 : Number(last - first),
      cpuNs: cpuNs() - cpu0,
      why,
      before: mem0,
      checkpoints,
      end: mem(),
      native: nativeStats(r.sock),
    }
    await checkpointGc
    if (opts.gcAtEnd && global.gc) result.endAfterGc = await memAfterGc()
    out({ result })
    r.sock.close()
    process.exit(0)
  }
  startReceiving(kind, r, (n) => {
    const t = process.hrtime.bigint()
    if (first === 0n) first = t
    last = t
    count = n
    if (nextCheckpoint.length > 0 && n >= nextCheckpoint[0]) {
      const at = nextCheckpoint.shift()
      const cp = { at, received: n, ...mem() }
      if (opts.gcAtCheckpoints && global.gc) {
        checkpointGc = memAfterGc().then((m) => {
          cp.afterGc = m
        })
      }
      checkpoints.push(cp)
    }
    if (n >= expect) finish('complete')
  })
  const idleMs = OPTS.idleMs || 300
  let seen = -1
  const timer = setInterval(() => {
    if (count !== seen) {
      seen = count
      lastChange = Date.now()
    } else if (expect !== Infinity && count > 0 && Date.now() - lastChange > idleMs) {
      clearInterval(timer)
      finish('idle')
    }
  }, 20)
  onCommands((c) => {
    if (typeof c.expect === 'number') {
      expect = c.expect
      lastChange = Date.now()
      if (count >= expect) finish('complete')
    }
  })
}

// ---- send -----------------------------------------------------------------------------------
// Sends `size`-byte datagrams to the sink for `durationMs`; reports datagrams handed to the
// kernel (sendBatch resolved / dgram callbacks called without error) and the time taken.
async function send(kind) {
  const { port, size, durationMs } = OPTS
  const payload = Buffer.alloc(size, 0x61)
  let sent = 0
  let errorsSeen = 0
  let runFor
  let sock
  if (kind === 'batch') {
    const UdpSocket = loadUdpMmsg()
    sock = await UdpSocket.bind({ address: HOST, port: 0, ...OPTS.socketOptions })
    const msgs = []
    for (let i = 0; i < (OPTS.batch || 1024); i++) msgs.push({ data: payload, address: HOST, port })
    runFor = async (end) => {
      while (process.hrtime.bigint() < end) sent += await sock.sendBatch(msgs)
    }
  } else {
    sock = dgram.createSocket('udp4')
    await new Promise((resolve) => sock.bind(0, HOST, resolve))
    if (kind === 'dgram-cb') {
      // One datagram in flight: the next send is issued from the previous one's callback.
      runFor = (end) =>
        new Promise((resolve) => {
          const next = (err) => {
            if (err) errorsSeen++
            else sent++
            if ((sent & 63) === 0 && process.hrtime.bigint() >= end) return resolve()
            sock.send(payload, port, HOST, next)
          }
          sock.send(payload, port, HOST, (err) => next(err))
        })
    } else {
      // Burst: `batch` sends issued back to back, then wait for the last callback.
      const burst = OPTS.batch || 1024
      runFor = async (end) => {
        while (process.hrtime.bigint() < end) {
          await new Promise((resolve) => {
            let left = burst
            const cb = (err) => {
              if (err) errorsSeen++
              else sent++
              if (--left === 0) resolve()
            }
            for (let i = 0; i < burst; i++) sock.send(payload, port, HOST, cb)
          })
        }
      }
    }
  }
  out({ ready: true, pid: process.pid })
  readLineSync(LIMIT_MS)
  // Warm-up (not counted): a short run so both paths are compiled before timing.
  await runFor(process.hrtime.bigint() + BigInt(Math.round(Math.min(200, durationMs / 4) * 1e6)))
  const warm = sent
  sent = 0
  errorsSeen = 0
  const cpu0 = cpuNs()
  const t0 = process.hrtime.bigint()
  await runFor(t0 + BigInt(Math.round(durationMs * 1e6)))
  const ns = Number(process.hrtime.bigint() - t0)
  out({ result: { sent, ns, cpuNs: cpuNs() - cpu0, errors: errorsSeen, warmup: warm } })
  sock.close()
  process.exit(0)
}

async function main() {
  switch (MODE) {
    case 'drain-batch':
      return drain('batch')
    case 'drain-iter':
      return drain('iter')
    case 'drain-dgram':
      return drain('dgram')
    case 'live-batch':
      return live('batch')
    case 'live-dgram':
      return live('dgram')
    case 'memory':
      return live('batch', { checkpoints: OPTS.checkpoints || [], gcAtCheckpoints: true, gcAtEnd: true })
    case 'send-batch':
      return send('batch')
    case 'send-dgram-cb':
      return send('dgram-cb')
    case 'send-dgram-burst':
      return send('dgram-burst')
    default:
      throw new Error(`unknown mode ${MODE}`)
  }
}

main().catch((e) => {
  out({ error: String((e && e.stack) || e) })
  process.exit(2)
})
