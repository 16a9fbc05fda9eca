// Receiving: recvmmsg batching, truncation, recvBatch timeouts, iterators, onBatch.
import test from 'ava'
import { CAPS } from './backend.js'
import { Batch } from '../lib/index.js'
import { BIG_RCVBUF, Collector, V4, V6, caught, checkPayload, messagesTo, openLo, payload, portOf, pull, range, ticks, waitUntil } from './helpers.js'

test('recvmmsg batching: 500 datagrams queued while nobody reads come out in batches of up to 64', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: BIG_RCVBUF, batchSize: 64 })
  const tx = openLo(t, 4)
  // Nobody consumes: reading is paused and the datagrams wait in the kernel buffer.
  t.is(await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 500))), 500)
  t.is(rx.stats().datagramsReceived, 0, 'nothing is read while there is no consumer')
  if (CAPS.dropCounter) t.true(rx.stats().recvQueueBytes > 0, 'the datagrams wait in the kernel receive queue')
  const counts: number[] = []
  const seqs: number[] = []
  while (seqs.length < 500) {
    const b = await rx.recvBatch({ timeoutMs: 10_000 })
    if (b.count === 0) break
    counts.push(b.count)
    for (let i = 0; i < b.count; i++) seqs.push(checkPayload(b.data(i)) as number)
  }
  t.deepEqual(seqs, range(0, 500), 'all 500 arrive in order')
  t.true(Math.max(...counts) > 1, `batches hold more than one datagram (${counts})`)
  t.true(Math.max(...counts) <= 64, `no batch exceeds batchSize (${counts})`)
  const s = rx.stats()
  if (CAPS.batched) t.true(s.recvSyscalls < 500, `fewer receive calls than datagrams (${s.recvSyscalls})`)
  t.is(s.datagramsReceived, 500)
  t.is(s.batchesReceived, counts.length)
  t.is(s.kernelDrops, 0)
})

test('batchSize bounds every batch (batchSize 1 and 7)', async (t) => {
  for (const batchSize of [1, 7]) {
    const rx = openLo(t, 4, { batchSize })
    const tx = openLo(t, 4)
    await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 40)))
    const c = new Collector(rx)
    t.true(await c.waitFor(40))
    t.true(c.batchSizes.every((n) => n >= 1 && n <= batchSize), `batchSize ${batchSize}: ${c.batchSizes}`)
    t.deepEqual(c.messages.map((m) => checkPayload(m.data)), range(0, 40))
  }
})

test('truncation: datagrams longer than maxDatagramSize are cut and flagged, others are not', async (t) => {
  const rx = openLo(t, 4, { maxDatagramSize: 100 })
  const tx = openLo(t, 4)
  const port = portOf(rx)
  const sizes = [50, 300, 100, 101, 0, 99]
  const sent = sizes.map((n, i) => Buffer.alloc(n, 0).map((_, k) => (k * 7 + i) & 0xff))
  await tx.sendBatch(sent.map((data) => ({ data, address: V4, port })))
  const b = await rx.recvBatch({ timeoutMs: 10_000 })
  const batches = [b]
  let count = b.count
  while (count < sizes.length) {
    const more = await rx.recvBatch({ timeoutMs: 10_000 })
    if (more.count === 0) break
    batches.push(more)
    count += more.count
  }
  const flags: boolean[] = []
  const lengths: number[] = []
  const datas: Buffer[] = []
  const iterated: boolean[] = []
  for (const x of batches) {
    for (let i = 0; i < x.count; i++) {
      flags.push(x.truncated(i))
      lengths.push(x.data(i).length)
      datas.push(Buffer.from(x.data(i)))
      // The flags view says the same as what was sent: bit 0 set only for the two cut datagrams.
      t.is(x.flags[i] & 1, sizes[flags.length - 1] > 100 ? 1 : 0, `flags[${i}] of the datagram of ${sizes[flags.length - 1]} bytes`)
    }
    for (const m of x) iterated.push(m.truncated)
  }
  t.deepEqual(flags, [false, true, false, true, false, false])
  t.deepEqual(iterated, flags, 'iteration reports the same flags')
  t.deepEqual(lengths, [50, 100, 100, 100, 0, 99])
  for (let i = 0; i < sizes.length; i++) {
    t.deepEqual(datas[i], sent[i].subarray(0, 100), `datagram ${i} holds the first bytes`)
  }
  t.is(rx.stats().truncated, 2)
  t.is(rx.stats().bytesReceived, 50 + 100 + 100 + 100 + 0 + 99)
})

