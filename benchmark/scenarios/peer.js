'use strict'
// Child process of the rtt and reqresp scenarios (driven by rtt.js / reqresp.js):
//
//   node benchmark/scenarios/peer.js server echo|dns KIND 'JSON opts'   a server, until stdin ends
//   node benchmark/scenarios/peer.js rtt-client KIND 'JSON opts'        sequential round trips
//   node benchmark/scenarios/peer.js load 'JSON opts'                   request/response load
//   node benchmark/scenarios/peer.js perquery KIND 'JSON opts'          a new socket per query
//
// KIND is dgram (node:dgram), udpsocket (udp-mmsg UdpSocket) or facade (udp-mmsg/dgram), each
// at its defaults. A server prints {"ready":true,"port":P} once bound and serves until the
// parent closes its stdin; a client prints {"result":{...}} and exits. Loopback only.

const { HOST, out, hardLimit, exitWhenStdinEnds, load, dgramBind, dnsReply } = require('./child.js')

const [MODE, ...REST] = process.argv.slice(2)
const OPTS = JSON.parse(REST[REST.length - 1] || '{}')
hardLimit(OPTS.limitMs || 60_000, `peer ${MODE}`)

// ---- servers --------------------------------------------------------------------------------

/** The echo server's answer: the datagram itself. */
const echo = (q) => q

async function server(protocol, kind) {
  const answer = protocol === 'dns' ? dnsReply : echo
  let errors = 0
  let sock
  let port
  if (kind === 'udpsocket') {
    // The batch API as its documentation shows it: one onBatch call per received batch, all
    // of its answers handed to the kernel at once with trySendBatch (sendBatch for the rest).
    sock = await load(kind).bind({ address: HOST, port: 0 })
    sock.on('error', () => errors++)
    sock.onBatch((batch) => {
      const msgs = []
      for (let i = 0; i < batch.count; i++) {
        const data = answer(batch.data(i))
        if (data !== null) msgs.push({ data, address: batch.address(i), port: batch.port(i) })
      }
      let sent = 0
      try {
        sent = sock.trySendBatch(msgs)
      } catch {
        errors++
        return
      }
      if (sent < msgs.length) sock.sendBatch(msgs.slice(sent)).catch(() => errors++)
    })
    port = sock.localAddress().port
  } else {
    // node:dgram and the facade: the same code, 'message' + send.
    sock = load(kind).createSocket('udp4')
    sock.on('message', (msg, rinfo) => {
      const data = answer(msg)
      if (data !== null) sock.send(data, rinfo.port, rinfo.address)
    })
    await dgramBind(sock)
    sock.on('error', () => errors++)
    port = sock.address().port
  }
  out({ ready: true, port, pid: process.pid })
  exitWhenStdinEnds(() => {
    if (errors) process.stderr.write(`server: ${errors} send errors\n`)
  })
}

// ---- rtt client -----------------------------------------------------------------------------

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]
}

/**
 * `warmup` + `count` strictly sequential round trips of a `size`-byte datagram; each RTT is
 * timed with process.hrtime.bigint from just before the send to the reply's arrival in JS.
 * The first 4 bytes carry a sequence number, so a late reply is never taken for the current
 * one. A round trip with no reply within 1 s counts as lost and the next one is sent.
 */
async function rttClient(kind) {
  const { port, count, warmup, size } = OPTS
  const payload = Buffer.alloc(Math.max(8, size), 0x61)
  const samples = new Float64Array(count)
  let i = -warmup
  let seq = 0
  let t0 = 0n
  let lost = 0
  let stale = 0
  let send
  let sock
  let finished = false
  const finish = (error) => {
    if (finished) return
    finished = true
    clearInterval(watch)
    const sorted = Float64Array.from(samples.subarray(0, Math.max(0, i))).sort()
    const sum = sorted.reduce((a, b) => a + b, 0)
    out({
      result: {
        n: sorted.length,
        p50: percentile(sorted, 0.5),
        p99: percentile(sorted, 0.99),
        mean: sum / Math.max(1, sorted.length),
        min: sorted[0],
        max: sorted[sorted.length - 1],
        lost,
        stale,
        error,
      },
    })
    process.exit(0)
  }
  const next = () => {
    seq = (seq + 1) >>> 0
    payload.writeUInt32LE(seq, 0)
    t0 = process.hrtime.bigint()
    send()
  }
  const onReply = (data) => {
    const t = process.hrtime.bigint()
    if (data.length < 4 || data.readUInt32LE(0) !== seq) {
      stale++
      return
    }
    if (i >= 0) samples[i] = Number(t - t0) / 1000
    i++
    if (i >= count) finish()
    else next()
  }
  if (kind === 'udpsocket') {
    sock = await load(kind).bind({ address: HOST, port: 0 })
    const msgs = [{ data: payload, address: HOST, port }]
    send = () => {
      if (sock.trySendBatch(msgs) === 0) sock.sendBatch(msgs).catch(() => {})
    }
    sock.onBatch((batch) => {
      for (let k = 0; k < batch.count; k++) onReply(batch.data(k))
    })
  } else {
    sock = load('dgram').createSocket('udp4')
    await dgramBind(sock)
    send = () => sock.send(payload, port, HOST)
    sock.on('message', onReply)
  }
  sock.on('error', () => {})
  const watch = setInterval(() => {
    if (process.hrtime.bigint() - t0 < 1_000_000_000n) return
    lost++
    if (lost > 20) finish('more than 20 round trips lost')
    else next()
  }, 100)
  next()
}

