#!/usr/bin/env node
'use strict'
// The CPU a server stack spends per query, without the scheduler in the way: a node:dgram
// client and the server under test (node:dgram, UdpSocket, the udp-mmsg/dgram facade) in ONE
// process, strictly one query in flight. No process sleeps and wakes per query, so the time
// per round trip is both stacks' CPU (the client is the same for all three); the two-process
// reqresp scenario of run.js is dominated by wake-up latency instead, which varies more from
// run to run on a VM than the stacks differ. Also times one-datagram sends from each API into
// a socket nobody reads. Loopback only.
//
//   node benchmark/pingpong.js [--rounds N] [--queries N]
//
// Rounds alternate the order of the three servers; the figure per server is the median over
// rounds, and the ratio is the median of the per-round ratios to node:dgram (paired, so a
// slow phase of the machine does not count against whoever ran in it). The servers answer
// like the reqresp DNS-like server (a 16-byte reply to a 29-byte query).

const dgram = require('node:dgram')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const { UdpSocket } = require(ROOT)
const facade = require(path.join(ROOT, 'dist', 'dgram.js'))

const { HOST, dnsReply: reply } = require('./scenarios/child.js')

function parseArgs(argv) {
  const o = { rounds: 7, queries: 10_000 }
  for (let i = 0; i < argv.length; i++) {
    const v = Number(argv[i + 1])
    if (argv[i] === '--rounds' && Number.isInteger(v) && v > 0) o.rounds = v
    else if (argv[i] === '--queries' && Number.isInteger(v) && v > 0) o.queries = v
    else throw new Error(`usage: node benchmark/pingpong.js [--rounds N] [--queries N] (got ${argv[i]})`)
    i++
  }
  return o
}

const bind = (s) => new Promise((resolve) => s.bind(0, HOST, resolve))

/** A server of `kind` written as its documentation shows; returns its port and a closer. */
async function server(kind) {
  if (kind === 'udpsocket') {
    const s = await UdpSocket.bind({ address: HOST, port: 0 })
    s.onBatch((b) => {
      const msgs = []
      for (let i = 0; i < b.count; i++) msgs.push({ data: reply(b.data(i)), address: b.address(i), port: b.port(i) })
      s.trySendBatch(msgs)
    })
    return { port: s.localAddress().port, close: () => s.close() }
  }
  const s = (kind === 'dgram' ? dgram : facade).createSocket('udp4')
  s.on('message', (m, r) => s.send(reply(m), r.port, r.address))
  await bind(s)
  return { port: s.address().port, close: () => s.close() }
}

/** `n` sequential round trips from a node:dgram client; µs per round trip. */
async function pingpong(kind, n) {
  const srv = await server(kind)
  const c = dgram.createSocket('udp4')
  await bind(c)
  const q = Buffer.alloc(29, 1)
  let left = n
  const t0 = process.hrtime.bigint()
  await new Promise((resolve) => {
    c.on('message', () => {
      if (--left === 0) resolve()
      else c.send(q, srv.port, HOST)
    })
    c.send(q, srv.port, HOST)
  })
  const us = Number(process.hrtime.bigint() - t0) / n / 1000
  c.close()
  srv.close()
  return us
}

/** µs per one-datagram send from each API into a socket nobody reads (it drops the excess). */
async function sendCost(n) {
  const sink = dgram.createSocket('udp4')
  await bind(sink)
  const port = sink.address().port
  const d = dgram.createSocket('udp4')
  await bind(d)
  const f = facade.createSocket('udp4')
  await bind(f)
  const u = await UdpSocket.bind({ address: HOST, port: 0 })
  const payload = Buffer.alloc(16, 7)
  const viaCallbacks = (s) => () =>
    new Promise((resolve) => {
      let left = n
      for (let i = 0; i < n; i++) s.send(payload, port, HOST, () => --left === 0 && resolve())
    })
  const kinds = {
    'node:dgram send()': viaCallbacks(d),
    'facade send() (coalesced per tick)': viaCallbacks(f),
    'UdpSocket trySendBatch([one])': async () => {
      for (let i = 0; i < n; i++) u.trySendBatch([{ data: payload, address: HOST, port }])
    },
  }
  const out = {}
  for (const k in kinds) await kinds[k]() // warm-up
  for (let r = 0; r < 7; r++) {
    for (const k in kinds) {
      const t0 = process.hrtime.bigint()
      await kinds[k]()
      ;(out[k] ||= []).push(Number(process.hrtime.bigint() - t0) / n / 1000)
    }
  }
  sink.close()
  d.close()
  f.close()
  u.close()
  return out
}

const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1]
const spread = (a) => `${Math.min(...a).toFixed(2)}–${Math.max(...a).toFixed(2)}`

async function main() {
  const o = parseArgs(process.argv.slice(2))
  const kinds = ['dgram', 'udpsocket', 'facade']
  const names = { dgram: 'node:dgram', udpsocket: 'UdpSocket', facade: 'udp-mmsg/dgram facade' }
  const us = { dgram: [], udpsocket: [], facade: [] }
  for (const k of kinds) await pingpong(k, Math.min(5000, o.queries)) // warm-up, untimed
  for (let r = 0; r < o.rounds; r++) {
    for (const k of r % 2 ? kinds : kinds.slice().reverse()) us[k].push(await pingpong(k, o.queries))
  }
  console.log(`Same-process ping-pong, node:dgram client, ${o.queries} round trips × ${o.rounds} rounds`)
  console.log('| Server | µs per round trip, median [min–max] | ÷ node:dgram (median of per-round ratios) |')
  console.log('| --- | ---: | ---: |')
  for (const k of kinds) {
    const ratio = median(us[k].map((x, i) => x / us.dgram[i]))
    console.log(`| ${names[k]} | ${median(us[k]).toFixed(2)} [${spread(us[k])}] | ${k === 'dgram' ? 'baseline' : ratio.toFixed(3)} |`)
  }
  const sends = await sendCost(20_000)
  console.log('\nOne-datagram sends into a socket nobody reads, 20 000 × 7 rounds')
  console.log('| Send | µs per datagram, median [min–max] |')
  console.log('| --- | ---: |')
  for (const [k, v] of Object.entries(sends)) console.log(`| ${k} | ${median(v).toFixed(2)} [${spread(v)}] |`)
  console.log(JSON.stringify({ pingpong: us, sends }))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
