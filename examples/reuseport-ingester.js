'use strict'
// Multi-threaded ingestion with SO_REUSEPORT: `runWorkers` starts N worker_threads, each owning
// its own udp-mmsg socket bound to the same port, and runs this file's export in each. The
// kernel spreads datagrams across the sockets (`--steering hash`: by flow, the default;
// `random`: evenly whatever the number of senders; `cpu`: by the CPU that processed the
// packet; see docs/scale-out.md), so each worker reads its own batches on its own thread. The
// main thread gathers the workers' counters every second and prints aggregate and per-worker rates.
//
// Usage: npm run example:reuseport -- [--workers N] [--port 9000] [--host 127.0.0.1] [--steering hash|cpu|random]
//          [--duration SECONDS] [--generate PPS | --self-test] [--flows N] [--size BYTES] [--json]
//   --generate PPS  also run a loopback generator sending PPS datagrams/s from --flows source sockets
//                   (several flows: the hash balances by flow, one flow would hit one worker)
//   --self-test     same as --generate 50000 --duration 5
//   --json          one JSON object per second, and a final summary object, on stdout

const { isMainThread } = require('node:worker_threads')
const { UdpSocket, runWorkers } = require('udp-mmsg')

// ---- worker: runWorkers loads this file in each worker thread and calls the export --------

// Some per-datagram work, as an ingester would do: sum the sequence numbers the generator put
// in the first 4 bytes (read straight from the batch buffer). `report` goes to the parent.
module.exports = (socket) => {
  let datagrams = 0
  let bytes = 0
  let batches = 0
  let checksum = 0
  socket.onBatch((batch) => {
    const { buffer: buf, offsets, lengths } = batch
    for (let i = 0; i < batch.count; i++) if (lengths[i] >= 4) checksum = (checksum + buf.readUInt32LE(offsets[i])) % 0x100000000
    datagrams += batch.count
    bytes += buf.length
    batches++
  })
  return { report: () => ({ datagrams, bytes, batches, checksum }) }
}

if (isMainThread) {
  require('node:process').nextTick(() =>
    main().catch((err) => {
      console.error(err)
      process.exitCode = 1
    }),
  )
}

// ---- main ---------------------------------------------------------------------------------