// ---- request/response load ------------------------------------------------------------------

/** A 29-byte DNS-like query: 12-byte header (id, RD flag, one question) + example.com A IN. */
function queryTemplate() {
  const q = Buffer.alloc(29)
  q.writeUInt16BE(0x0100, 2)
  q.writeUInt16BE(1, 4)
  Buffer.from('\x07example\x03com\x00\x00\x01\x00\x01', 'latin1').copy(q, 12)
  return q
}

/**
 * `clients` node:dgram sockets, each with one query in flight: the next query leaves when the
 * reply (same id, QR bit set) came. Answers are counted for `durationMs` after a `warmupMs`
 * warm-up. A query unanswered for 500 ms counts as a timeout and the client sends the next.
 */
async function loadGenerator() {
  const { port, clients, durationMs, warmupMs } = OPTS
  const dgram = load('dgram')
  const all = []
  let counting = false
  let stopped = false
  let answered = 0
  let timeouts = 0
  let mismatched = 0
  const fire = (c) => {
    c.id = (c.id + 1) & 0xffff
    c.q.writeUInt16BE(c.id, 0)
    c.sentAt = process.hrtime.bigint()
    c.sock.send(c.q, port, HOST)
  }
  for (let k = 0; k < clients; k++) {
    const c = { sock: dgram.createSocket('udp4'), q: queryTemplate(), id: (Math.random() * 0x10000) | 0, sentAt: 0n }
    c.sock.on('message', (msg) => {
      if (msg.length < 12 || msg.readUInt16BE(0) !== c.id || (msg[2] & 0x80) === 0) {
        mismatched++
        return
      }
      if (counting) answered++
      if (!stopped) fire(c)
    })
    c.sock.on('error', () => {})
    await dgramBind(c.sock)
    all.push(c)
  }
  const sweep = setInterval(() => {
    const now = process.hrtime.bigint()
    for (const c of all) {
      if (stopped || now - c.sentAt < 500_000_000n) continue
      if (counting) timeouts++
      fire(c)
    }
  }, 100)
  for (const c of all) fire(c)
  await new Promise((r) => setTimeout(r, warmupMs))
  answered = 0
  counting = true
  const t0 = process.hrtime.bigint()
  await new Promise((r) => setTimeout(r, durationMs))
  const ns = Number(process.hrtime.bigint() - t0)
  counting = false
  stopped = true
  clearInterval(sweep)
  out({ result: { answered, ns, qps: (answered / ns) * 1e9, timeouts, mismatched, clients } })
  process.exit(0)
}

/**
 * One client that opens a new socket of `kind` for every query (as DNS clients such as dns2's
 * do): create, send the query, wait for the answer, close, next. Answers are counted for
 * `durationMs` after `warmupMs`. A query unanswered for 500 ms counts as a timeout (its socket
 * is closed, the next query goes on a new one).
 */
async function perQuery(kind) {
  const { port, durationMs, warmupMs } = OPTS
  const mod = load(kind)
  const q = queryTemplate()
  let id = (Math.random() * 0x10000) | 0
  let counting = false
  let answered = 0
  let timeouts = 0
  const one = () =>
    new Promise((resolve) => {
      id = (id + 1) & 0xffff
      q.writeUInt16BE(id, 0)
      let timer = null
      let done = null
      const onReply = (msg) => {
        if (msg.length < 12 || msg.readUInt16BE(0) !== id || (msg[2] & 0x80) === 0) return
        done(true)
      }
      const finish = (sock, close) => {
        done = (ok) => {
          clearTimeout(timer)
          close()
          if (!ok && counting) timeouts++
          if (ok && counting) answered++
          resolve()
        }
        timer = setTimeout(() => done(false), 500)
        sock.on('error', () => {})
      }
      if (kind === 'udpsocket') {
        mod.bind({ address: HOST, port: 0 }).then((sock) => {
          finish(sock, () => sock.close())
          sock.onBatch((batch) => {
            for (let i = 0; i < batch.count; i++) onReply(batch.data(i))
          })
          const msgs = [{ data: q, address: HOST, port }]
          if (sock.trySendBatch(msgs) === 0) sock.sendBatch(msgs).catch(() => {})
        })
      } else {
        const sock = mod.createSocket('udp4')
        finish(sock, () => sock.close())
        sock.on('message', onReply)
        sock.send(q, port, HOST)
      }
    })
  const state = { stopped: false }
  const loop = (async () => {
    while (!state.stopped) await one()
  })()
  await new Promise((r) => setTimeout(r, warmupMs))
  counting = true
  const t0 = process.hrtime.bigint()
  await new Promise((r) => setTimeout(r, durationMs))
  const ns = Number(process.hrtime.bigint() - t0)
  counting = false
  const qps = (answered / ns) * 1e9
  state.stopped = true
  await loop
  out({ result: { answered, ns, qps, timeouts, clients: 1 } })
  process.exit(0)
}

async function main() {
  if (MODE === 'server') return server(REST[0], REST[1])
  if (MODE === 'rtt-client') return rttClient(REST[0])
  if (MODE === 'load') return loadGenerator()
  if (MODE === 'perquery') return perQuery(REST[0])
  throw new Error(`unknown mode ${MODE}`)
}

main().catch((e) => {
  out({ error: String((e && e.stack) || e) })
  process.exit(2)
})
