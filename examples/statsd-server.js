'use strict'
// StatsD ingestion server on udp-mmsg: datagrams arrive in batches (one recvmmsg call for many)
// and are parsed straight from the batch buffer: metric values, types and sample rates are read
// from the bytes, so the only object made per metric line is its name string.
//
// Lines: name:value|type[|@rate][|#tags], several per datagram separated by \n.
// Types: c (counter), g (gauge; +N/-N adjust it), ms/h/d (timer/histogram/distribution), s (set).
// Every --interval ms it prints the aggregated metrics (statsd-style: counters and timers reset,
// gauges keep their value) on stdout and a live rate line on stderr.
//
// Usage: npm run example:statsd -- [--port 8125] [--host 127.0.0.1] [--duration SECONDS]
//          [--generate PPS | --self-test] [--lines N] [--interval MS] [--json] [--quiet]
//   --generate PPS  also run a loopback load generator sending PPS datagrams/s (of --lines lines)
//   --self-test     same as --generate 20000 --duration 5
//   --json          one JSON object per flush on stdout (and a final summary object)

const { UdpSocket } = require('udp-mmsg')
const { parseArgs } = require('node:util')

// Command-line settings, read by configure() when the file runs as a program (not when it is
// required as a module, whose caller's arguments are none of its business).
let args, PORT, HOST, GENERATE, DURATION, LINES, INTERVAL

/** Reads the command line (`argv`: the arguments after the script name). */
function configure(argv = process.argv.slice(2)) {
  args = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '8125' },
      host: { type: 'string', default: '127.0.0.1' },
      duration: { type: 'string' },
      generate: { type: 'string' },
      'self-test': { type: 'boolean', default: false },
      lines: { type: 'string', default: '5' },
      interval: { type: 'string', default: '1000' },
      'batch-size': { type: 'string', default: '256' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    },
  }).values
  PORT = Number(args.port)
  HOST = args.host
  GENERATE = args['self-test'] && args.generate === undefined ? 20000 : Number(args.generate || 0)
  DURATION = args.duration !== undefined ? Number(args.duration) : args['self-test'] ? 5 : 0
  LINES = Math.max(1, Math.min(5, Number(args.lines)))
  INTERVAL = Math.max(100, Number(args.interval))
}

const fmt = (n) => Math.round(n).toLocaleString('en-US')

// ---- parsing (bytes in, aggregates out) ----------------------------------------------------

const COLON = 0x3a
const PIPE = 0x7c
const NL = 0x0a
const CR = 0x0d
const AT = 0x40

/** Parses a decimal number in buf[s, e): [+-]digits[.digits][e[+-]digits]. NaN when malformed. */
function parseNumber(buf, s, e) {
  if (s >= e) return NaN
  let i = s
  let neg = false
  const c0 = buf[i]
  if (c0 === 0x2d || c0 === 0x2b) {
    neg = c0 === 0x2d
    i++
  }
  let v = 0
  let digits = 0
  for (; i < e; i++) {
    const d = buf[i] - 0x30
    if (d < 0 || d > 9) break
    v = v * 10 + d
    digits++
  }
  if (i < e && buf[i] === 0x2e) {
    let scale = 0.1
    for (i++; i < e; i++) {
      const d = buf[i] - 0x30
      if (d < 0 || d > 9) break
      v += d * scale
      scale /= 10
      digits++
    }
  }
  if (digits === 0) return NaN
  if (i < e && (buf[i] === 0x65 || buf[i] === 0x45)) {
    const x = parseNumber(buf, i + 1, e)
    if (Number.isNaN(x) || !Number.isInteger(x)) return NaN
    v *= 10 ** x
    i = e
  }
  if (i !== e) return NaN
  return neg ? -v : v
}

class Aggregator {
  constructor() {
    this.counters = new Map()
    this.gauges = new Map()
    this.timers = new Map()
    this.sets = new Map()
    this.lines = 0
    this.badLines = 0
    // Whole-run totals, for the summary.
    this.totalCounters = new Map()
    this.totalTimerCounts = new Map()
    this.totalLines = 0
    this.totalBad = 0
  }

  /** Parses every line of datagram buf[s, e). */
  datagram(buf, s, e) {
    let start = s
    for (let i = s; i <= e; i++) {
      if (i === e || buf[i] === NL) {
        let end = i
        if (end > start && buf[end - 1] === CR) end--
        if (end > start) this.line(buf, start, end)
        start = i + 1
      }
    }
  }

