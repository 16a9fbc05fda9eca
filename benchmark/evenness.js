'use strict'
// Scale-out measurements for a SO_REUSEPORT group (issue 16), on loopback:
//
// 1. Evenness: F sender processes (one flow each, not pinned: the scheduler places them) send
//    at a modest fixed rate into W sockets of one group, for each steering ('hash', 'random',
//    'cpu'). Reported: each socket's count, the largest socket's share over the fair share
//    (1/W), and the check received + kernel drops = sent, exactly.
// 2. Throughput: 2 sender processes at full blast into runWorkers groups of 1 and of 2
//    worker threads ('random' steering), interleaved 1, 2, 1, 2; datagrams/s received (and
//    dropped) over the window.
//
// Usage: node benchmark/evenness.js [--seconds S] [--rate PPS] [--blast-seconds S] [--parts evenness,throughput] [--json]
//   (needs `npm run build`). Keep runs short: the machine may be shared.
// Not part of `npm run bench`: this script stands alone.

const { isMainThread } = require('node:worker_threads')
const { spawn } = require('node:child_process')
const os = require('node:os')
const { UdpSocket, runWorkers } = require('udp-mmsg')

// ---- runWorkers handler (loaded in each worker thread of the throughput part) --------------
module.exports = (socket) => {
  let datagrams = 0
  socket.onBatch((b) => (datagrams += b.count))
  return { report: () => ({ datagrams }) }
}

// ---- sender process: node evenness.js --sender PORT RATE SECONDS (RATE 0: full blast) -------
async function sender(port, rate, seconds) {
  // gso: false at a fixed rate, so every datagram is its own packet (as from a network); full
  // blast uses GSO, the cheapest way to send (a super-datagram is then steered whole).
  const s = UdpSocket.bindSync({ address: '127.0.0.1', gso: rate > 0 ? false : 'auto', sendBufferSize: 1 << 20 })
  const msgs = Array.from({ length: 64 }, () => ({ data: Buffer.alloc(64), address: '127.0.0.1', port }))
  const t0 = process.hrtime.bigint()
  const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e9
  let sent = 0
  while (elapsed() < seconds) {
    if (rate > 0) {
      const due = Math.min(Math.floor(elapsed() * rate) - sent, msgs.length)
      if (due > 0) sent += s.trySendBatch(msgs.slice(0, due))
      await new Promise((r) => setTimeout(r, 2))
    } else {
      sent += await s.sendBatch(msgs)
    }
  }
  s.close()
  process.stdout.write(JSON.stringify({ sent }))
}

/** Runs `flows` sender processes into `port`; resolves with the total they sent. */
async function send(flows, port, rate, seconds) {
  const runs = Array.from({ length: flows }, () => {
    const child = spawn(process.execPath, [__filename, '--sender', String(port), String(rate), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    return new Promise((res, rej) => child.on('close', (code) => (code === 0 ? res(JSON.parse(out).sent) : rej(new Error(`sender exited ${code}`)))))
  })
  return (await Promise.all(runs)).reduce((a, b) => a + b, 0)
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** W sockets in one group with `steering`, fed by F flows; the split and the accounting. */
async function evenness(steering, W, F, rate, seconds) {
  const socks = []
  const counts = new Array(W).fill(0)
  for (let i = 0; i < W; i++) {
    const port = i === 0 ? 0 : socks[0].localAddress().port
    const s = UdpSocket.bindSync({ address: '127.0.0.1', port, reusePort: true, steering, groupSize: steering === 'hash' ? undefined : W, recvBufferSize: 4 << 20 })
    s.onBatch((b) => (counts[i] += b.count))
    socks.push(s)
  }
  const sent = await send(F, socks[0].localAddress().port, Math.round(rate / F), seconds)
  const drops = () => socks.reduce((d, s) => d + s.stats().kernelDrops, 0)
  const total = () => counts.reduce((a, b) => a + b, 0) + drops()
  for (let i = 0; i < 200 && total() < sent; i++) await sleep(10)
  const r = { steering, workers: W, flows: F, sent, counts: [...counts], drops: drops(), exact: total() === sent }
  for (const s of socks) s.close()
  r.maxShareOverFair = sent ? Math.max(...r.counts) / (sent / W) : 0
  return r
}

/** runWorkers groups of `W` threads, 2 senders at full blast for `seconds`. */
async function throughput(W, seconds) {
  const workers = await runWorkers({ workers: W, handler: __filename, address: '127.0.0.1', steering: 'random', bind: { recvBufferSize: 4 << 20 } })
  const sum = (rs, f) => rs.reduce((a, r) => a + f(r), 0)
  const t0 = process.hrtime.bigint()
  const sent = await send(2, workers.port, 0, seconds)
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  let rs = await workers.stats()
  for (let i = 0; i < 200 && sum(rs, (r) => r.report.datagrams + r.stats.kernelDrops) < sent; i++) {
    await sleep(10)
    rs = await workers.stats()
  }
  const received = sum(rs, (r) => r.report.datagrams)
  const drops = sum(rs, (r) => r.stats.kernelDrops)
  await workers.close()
  return { workers: W, flows: 2, seconds: secs, sent, received, drops, exact: received + drops === sent, receivedPerSec: received / secs, perWorker: rs.map((r) => r.report.datagrams) }
}

async function main() {
  const { parseArgs } = require('node:util')
  const { values: a } = parseArgs({
    options: { seconds: { type: 'string', default: '1' }, rate: { type: 'string', default: '40000' }, 'blast-seconds': { type: 'string', default: '3' }, json: { type: 'boolean', default: false }, parts: { type: 'string', default: 'evenness,throughput' } },
  })
  const seconds = Number(a.seconds)
  const rate = Number(a.rate)
  const out = { when: new Date().toISOString(), cpus: os.availableParallelism(), loadavg: os.loadavg().map((x) => x.toFixed(2)), kernel: os.release(), rate, seconds, evenness: [], throughput: [] }
  console.error(`evenness: ${out.cpus} CPUs, load ${out.loadavg.join(' ')}, ${rate} datagrams/s for ${seconds} s per run`)
  for (const W of a.parts.includes('evenness') ? [2, 4] : []) {
    for (const F of [1, 2, 4]) {
      for (const steering of ['hash', 'random', 'cpu']) {
        const r = await evenness(steering, W, F, rate, seconds)
        out.evenness.push(r)
        console.error(`  ${W} workers, ${F} flow(s), ${steering.padEnd(6)}: [${r.counts.join(', ')}] drops ${r.drops}  max/fair ${r.maxShareOverFair.toFixed(2)}  ${r.exact ? 'received+drops=sent' : `MISMATCH sent ${r.sent}`}`)
      }
    }
  }
  for (const W of a.parts.includes('throughput') ? [1, 2, 1, 2] : []) {
    const r = await throughput(W, Number(a['blast-seconds']))
    out.throughput.push(r)
    console.error(`  full blast, 2 flows -> ${W} worker(s): ${Math.round(r.receivedPerSec).toLocaleString('en-US')} received/s [${r.perWorker.join(', ')}], sent ${r.sent}, drops ${r.drops}, ${r.exact ? 'exact' : 'MISMATCH'}`)
  }
  if (a.json) console.log(JSON.stringify(out, null, 2))
}

if (isMainThread && require.main === module) {
  const run = process.argv[2] === '--sender' ? sender(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])) : main()
  run.catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
}