test('recvBatch({ timeoutMs }) with nothing to receive resolves with an empty batch after the timeout', async (t) => {
  const rx = openLo(t, 4)
  const started = performance.now()
  const b = await rx.recvBatch({ timeoutMs: 300 })
  const elapsed = performance.now() - started
  t.is(b.count, 0)
  t.is(b.buffer.length, 0)
  t.deepEqual([...b], [])
  t.true(elapsed >= 290, `waited ${elapsed} ms`)
  // The socket still works after an empty timeout.
  const tx = openLo(t, 4)
  await tx.sendBatch([{ data: 'later', address: V4, port: portOf(rx) }])
  const later = await rx.recvBatch({ timeoutMs: 10_000 })
  t.is(later.count, 1)
  t.is(later.data(0).toString(), 'later')
})

test('recvBatch({ timeoutMs }) resolves with fewer than batchSize datagrams when that is all there is', async (t) => {
  const rx = openLo(t, 4, { batchSize: 64 })
  const tx = openLo(t, 4)
  await tx.sendBatch(messagesTo(V4, portOf(rx), [10, 11, 12]))
  const got = await pull(rx, 3, 10_000)
  t.deepEqual(got.map((m) => checkPayload(m.data)), [10, 11, 12])
})

test('recvBatch without options waits for the next datagram', async (t) => {
  const rx = openLo(t, 6)
  const tx = openLo(t, 6)
  const p = rx.recvBatch()
  await ticks()
  await tx.sendBatch([{ data: 'x', address: V6, port: portOf(rx) }])
  const b = await p
  t.is(b.count, 1)
  t.is(b.address(0), V6)
  t.is(b.family(0), 'IPv6')
})

test('several pending recvBatch calls are served in order, none loses a datagram', async (t) => {
  const rx = openLo(t, 4, { batchSize: 1 })
  const tx = openLo(t, 4)
  const ps = [rx.recvBatch({ timeoutMs: 10_000 }), rx.recvBatch({ timeoutMs: 10_000 }), rx.recvBatch({ timeoutMs: 10_000 })]
  await tx.sendBatch(messagesTo(V4, portOf(rx), [0, 1, 2]))
  const bs = await Promise.all(ps)
  t.deepEqual(
    bs.map((b) => b.count),
    [1, 1, 1],
  )
  t.deepEqual(
    bs.map((b) => checkPayload(b.data(0))),
    [0, 1, 2],
  )
})

test('recvBatch with an AbortSignal rejects with an AbortError and the socket keeps working', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  const ac = new AbortController()
  const p = rx.recvBatch({ signal: ac.signal })
  ac.abort()
  const err = await caught(() => p)
  t.is(err.name, 'AbortError')
  t.is(err.code, 'ABORT_ERR')
  const pre = await caught(() => rx.recvBatch({ signal: AbortSignal.abort() }))
  t.is(pre.code, 'ABORT_ERR')
  await tx.sendBatch([{ data: 'after', address: V4, port: portOf(rx) }])
  const got = await pull(rx, 1)
  t.deepEqual(got.map((m) => m.data.toString()), ['after'])
})

test('for await yields batches and ends when the socket is closed', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: BIG_RCVBUF })
  const tx = openLo(t, 4)
  const seqs: number[] = []
  let batches = 0
  const loop = (async () => {
    for await (const b of rx) {
      t.true(b instanceof Batch)
      t.true(b.count > 0)
      batches++
      for (let i = 0; i < b.count; i++) seqs.push(checkPayload(b.data(i)) as number)
    }
    return 'ended'
  })()
  for (let k = 0; k < 4; k++) {
    await tx.sendBatch(messagesTo(V4, portOf(rx), range(k * 250, k * 250 + 250)))
    await waitUntil(() => seqs.length >= k * 250 + 250)
  }
  t.deepEqual(seqs, range(0, 1000))
  t.true(batches >= 1)
  rx.close()
  t.is(await loop, 'ended', 'the loop ends after close')
})

test('breaking out of for await stops it; later datagrams are still there for recvBatch', async (t) => {
  const rx = openLo(t, 4, { batchSize: 4 })
  const tx = openLo(t, 4)
  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 40)))
  const first: number[] = []
  for await (const b of rx) {
    for (let i = 0; i < b.count; i++) first.push(checkPayload(b.data(i)) as number)
    break
  }
  t.true(first.length >= 1 && first.length <= 4)
  const rest = await pull(rx, 40 - first.length)
  t.deepEqual([...first, ...rest.map((m) => checkPayload(m.data) as number)], range(0, 40), 'no datagram is lost or repeated')
})

