// Stats: counters consistent with what the test did.
import test from 'ava'
import { CAPS, needs } from './backend.js'
import { Collector, V4, messagesTo, openLo, payload, portOf, pull, range, ticks, waitUntil } from './helpers.js'

test('a fresh socket has all counters at zero', (t) => {
  const s = openLo(t, 4)
  const st = s.stats() as unknown as Record<string, unknown>
  const keys = Object.keys(st)
  for (const k of [
    'datagramsReceived',
    'bytesReceived',
    'batchesReceived',
    'truncated',
    'recvSyscalls',
    'recvErrors',
    'kernelDrops',
    'controlTruncated',
    'errorQueueNotices',
    'datagramsSent',
    'bytesSent',
    'sendSyscalls',
    'sendErrors',
    'queuedBatches',
    'pendingSends',
    'pendingErrors',
    'errorsDropped',
  ]) {
    t.true(keys.includes(k), k)
  }
  for (const k of keys) t.is(st[k], 0, k)
})

test('datagrams, bytes, batches and syscalls agree with what was sent and received', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: 4 << 20 })
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  let bytes = 0
  const chunks = [1, 10, 100, 1000, 37]
  let seq = 0
  for (const n of chunks) {
    const msgs = messagesTo(V4, portOf(rx), range(seq, seq + n))
    for (const m of msgs) bytes += (m.data as Buffer).length
    await tx.sendBatch(msgs)
    seq += n
    t.true(await c.waitFor(seq))
  }
  const total = seq
  // A couple of scatter/gather datagrams count their whole length.
  await tx.sendBatch([{ data: ['ab', Buffer.from('cd'), new Uint8Array(3)], address: V4, port: portOf(rx) }])
  bytes += 7
  t.true(await c.waitFor(total + 1))
  const ts = tx.stats()
  const rs = rx.stats()
  t.is(ts.datagramsSent, total + 1)
  t.is(ts.bytesSent, bytes)
  t.true(ts.sendSyscalls >= chunks.length + 1, `at least one sendmmsg per sendBatch (${ts.sendSyscalls})`)
  if (CAPS.batched) t.true(ts.sendSyscalls <= 100, `far fewer than datagrams (${ts.sendSyscalls})`)
  t.is(ts.sendErrors, 0)
  t.is(ts.datagramsReceived, 0)
  t.is(rs.datagramsReceived, total + 1)
  t.is(rs.bytesReceived, bytes)
  t.is(rs.batchesReceived, c.batchSizes.length, 'one batch counted per batch delivered')
  // (Whether these batches held more than one datagram depends on timing: the receiver read
  // while the sender sent. Batching itself is checked with a stalled receiver in core-recv.)
  t.true(rs.recvSyscalls >= rs.batchesReceived)
  t.is(rs.truncated, 0)
  t.is(rs.kernelDrops, 0)
  t.is(rs.recvErrors, 0)
  t.is(rs.datagramsSent, 0)
  t.is(rs.queuedBatches, 0)
})

needs('dropCounter')('recvQueueBytes shows datagrams waiting in the kernel while nobody reads', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 20)))
  t.true(rx.stats().recvQueueBytes > 0)
  t.is((await pull(rx, 20)).length, 20)
  t.true(await waitUntil(() => rx.stats().recvQueueBytes === 0, 10_000))
})

needs('dropCounter')('kernelDrops counts datagrams the kernel dropped because the receive buffer was full', async (t) => {
  // A tiny receive buffer and nobody reading: most of 200 datagrams cannot be queued.
  const rx = openLo(t, 4, { recvBufferSize: 4096 })
  const tx = openLo(t, 4)
  await tx.sendBatch(range(0, 200).map((i) => ({ data: payload(i, 100), address: V4, port: portOf(rx) })))
  const dropped = rx.stats().kernelDrops
  t.true(dropped > 0, `drops seen (${dropped})`)
  const got = await pull(rx, 200, 500)
  const s = rx.stats()
  t.true(got.length > 0)
  t.is(s.datagramsReceived, got.length)
  t.is(got.length + s.kernelDrops, 200, `received ${got.length} + dropped ${s.kernelDrops}`)
  // A datagram queued after the drops carries the kernel's drop counter (SO_RXQ_OVFL) to its batch.
  await tx.sendBatch([{ data: 'after', address: V4, port: portOf(rx) }])
  const b = await rx.recvBatch({ timeoutMs: 10_000 })
  t.is(b.count, 1)
  t.is(b.kernelDrops, s.kernelDrops)
  t.is(rx.stats().kernelDrops, s.kernelDrops, 'no new drops')
})

needs('dropCounter')(
  "a socket opened after another closed (on the native backend it reuses that one's receive buffers) reports only its own drops and datagrams",
  async (t) => {
    const tx = openLo(t, 4)
    // The first socket drops most of a burst, reads what it kept, and closes.
    const rx1 = openLo(t, 4, { recvBufferSize: 4096 })
    await tx.sendBatch(range(0, 200).map((i) => ({ data: payload(i, 100), address: V4, port: portOf(rx1) })))
    t.true(rx1.stats().kernelDrops > 0)
    const kept = await pull(rx1, 200, 500)
    t.true(kept.length > 0)
    rx1.close()
    // The next one, same options: nothing of the first one's counters or datagrams shows.
    const rx2 = openLo(t, 4, { recvBufferSize: 4096 })
    await tx.sendBatch(range(0, 3).map((i) => ({ data: payload(1000 + i, 50), address: V4, port: portOf(rx2) })))
    const got = await pull(rx2, 3, 10_000)
    t.deepEqual(
      got.map((m) => m.data.length),
      [50, 50, 50],
    )
    t.deepEqual(
      got.map((m) => m.data.equals(payload(1000 + got.indexOf(m), 50))),
      [true, true, true],
    )
    const b = await (async () => {
      await tx.sendBatch([{ data: 'last', address: V4, port: portOf(rx2) }])
      return rx2.recvBatch({ timeoutMs: 10_000 })
    })()
    t.is(b.kernelDrops, 0, "the first socket's drop count is not carried over")
    t.is(rx2.stats().kernelDrops, 0)
    t.is(rx2.stats().datagramsReceived, 4)
  },
)

test('queuedBatches counts batches an idle iterator buffered', async (t) => {
  const rx = openLo(t, 4, { batchSize: 1 })
  const tx = openLo(t, 4)
  const it = rx[Symbol.asyncIterator]()
  t.teardown(() => it.return!())
  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 5)))
  // The iterator reads ahead (up to its high-water mark) without next() being called.
  t.true(await waitUntil(() => rx.stats().queuedBatches === 5, 10_000), `queued ${rx.stats().queuedBatches}`)
  const first = await it.next()
  t.false(first.done)
  t.is(rx.stats().queuedBatches, 4)
  await ticks()
})
