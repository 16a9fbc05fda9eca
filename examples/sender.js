'use strict'
// Loopback load generator built on udp-mmsg's sendBatch: sends sequence-numbered datagrams
// to 127.0.0.1:PORT at a target rate (0 = as fast as possible) for a bounded time.
// Usage: node examples/sender.js --port P [--rate PPS] [--duration S] [--size BYTES]
//        [--batch N] [--oversize-every N]
// Prints one JSON line at the end: {"sent":N,"oversize":K,"seconds":T}.

const { UdpSocket } = require('udp-mmsg')
const { parseArgs } = require('node:util')

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    rate: { type: 'string', default: '0' },
    duration: { type: 'string', default: '5' },
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '256' },
    'oversize-every': { type: 'string', default: '0' },
    'oversize-size': { type: 'string', default: '3000' },
  },
})

async function main() {
  const port = Number(values.port)
  const host = values.host
  if (host !== '127.0.0.1' && host !== '::1') throw new Error('the demo sender only targets loopback (127.0.0.1 or ::1)')
  const rate = Number(values.rate)
  const seconds = Number(values.duration)
  const size = Math.max(8, Number(values.size))
  const batch = Math.max(1, Math.min(4096, Number(values.batch)))
  const oversizeEvery = Number(values['oversize-every'])
  const big = Buffer.alloc(Number(values['oversize-size']), 0x42)
  const tx = await UdpSocket.bind({ address: host === '::1' ? '::1' : '127.0.0.1', port: 0, sendBufferSize: 4 << 20 })
  // One payload buffer per slot of the batch, reused every round (sendBatch copies on call).
  const payloads = Array.from({ length: batch }, () => Buffer.alloc(size, 0x61))
  const messages = payloads.map((data) => ({ data, address: host, port }))
  const oversized = { data: big, address: host, port }
  const round = messages.slice()
  let seq = 0
  let oversize = 0
  const start = process.hrtime.bigint()
  const deadline = start + BigInt(Math.round(seconds * 1e9))
  for (;;) {
    const now = process.hrtime.bigint()
    if (now >= deadline) break
    let n = batch
    if (rate > 0) {
      const due = Math.floor((Number(now - start) / 1e9) * rate) - seq
      if (due <= 0) {
        await new Promise((r) => setTimeout(r, 1))
        continue
      }
      n = Math.min(batch, due)
    }
    round.length = n
    for (let i = 0; i < n; i++) {
      const s = seq + i
      if (oversizeEvery > 0 && s % oversizeEvery === oversizeEvery - 1) {
        round[i] = oversized
        oversize++
      } else {
        round[i] = messages[i]
        payloads[i].writeUInt32LE(s >>> 0, 0)
      }
    }
    seq += await tx.sendBatch(round)
    if (rate === 0) await new Promise((r) => setImmediate(r))
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9
  tx.close()
  process.stdout.write(`${JSON.stringify({ sent: seq, oversize, seconds: elapsed })}\n`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