test('onBatch delivers every batch and its unsubscribe function stops delivery', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  let calls = 0
  const seen: string[] = []
  const off = rx.onBatch((b) => {
    calls++
    for (const m of b) seen.push(m.data.toString())
  })
  t.is(typeof off, 'function')
  await tx.sendBatch([
    { data: 'a', address: V4, port: portOf(rx) },
    { data: 'b', address: V4, port: portOf(rx) },
  ])
  t.true(await waitUntil(() => seen.length >= 2))
  t.deepEqual(seen, ['a', 'b'])
  off()
  t.is(rx.listenerCount('batch'), 0)
  const callsBefore = calls
  await tx.sendBatch([
    { data: 'c', address: V4, port: portOf(rx) },
    { data: 'd', address: V4, port: portOf(rx) },
  ])
  const later = await pull(rx, 2)
  t.deepEqual(later.map((m) => m.data.toString()), ['c', 'd'], 'the datagrams went to recvBatch instead')
  t.is(calls, callsBefore, 'the unsubscribed listener was not called again')
  t.deepEqual(seen, ['a', 'b'])
})

test("'batch' event listeners and onBatch see the same batches", async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  const viaOn: string[] = []
  const viaOnBatch: string[] = []
  rx.on('batch', (b) => {
    for (const m of b) viaOn.push(m.data.toString())
  })
  rx.onBatch((b) => {
    for (const m of b) viaOnBatch.push(m.data.toString())
  })
  await tx.sendBatch(['x', 'y', 'z'].map((data) => ({ data, address: V4, port: portOf(rx) })))
  t.true(await waitUntil(() => viaOn.length >= 3 && viaOnBatch.length >= 3))
  t.deepEqual(viaOn, ['x', 'y', 'z'])
  t.deepEqual(viaOnBatch, ['x', 'y', 'z'])
})

for (const family of [4, 6] as const) {
  test(`Batch accessors and views report what was sent: payloads, lengths, source address and port (IPv${family})`, async (t) => {
    const lo = family === 6 ? V6 : V4
    const rx = openLo(t, family)
    // Two senders, so each datagram's source port is known from who sent it.
    const txA = openLo(t, family)
    const txB = openLo(t, family)
    const ports = [portOf(txA), portOf(txB)]
    const sent = range(0, 6).map((i) => payload(i, 8 + i * 3))
    for (let i = 0; i < sent.length; i++) {
      await (i % 2 ? txB : txA).sendBatch([{ data: sent[i], address: lo, port: portOf(rx) }])
    }
    // The expected address bytes, written out (not from the batch): 127.0.0.1 or ::1.
    const addrBytes = family === 4 ? [127, 0, 0, 1] : [...new Array(15).fill(0), 1]
    let k = 0 // index into `sent` of the next datagram
    while (k < sent.length) {
      const b = await rx.recvBatch({ timeoutMs: 10_000 })
      if (b.count === 0) break
      t.true(k + b.count <= sent.length, 'no extra datagram')
      for (const view of [b.lengths, b.offsets, b.ports, b.families, b.flags, b.scopeIds]) t.is(view.length, b.count)
      t.is(b.addressBytes.length, 16 * b.count)
      let offset = 0
      for (let i = 0; i < b.count; i++, k++) {
        const want = sent[k]
        t.deepEqual(Buffer.from(b.data(i)), want, `data(${i}) is datagram ${k} as sent`)
        t.is(b.lengths[i], want.length, `lengths[${i}] is the length sent`)
        t.is(b.offsets[i], offset, 'payloads lie back to back in the buffer')
        t.deepEqual(Buffer.from(b.buffer.subarray(b.offsets[i], b.offsets[i] + b.lengths[i])), want, 'buffer at offsets[i] holds datagram k')
        offset += want.length
        t.is(b.ports[i], ports[k % 2], `ports[${i}] is the port of the socket that sent datagram ${k}`)
        t.is(b.port(i), ports[k % 2])
        t.is(b.families[i], family)
        t.is(b.family(i), `IPv${family}`)
        t.is(b.address(i), lo)
        t.deepEqual([...b.addressBytes.subarray(16 * i, 16 * i + addrBytes.length)], addrBytes)
        t.is(b.scopeIds[i], 0)
        t.false(b.truncated(i))
        t.is(b.flags[i], 0)
        const m = [...b][i]
        t.deepEqual(Buffer.from(m.data), want, 'iteration yields the same datagram')
        t.like(m, { address: lo, port: ports[k % 2], family: `IPv${family}`, truncated: false })
      }
      t.is(b.buffer.length, offset, 'the buffer holds exactly the payloads sent')
      t.throws(() => b.data(b.count), { instanceOf: RangeError })
      t.throws(() => b.data(-1), { instanceOf: RangeError })
      t.throws(() => b.truncated(1.5), { instanceOf: RangeError })
      t.true(b.kernelDrops === undefined || b.kernelDrops === 0)
    }
    t.is(k, sent.length, 'every datagram sent arrived')
  })
}

test('Batch.empty() has no datagrams', (t) => {
  const b = Batch.empty()
  t.is(b.count, 0)
  t.is(b.buffer.length, 0)
  t.deepEqual([...b], [])
  t.throws(() => b.data(0), { instanceOf: RangeError })
})

