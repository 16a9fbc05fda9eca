// Small batches (a query, a ping) reach JS through one landing buffer per thread
// (src/native/landing.rs) and are copied out before any handler runs: a batch, its views and
// the facade's message Buffers keep their bytes while later batches arrive, on the compact and
// the full metadata layout, wherever Node's buffer pool happens to be (the copies come from it).
import test from 'ava'
import { createSocket } from '../lib/dgram.js'
import type { Batch } from '../lib/index.js'
import { UdpSocket } from '../lib/index.js'
import { needs } from './backend.js'
import { V4, waitUntil } from './helpers.js'

const ROUNDS = 40

/** Receives `ROUNDS` one-datagram batches on `rx` from `tx`, one at a time, shifting Node's
 * buffer pool by an odd number of bytes before each, and keeps every batch. */
async function keepBatches(rx: UdpSocket, tx: UdpSocket): Promise<Batch[]> {
  const kept: Batch[] = []
  rx.onBatch((b) => kept.push(b))
  const port = rx.localAddress().port
  for (let i = 0; i < ROUNDS; i++) {
    Buffer.allocUnsafe(1 + 2 * i) // moves the pool's offset
    tx.trySendBatch([{ data: Buffer.from(`datagram ${i} `.repeat(1 + (i % 5))), address: V4, port }])
    if (!(await waitUntil(() => kept.length > i, 10_000))) break
  }
  return kept
}

for (const [layout, options] of [
  ['compact', {}],
  ['full', { timestamps: true, pktinfo: true }],
] as const) {
  const maybe = layout === 'full' ? needs('timestamps', 'pktinfo') : test
  maybe(`small batches keep their bytes while later ones arrive (${layout} layout)`, async (t) => {
    const rx = UdpSocket.bindSync({ address: V4, port: 0, ...options })
    const tx = UdpSocket.bindSync({ address: V4, port: 0 })
    try {
      const kept = await keepBatches(rx, tx)
      t.is(kept.length, ROUNDS)
      kept.forEach((b, i) => {
        t.is(b.count, 1)
        t.is(b.data(0).toString(), `datagram ${i} `.repeat(1 + (i % 5)))
        t.is(b.address(0), V4)
        t.is(b.port(0), tx.localAddress().port)
        t.is(b.lengths[0], b.data(0).length)
        if (layout === 'full') {
          t.is(b.localAddress(0), V4)
          t.true(typeof b.timestamp(0) === 'bigint' && (b.timestamp(0) as bigint) > 0n)
          t.true(b.timestamps[0] > 0n)
        }
      })
    } finally {
      rx.close()
      tx.close()
    }
  })
}

test("the facade's message Buffers keep their bytes while later messages arrive", async (t) => {
  const rx = createSocket('udp4')
  const tx = createSocket('udp4')
  const got: Buffer[] = []
  rx.on('message', (m) => got.push(m))
  try {
    await new Promise<void>((r) => rx.bind(0, V4, r))
    const port = rx.address().port
    for (let i = 0; i < ROUNDS; i++) {
      tx.send(`message ${i}`, port, V4)
      if (!(await waitUntil(() => got.length > i, 10_000))) break
    }
    t.deepEqual(
      got.map((m) => m.toString()),
      Array.from({ length: ROUNDS }, (_, i) => `message ${i}`),
    )
  } finally {
    rx.close()
    tx.close()
  }
})
