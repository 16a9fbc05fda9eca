'use strict'
// Live loopback ingestion demo: a receiver (this process, udp-mmsg batch API) and a sender
// (a child process, udp-mmsg sendBatch). Prints a live rate line every second, then totals:
// sent, received, lost (with the kernel's own drop count), truncated.
// Usage: npm run demo -- [--duration S] [--rate PPS] [--size BYTES] [--batch-size N]

const { UdpSocket } = require('udp-mmsg')
const { spawn } = require('node:child_process')
const { parseArgs } = require('node:util')
const path = require('node:path')

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    rate: { type: 'string', default: '200000' },
    size: { type: 'string', default: '64' },
    'batch-size': { type: 'string', default: '256' },
    // Smaller than the library's default (the largest UDP payload), so that the sender's
    // oversized datagrams show truncation.
    'max-datagram-size': { type: 'string', default: '2048' },
    'oversize-every': { type: 'string', default: '100000' },
    portable: { type: 'boolean', default: false },
    'coalesce-micros': { type: 'string' },
  },
})

const fmt = (n) => Math.round(n).toLocaleString('en-US')

async function main() {
  const rx = await UdpSocket.bind({
    address: '127.0.0.1',
    port: 0,
    batchSize: Number(values['batch-size']),
    maxDatagramSize: Number(values['max-datagram-size']),
    recvBufferSize: 8 << 20,
    forceBufferSize: true,
    portable: values.portable,
    coalesceMicros: values['coalesce-micros'] === undefined ? undefined : Number(values['coalesce-micros']),
  })
  const { port } = rx.localAddress()
  const sizes = rx.bufferSizes()
  console.log(
    `udp-mmsg demo: receiver on 127.0.0.1:${port} (${rx.portable ? 'portable recvmsg path' : 'recvmmsg batches'}, ` +
      `batchSize ${values['batch-size']}, SO_RCVBUF ${fmt(sizes.recvBufferSize)} bytes${sizes.recvForced ? ' forced' : ''})`,
  )
  console.log(`sender: ${values.rate === '0' ? 'full speed' : `${fmt(Number(values.rate))} datagrams/s`} of ${values.size} bytes for ${values.duration} s, one datagram in ${fmt(Number(values['oversize-every']))} oversized to show truncation`)

  let received = 0
  let truncated = 0
  let batches = 0
  let lastReceived = 0
  rx.onBatch((batch) => {
    received += batch.count
    batches++
    // Touch every datagram the way an ingester would: read its length and truncated flag.
    const flags = batch.flags
    for (let i = 0; i < batch.count; i++) if (flags[i] & 1) truncated++
  })

  const cpu0 = process.cpuUsage()
  const t0 = Date.now()
  const sender = spawn(
    process.execPath,
    [
      path.join(__dirname, 'sender.js'),
      '--port', String(port),
      '--rate', values.rate,
      '--duration', values.duration,
      '--size', values.size,
      '--oversize-every', values['oversize-every'],
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let out = ''
  sender.stdout.on('data', (d) => (out += d))
  const tick = setInterval(() => {
    const s = rx.stats()
    const secs = Math.round((Date.now() - t0) / 1000)
    console.log(
      `[${String(secs).padStart(3)} s] ${fmt(received - lastReceived).padStart(11)} datagrams/s  ` +
        `total ${fmt(received).padStart(11)}  batches avg ${(batches ? received / batches : 0).toFixed(1).padStart(5)}  ` +
        `kernel drops ${fmt(s.kernelDrops)}`,
    )
    lastReceived = received
  }, 1000)
  const code = await new Promise((resolve) => sender.on('exit', resolve))
  clearInterval(tick)
  if (code !== 0) throw new Error(`sender exited with code ${code}`)
  const report = JSON.parse(out.trim().split('\n').pop())
  // Let datagrams still in flight arrive (bounded wait).
  const until = Date.now() + 2000
  while (received < report.sent && Date.now() < until) {
    const before = received
    await new Promise((r) => setTimeout(r, 50))
    if (received === before && rx.stats().kernelDrops + received >= report.sent) break
  }
  const s = rx.stats()
  const cpu = process.cpuUsage(cpu0)
  rx.close()
  console.log('')
  console.log('totals')
  console.log(`  sent        ${fmt(report.sent).padStart(12)}  (${fmt(report.sent / report.seconds)} datagrams/s)`)
  console.log(`  received    ${fmt(received).padStart(12)}  in ${fmt(batches)} batches, ${fmt(s.recvSyscalls)} receive syscalls`)
  console.log(`  lost        ${fmt(report.sent - received).padStart(12)}  (kernel reports ${fmt(s.kernelDrops)} dropped: receive buffer full)`)
  console.log(`  truncated   ${fmt(truncated).padStart(12)}  (sender sent ${fmt(report.oversize)} datagrams over maxDatagramSize)`)
  console.log(`  receiver CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (${received ? (((cpu.user + cpu.system) * 1000) / received).toFixed(0) : '-'} ns per datagram, all threads)`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