test('closing the socket inside a batch listener stops delivery without errors', async (t) => {
  const rx = openLo(t, 4, { batchSize: 2 })
  const tx = openLo(t, 4)
  let calls = 0
  rx.onBatch(() => {
    calls++
    rx.close()
  })
  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 20)))
  t.true(await waitUntil(() => calls >= 1))
  await ticks(20)
  t.is(calls, 1, 'no batch is delivered after close')
  t.true(rx.closed)
})

test('every accessor reads the same from a batch of IPv4 sources (16 bytes of metadata each) as from an IPv6 one', async (t) => {
  for (const family of [4, 6] as const) {
    const rx = openLo(t, family, { recvBufferSize: BIG_RCVBUF, batchSize: 64 })
    const host = family === 4 ? V4 : V6
    const txs = [openLo(t, family), family === 4 ? openLo(t, 4, { address: '127.0.0.2' }) : openLo(t, 6)]
    const n = 6
    for (let i = 0; i < n; i++) txs[i % 2].trySendBatch(messagesTo(host, portOf(rx), [i]))
    const b = await rx.recvBatch({ timeoutMs: 10_000 })
    t.true(b.count >= 2, `${family}: more than one datagram in the batch (${b.count})`)
    const k = b.count
    const srcs = txs.map((s) => (family === 4 ? s.localAddress().address : V6))
    const want = Array.from({ length: k }, (_, i) => ({ address: srcs[i % 2], port: portOf(txs[i % 2]) }))
    t.deepEqual(
      Array.from({ length: k }, (_, i) => ({ address: b.address(i), port: b.port(i) })),
      want,
      `${family}: sources by index`,
    )
    t.deepEqual(
      [...b].map((m) => ({ address: m.address, port: m.port })),
      want,
      `${family}: sources by iteration`,
    )
    for (let i = 0; i < k; i++) {
      t.is(checkPayload(b.data(i)), i)
      t.is(b.family(i), family === 4 ? 'IPv4' : 'IPv6')
      t.false(b.truncated(i))
      t.is(b.localAddress(i), undefined)
      t.is(b.interfaceIndex(i), undefined)
      t.is(b.timestamp(i), undefined)
      t.is(b.tos(i), undefined)
      t.is(b.ports[i], want[i].port)
      t.is(b.families[i], family)
      t.is(b.flags[i], 0)
      t.is(b.data(i).length, b.lengths[i])
      t.true(b.buffer.subarray(b.offsets[i], b.offsets[i] + b.lengths[i]).equals(b.data(i)))
    }
    const bytes = b.addressBytes
    t.is(bytes.length, 16 * k)
    if (family === 4) {
      t.deepEqual([...bytes.subarray(0, 16)], [127, 0, 0, 1, ...new Array(12).fill(0)])
      t.deepEqual([...bytes.subarray(16, 20)], [127, 0, 0, 2])
    } else {
      t.deepEqual([...bytes.subarray(0, 16)], [...new Array(15).fill(0), 1])
    }
    t.deepEqual([...b.scopeIds], new Array(k).fill(0))
    t.deepEqual([...b.interfaceIndexes], new Array(k).fill(0))
    t.deepEqual([...b.tosValues], new Array(k).fill(0))
    t.deepEqual([...b.timestamps], new Array(k).fill(0n))
    t.is(b.localAddressBytes.length, 16 * k)
    t.true(b.localAddressBytes.every((x) => x === 0))
  }
})

test('batches of every size read alike: few datagrams (read byte by byte) and more (through typed views)', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: BIG_RCVBUF, batchSize: 16 })
  const txs = [openLo(t, 4), openLo(t, 4, { address: '127.0.0.2' })]
  let seq = 0
  for (const count of [1, 2, 4, 5, 9]) {
    const first = seq
    // Queued before anyone reads (loopback delivers within the send), so one batch takes them all.
    for (let i = 0; i < count; i++) await txs[i % 2].sendBatch(messagesTo(V4, portOf(rx), [seq++]))
    const got: { seq: number | string; address: string; port: number; family: string }[] = []
    while (got.length < count) {
      const b = await rx.recvBatch({ timeoutMs: 10_000 })
      if (b.count === 0) break
      for (let i = 0; i < b.count; i++)
        got.push({ seq: checkPayload(b.data(i)), address: b.address(i), port: b.port(i), family: b.family(i) })
    }
    const want = range(0, count).map((i) => ({
      seq: first + i,
      address: i % 2 ? '127.0.0.2' : V4,
      port: portOf(txs[i % 2]),
      family: 'IPv4',
    }))
    t.deepEqual(got, want, `${count} datagram(s)`)
  }
})