async function main() {
  const { parseArgs } = require('node:util')
  const os = require('node:os')
  const { values: args } = parseArgs({
    options: {
      workers: { type: 'string', default: String(Math.max(2, Math.min(4, os.availableParallelism()))) },
      port: { type: 'string', default: '9000' },
      host: { type: 'string', default: '127.0.0.1' },
      steering: { type: 'string', default: 'hash' },
      duration: { type: 'string' },
      generate: { type: 'string' },
      'self-test': { type: 'boolean', default: false },
      flows: { type: 'string', default: '32' },
      size: { type: 'string', default: '64' },
      'batch-size': { type: 'string', default: '128' },
      json: { type: 'boolean', default: false },
    },
  })
  const N = Math.max(1, Number(args.workers))
  const GENERATE = args['self-test'] && args.generate === undefined ? 50000 : Number(args.generate || 0)
  const DURATION = args.duration !== undefined ? Number(args.duration) : args['self-test'] ? 5 : 0
  const fmt = (n) => Math.round(n).toLocaleString('en-US')

  // N worker threads, one socket each in one SO_REUSEPORT group (port 0: the kernel picks).
  const workers = await runWorkers({
    workers: N,
    handler: __filename,
    address: args.host,
    port: Number(args.port),
    steering: args.steering,
    bind: { batchSize: Number(args['batch-size']), recvBufferSize: 4 << 20 },
  })
  workers.on('workerError', (err, id) => {
    console.error(`worker ${id}:`, err)
    process.exitCode = 1
  })
  const port = workers.port
  const zero = { datagrams: 0, bytes: 0, batches: 0, checksum: 0, kernelDrops: 0 }
  let latest = Array.from({ length: N }, () => zero)
  const gather = (reports) => (latest = reports.map((r) => ({ ...zero, ...r.report, kernelDrops: r.stats ? r.stats.kernelDrops : 0 })))
  process.stderr.write(`reuseport: ${N} workers on ${args.host}:${port} (SO_REUSEPORT, steering ${args.steering})\n`)

  const gen = GENERATE > 0 ? await startGenerator(GENERATE, args.host, port, Math.max(1, Number(args.flows)), Math.max(4, Number(args.size))) : null
  if (gen) process.stderr.write(`reuseport: generator sending ${fmt(GENERATE)} datagrams/s from ${args.flows} flows\n`)

  const totals = () => {
    const t = { datagrams: 0, bytes: 0, batches: 0, kernelDrops: 0, checksum: 0 }
    for (const w of latest) {
      t.datagrams += w.datagrams
      t.bytes += w.bytes
      t.batches += w.batches
      t.kernelDrops += w.kernelDrops
      t.checksum = (t.checksum + w.checksum) % 0x100000000
    }
    return t
  }
  const t0 = Date.now()
  let lastAt = t0
  let last = latest.map((w) => w.datagrams)
  let lastTotal = 0
  const tty = process.stderr.isTTY
  const tick = async (final) => {
    gather(final || (await workers.stats()))
    const now = Date.now()
    const secs = (now - lastAt) / 1000 || 1
    const t = totals()
    const per = latest.map((w, i) => (w.datagrams - last[i]) / secs)
    if (args.json) {
      console.log(JSON.stringify({ type: 'stats', t: Math.round((now - t0) / 1000), perSecond: Math.round((t.datagrams - lastTotal) / secs), total: t.datagrams, workers: latest.map((w) => w.datagrams), generated: gen ? gen.sent : undefined }))
    }
    const line =
      `[${String(Math.round((now - t0) / 1000)).padStart(4)} s] ${fmt((t.datagrams - lastTotal) / secs).padStart(10)} datagrams/s  total ${fmt(t.datagrams)}  ` +
      `| ${per.map((r, i) => `w${i} ${fmt(r)}/s`).join('  ')} | drops ${fmt(t.kernelDrops)}${gen ? `  generated ${fmt(gen.sent)}` : ''}`
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`)
    lastAt = now
    last = latest.map((w) => w.datagrams)
    lastTotal = t.datagrams
  }
  const timer = setInterval(() => tick().catch((err) => console.error(err)), 1000)

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    const sent = gen ? await gen.stop() : 0
    // Let the workers drain what is in flight (bounded: until totals stop moving, at most 3 s).
    if (gen) {
      const deadline = Date.now() + 3000
      let prev = -1
      while (Date.now() < deadline && totals().datagrams !== prev && totals().datagrams + totals().kernelDrops < sent) {
        prev = totals().datagrams
        await new Promise((r) => setTimeout(r, 300))
        gather(await workers.stats())
      }
    }
    clearInterval(timer)
    await tick(await workers.close())
    if (tty) process.stderr.write('\n')
    const t = totals()
    const summary = {
      type: 'summary',
      seconds: (Date.now() - t0) / 1000,
      port,
      workers: latest.map((w, id) => ({ id, datagrams: w.datagrams, bytes: w.bytes, batches: w.batches, kernelDrops: w.kernelDrops, checksum: w.checksum })),
      total: t.datagrams,
      kernelDrops: t.kernelDrops,
      checksum: t.checksum,
      generated: gen ? sent : undefined,
      generatedChecksum: gen ? gen.checksum : undefined,
    }
    if (args.json) console.log(JSON.stringify(summary))
    else {
      console.log(`summary: ${fmt(t.datagrams)} datagrams over ${N} workers, kernel drops ${fmt(t.kernelDrops)}${gen ? `, generated ${fmt(sent)}` : ''}`)
      for (const w of summary.workers) console.log(`  worker ${w.id}: ${fmt(w.datagrams)} datagrams in ${fmt(w.batches)} batches (${((100 * w.datagrams) / (t.datagrams || 1)).toFixed(1)}%)`)
    }
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  if (DURATION > 0) setTimeout(stop, DURATION * 1000)
}

/** `flows` source sockets sending `pps` datagrams/s in total, round robin; datagram k carries k. */
async function startGenerator(pps, host, port, flows, size) {
  const local = host.includes(':') ? '::1' : '127.0.0.1'
  const dest = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  const socks = []
  for (let i = 0; i < flows; i++) socks.push(await UdpSocket.bind({ address: local, sendBufferSize: 1 << 20 }))
  let sent = 0
  let checksum = 0
  let running = true
  const t0 = process.hrtime.bigint()
  const done = (async () => {
    while (running) {
      const due = Math.min(Math.floor((Number(process.hrtime.bigint() - t0) / 1e9) * pps) - sent, 8192)
      if (due > 0) {
        const perFlow = socks.map(() => [])
        for (let k = 0; k < due; k++) {
          const seq = sent + k
          const data = Buffer.alloc(size)
          data.writeUInt32LE(seq >>> 0, 0)
          perFlow[seq % flows].push({ data, address: dest, port })
        }
        const counts = await Promise.all(perFlow.map((msgs, i) => (msgs.length ? socks[i].sendBatch(msgs) : 0)))
        for (let k = 0; k < due; k++) checksum = (checksum + ((sent + k) >>> 0)) % 0x100000000
        sent += counts.reduce((a, b) => a + b, 0)
      }
      await new Promise((r) => setTimeout(r, 10))
    }
  })()
  return {
    get sent() {
      return sent
    },
    get checksum() {
      return checksum
    },
    async stop() {
      running = false
      await done
      for (const s of socks) s.close()
      return sent
    },
  }
}