  line(buf, s, e) {
    this.lines++
    let colon = -1
    for (let i = s; i < e; i++) {
      if (buf[i] === COLON) {
        colon = i
        break
      }
    }
    let pipe = -1
    if (colon > s) {
      for (let i = colon + 1; i < e; i++) {
        if (buf[i] === PIPE) {
          pipe = i
          break
        }
      }
    }
    if (pipe === -1) return void this.badLines++
    let typeEnd = e
    for (let i = pipe + 1; i < e; i++) {
      if (buf[i] === PIPE) {
        typeEnd = i
        break
      }
    }
    let rate = 1
    if (typeEnd < e && buf[typeEnd + 1] === AT) {
      let rateEnd = e
      for (let i = typeEnd + 2; i < e; i++) {
        if (buf[i] === PIPE) {
          rateEnd = i
          break
        }
      }
      rate = parseNumber(buf, typeEnd + 2, rateEnd)
      if (!(rate > 0 && rate <= 1)) return void this.badLines++
    }
    const t0 = buf[pipe + 1]
    const tlen = typeEnd - pipe - 1
    const name = buf.toString('latin1', s, colon)
    if (tlen === 1 && t0 === 0x73) {
      // s: a set of (string) values
      let set = this.sets.get(name)
      if (set === undefined) this.sets.set(name, (set = new Set()))
      set.add(buf.toString('latin1', colon + 1, pipe))
      return
    }
    const value = parseNumber(buf, colon + 1, pipe)
    if (Number.isNaN(value)) return void this.badLines++
    if (tlen === 1 && t0 === 0x63) {
      // c
      const v = value / rate
      this.counters.set(name, (this.counters.get(name) || 0) + v)
    } else if (tlen === 1 && t0 === 0x67) {
      // g: a leading sign means "adjust"
      const c = buf[colon + 1]
      const relative = c === 0x2b || c === 0x2d
      this.gauges.set(name, relative ? (this.gauges.get(name) || 0) + value : value)
    } else if ((tlen === 2 && t0 === 0x6d && buf[pipe + 2] === 0x73) || (tlen === 1 && (t0 === 0x68 || t0 === 0x64))) {
      // ms, h, d
      let t = this.timers.get(name)
      if (t === undefined) this.timers.set(name, (t = { values: [], sampled: 0 }))
      t.values.push(value)
      t.sampled += 1 / rate
    } else {
      this.badLines++
    }
  }

  /** Takes this interval's aggregates (counters, timers and sets reset; gauges persist). */
  flush(seconds) {
    const out = { counters: {}, gauges: {}, timers: {}, sets: {}, lines: this.lines, badLines: this.badLines }
    for (const [name, v] of this.counters) {
      out.counters[name] = { value: v, perSecond: v / seconds }
      this.totalCounters.set(name, (this.totalCounters.get(name) || 0) + v)
    }
    for (const [name, v] of this.gauges) out.gauges[name] = v
    for (const [name, t] of this.timers) {
      const a = Float64Array.from(t.values).sort()
      let sum = 0
      for (let i = 0; i < a.length; i++) sum += a[i]
      const q = (p) => a[Math.min(a.length - 1, Math.floor(p * a.length))]
      out.timers[name] = { count: a.length, sampledCount: t.sampled, min: a[0], max: a[a.length - 1], mean: sum / a.length, p50: q(0.5), p90: q(0.9), p99: q(0.99) }
      this.totalTimerCounts.set(name, (this.totalTimerCounts.get(name) || 0) + a.length)
    }
    for (const [name, s] of this.sets) out.sets[name] = s.size
    this.totalLines += this.lines
    this.totalBad += this.badLines
    this.counters.clear()
    this.timers.clear()
    this.sets.clear()
    this.lines = 0
    this.badLines = 0
    return out
  }
}

function printFlush(f, stats) {
  if (args.json) {
    console.log(JSON.stringify({ type: 'flush', ...stats, ...f }))
    return
  }
  if (args.quiet) return
  const rows = []
  for (const [n, c] of Object.entries(f.counters)) rows.push(`  counter ${n.padEnd(24)} ${fmt(c.value).padStart(12)}  (${fmt(c.perSecond)}/s)`)
  for (const [n, g] of Object.entries(f.gauges)) rows.push(`  gauge   ${n.padEnd(24)} ${String(g).padStart(12)}`)
  for (const [n, t] of Object.entries(f.timers)) {
    rows.push(
      `  timer   ${n.padEnd(24)} ${fmt(t.count).padStart(12)}  min ${t.min} max ${t.max} mean ${t.mean.toFixed(2)} p50 ${t.p50} p90 ${t.p90} p99 ${t.p99}`,
    )
  }
  for (const [n, s] of Object.entries(f.sets)) rows.push(`  set     ${n.padEnd(24)} ${fmt(s).padStart(12)} unique`)
  console.log(`--- t=${stats.t}s  ${fmt(stats.datagrams)} datagrams, ${fmt(f.lines)} lines${f.badLines ? `, ${f.badLines} bad` : ''}`)
  if (rows.length) console.log(rows.join('\n'))
}

// ---- load generator -----------------------------------------------------------------------

/** Datagram `seq` of the generator: up to 5 lines, one of each metric type. */
function generated(seq) {
  const lines = [
    'gen.requests:1|c',
    'gen.sampled:1|c|@0.5',
    `gen.latency:${seq % 100}|ms`,
    `gen.queue:${seq % 50}|g`,
    `gen.users:u${seq % 10}|s`,
  ]
  return lines.slice(0, LINES).join('\n')
}

async function startGenerator(pps, port) {
  const tx = await UdpSocket.bind({ address: HOST.includes(':') ? '::1' : '127.0.0.1', sendBufferSize: 1 << 20 })
  const dest = HOST === '0.0.0.0' ? '127.0.0.1' : HOST === '::' ? '::1' : HOST
  let sent = 0
  let running = true
  const t0 = process.hrtime.bigint()
  const done = (async () => {
    while (running) {
      const due = Math.floor((Number(process.hrtime.bigint() - t0) / 1e9) * pps) - sent
      const n = Math.min(due, 4096)
      if (n > 0) {
        const msgs = new Array(n)
        for (let i = 0; i < n; i++) msgs[i] = { data: generated(sent + i), address: dest, port }
        sent += await tx.sendBatch(msgs)
      }
      await new Promise((r) => setTimeout(r, 10))
    }
  })()
  return {
    get sent() {
      return sent
    },
    async stop() {
      running = false
      await done
      tx.close()
      return sent
    },
  }
}

// ---- main ---------------------------------------------------------------------------------

async function main() {
  configure()
  const sock = await UdpSocket.bind({
    address: HOST,
    port: PORT,
    batchSize: Number(args['batch-size']),
    maxDatagramSize: 8192,
    recvBufferSize: 4 << 20,
  })
  const { address, port } = sock.localAddress()
  process.stderr.write(`statsd: listening on ${address}:${port} (${sock.portable ? 'portable' : 'recvmmsg'} batches of up to ${args['batch-size']})\n`)

  const agg = new Aggregator()
  let datagrams = 0
  let batches = 0
  let bytes = 0
  let truncated = 0
  sock.onBatch((batch) => {
    const buf = batch.buffer
    const offsets = batch.offsets
    const lengths = batch.lengths
    const n = batch.count
    for (let i = 0; i < n; i++) agg.datagram(buf, offsets[i], offsets[i] + lengths[i])
    for (let i = 0; i < n; i++) if (batch.flags[i] & 1) truncated++
    datagrams += n
    bytes += buf.length
    batches++
  })

  const gen = GENERATE > 0 ? await startGenerator(GENERATE, port) : null
  if (gen) process.stderr.write(`statsd: generator sending ${fmt(GENERATE)} datagrams/s of ${LINES} lines to ${address}:${port}\n`)

  const t0 = Date.now()
  let lastAt = t0
  let lastDatagrams = 0
  const tty = process.stderr.isTTY
  const flush = () => {
    const now = Date.now()
    const secs = (now - lastAt) / 1000 || 1
    const rate = (datagrams - lastDatagrams) / secs
    const s = sock.stats()
    const f = agg.flush(secs)
    const stats = { t: Math.round((now - t0) / 1000), datagrams: datagrams - lastDatagrams, perSecond: Math.round(rate), kernelDrops: s.kernelDrops }
    printFlush(f, stats)
    const line =
      `[${String(stats.t).padStart(4)} s] ${fmt(rate).padStart(9)} datagrams/s ${fmt(f.lines / secs).padStart(10)} lines/s  ` +
      `total ${fmt(datagrams)}  avg batch ${(batches ? datagrams / batches : 0).toFixed(1)}  drops ${fmt(s.kernelDrops)}` +
      (gen ? `  generated ${fmt(gen.sent)}` : '')
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`)
    lastAt = now
    lastDatagrams = datagrams
  }
  const timer = setInterval(flush, INTERVAL)

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    const sent = gen ? await gen.stop() : 0
    // Let what is in flight arrive (bounded: until nothing new for 300 ms, at most 3 s).
    if (gen) {
      const deadline = Date.now() + 3000
      let last = -1
      while (Date.now() < deadline && datagrams !== last && datagrams < sent) {
        last = datagrams
        await new Promise((r) => setTimeout(r, 300))
      }
    }
    clearInterval(timer)
    if (datagrams !== lastDatagrams) flush()
    if (tty) process.stderr.write('\n')
    const s = sock.stats()
    sock.close()
    const summary = {
      type: 'summary',
      seconds: (Date.now() - t0) / 1000,
      datagrams,
      bytes,
      batches,
      truncated,
      lines: agg.totalLines,
      badLines: agg.totalBad,
      kernelDrops: s.kernelDrops,
      counters: Object.fromEntries(agg.totalCounters),
      timerCounts: Object.fromEntries(agg.totalTimerCounts),
      gauges: Object.fromEntries(agg.gauges),
      generated: gen ? sent : undefined,
    }
    if (args.json) console.log(JSON.stringify(summary))
    else {
      console.log(
        `summary: ${fmt(datagrams)} datagrams (${fmt(agg.totalLines)} lines, ${agg.totalBad} bad) in ${fmt(batches)} batches, ` +
          `kernel drops ${fmt(s.kernelDrops)}${gen ? `, generated ${fmt(sent)}` : ''}`,
      )
      for (const [n, v] of agg.totalCounters) console.log(`  total counter ${n} ${fmt(v)}`)
    }
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  if (DURATION > 0) setTimeout(stop, DURATION * 1000)
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
}

module.exports = { Aggregator, parseNumber }
