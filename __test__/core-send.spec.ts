// Sending: per-datagram destinations, scatter/gather, trySendBatch, connected sockets.
import test from 'ava'
import type { OutgoingMessage } from '../lib/index.js'
import { Collector, V4, V6, caught, checkPayload, messagesTo, open, openLo, payload, payloadLength, portOf, range, ticks, waitUntil } from './helpers.js'

for (const [label, length] of [
  ['payloads of varying size', undefined],
  ['same-size payloads (GSO runs must break at every destination change)', 100],
] as const) {
  test(`per-datagram destinations: one sendBatch, three receivers, each gets exactly its datagrams in order (${label})`, async (t) => {
    const rxs = [openLo(t, 4), openLo(t, 4), openLo(t, 4)]
    const cs = rxs.map((r) => new Collector(r))
    const tx = openLo(t, 4)
    // An irregular interleaving (runs of the same destination and single switches).
    const pattern = [0, 1, 2, 2, 0, 0, 0, 1, 2, 1, 0, 2, 2, 2, 1, 1]
    const messages: OutgoingMessage[] = []
    const expected: number[][] = [[], [], []]
    for (let seq = 0; seq < 300; seq++) {
      const r = pattern[seq % pattern.length]
      expected[r].push(seq)
      messages.push({ data: payload(seq, length ?? payloadLength(seq)), address: V4, port: portOf(rxs[r]) })
    }
    t.is(await tx.sendBatch(messages), 300)
    for (let r = 0; r < 3; r++) {
      t.true(await cs[r].waitFor(expected[r].length), `receiver ${r}: ${cs[r].count} of ${expected[r].length}`)
    }
    // A marker sent last to every receiver proves nothing else was on its way.
    await tx.sendBatch(rxs.map((r) => ({ data: 'end', address: V4, port: portOf(r) })))
    for (let r = 0; r < 3; r++) {
      t.true(await cs[r].waitFor(expected[r].length + 1))
      const got = cs[r].messages.map((m) => (m.data.toString() === 'end' ? 'end' : checkPayload(m.data)))
      t.deepEqual(got, [...expected[r], 'end'], `receiver ${r} gets exactly its datagrams, in order`)
      t.true(cs[r].messages.every((m) => m.port === portOf(tx)))
    }
  })
}

test('per-datagram destinations mixing IPv6 and IPv4-mapped peers from a dual-stack socket', async (t) => {
  const tx = open(t, { type: 'udp6', address: '::', ipv6Only: false })
  const r6 = openLo(t, 6)
  const r4 = openLo(t, 4)
  const c6 = new Collector(r6)
  const c4 = new Collector(r4)
  const messages: OutgoingMessage[] = []
  for (let i = 0; i < 20; i++) {
    messages.push(i % 3 === 0 ? { data: `v4-${i}`, address: V4, port: portOf(r4) } : { data: `v6-${i}`, address: V6, port: portOf(r6) })
  }
  t.is(await tx.sendBatch(messages), 20)
  t.true(await c4.waitFor(7))
  t.true(await c6.waitFor(13))
  t.deepEqual(c4.texts(), range(0, 20).filter((i) => i % 3 === 0).map((i) => `v4-${i}`))
  t.deepEqual(c6.texts(), range(0, 20).filter((i) => i % 3 !== 0).map((i) => `v6-${i}`))
  t.true(c4.messages.every((m) => m.address === V4 && m.family === 'IPv4' && m.port === portOf(tx)))
  t.true(c6.messages.every((m) => m.address === V6 && m.family === 'IPv6' && m.port === portOf(tx)))
})

test('scatter/gather: the sendmmsg(2) example, "one"+"two" as one datagram, then "three"', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  const port = portOf(rx)
  const n = await tx.sendBatch([
    { data: ['one', 'two'], address: V4, port },
    { data: 'three', address: V4, port },
  ])
  t.is(n, 2)
  t.true(await c.waitFor(2))
  t.deepEqual(c.texts(), ['onetwo', 'three'])
  t.is(tx.stats().bytesSent, 11)
})

test('scatter/gather with strings, Buffers, other TypedArrays and DataViews (with byte offsets)', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  const port = portOf(rx)
  const backing = new ArrayBuffer(64)
  const bytes = new Uint8Array(backing)
  for (let i = 0; i < 64; i++) bytes[i] = i + 100
  const u16 = new Uint16Array([0x0201, 0x0403])
  const f64 = new Float64Array([1.5])
  const i32 = new Int32Array(backing, 8, 2) // byteOffset 8
  const dv = new DataView(backing, 21, 5) // odd byteOffset
  const sub = Buffer.from('0123456789').subarray(3, 7) // a Buffer view with an offset: '3456'
  const bigSub = new BigInt64Array(backing, 32, 1)
  const cases: Array<{ data: OutgoingMessage['data']; expect: Buffer }> = [
    { data: ['héllo ', Buffer.from('wörld')], expect: Buffer.from('héllo wörld') },
    { data: [u16, sub], expect: Buffer.concat([Buffer.from(u16.buffer), Buffer.from('3456')]) },
    { data: [f64, i32, dv], expect: Buffer.concat([Buffer.from(f64.buffer), Buffer.from(bytes.subarray(8, 16)), Buffer.from(bytes.subarray(21, 26))]) },
    { data: dv, expect: Buffer.from(bytes.subarray(21, 26)) },
    { data: i32, expect: Buffer.from(bytes.subarray(8, 16)) },
    { data: bigSub, expect: Buffer.from(bytes.subarray(32, 40)) },
    { data: ['a', '', Buffer.alloc(0), new Uint8Array(0), 'b'], expect: Buffer.from('ab') },
    { data: ['only'], expect: Buffer.from('only') },
    { data: new Uint8ClampedArray([255, 0, 7]), expect: Buffer.from([255, 0, 7]) },
  ]
  const n = await tx.sendBatch(cases.map((k) => ({ data: k.data, address: V4, port })))
  t.is(n, cases.length)
  t.true(await c.waitFor(cases.length))
  for (let i = 0; i < cases.length; i++) {
    t.deepEqual(c.messages[i].data, cases[i].expect, `datagram ${i}`)
  }
  t.is(tx.stats().bytesSent, cases.reduce((s, k) => s + k.expect.length, 0))
})

test('scatter/gather: a datagram of 1024 parts (the iovec limit) arrives as one', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  const parts = range(0, 1024).map((i) => Buffer.from([i & 0xff, i >> 8]))
  t.is(await tx.sendBatch([{ data: parts, address: V4, port: portOf(rx) }]), 1)
  t.true(await c.waitFor(1))
  t.deepEqual(c.messages[0].data, Buffer.concat(parts))
})

test('sent buffers may be reused as soon as sendBatch returns (the payload was copied or sent)', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  const buf = Buffer.from('first')
  const p = tx.sendBatch([{ data: buf, address: V4, port: portOf(rx) }])
  buf.write('XXXXX')
  await p
  t.true(await c.waitFor(1))
  t.is(c.texts()[0], 'first')
})

test('a one-datagram sendBatch queued behind another sends the bytes it had when called', async (t) => {
  // One datagram is sent from its own buffer when it goes at once; when it has to wait (here
  // behind a batch of more than one event-loop slice) it is copied first, as a batch is.
  const rx = openLo(t, 4, { recvBufferSize: 4 << 20 })
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  const port = portOf(rx)
  const big = tx.sendBatch(messagesTo(V4, port, range(0, 5000), 8))
  const buf = Buffer.from('first')
  const one = tx.sendBatch([{ data: buf, address: V4, port }])
  t.is(tx.stats().pendingSends, 2, 'both wait')
  buf.write('XXXXX')
  t.is(await big, 5000)
  t.is(await one, 1)
  t.true(await waitUntil(() => c.count + rx.stats().kernelDrops >= 5001))
  const last = c.messages[c.messages.length - 1]
  t.is(last.data.toString(), 'first', 'the datagram sent last is the one queued last, with its bytes at call time')
})

test('trySendBatch sends synchronously and returns the count', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  const n = tx.trySendBatch(messagesTo(V4, portOf(rx), range(0, 50)))
  t.is(n, 50)
  t.true(await c.waitFor(50))
  t.deepEqual(c.messages.map((m) => checkPayload(m.data)), range(0, 50))
  t.is(tx.trySendBatch([]), 0)
})

test('an empty batch resolves with 0', async (t) => {
  const tx = openLo(t, 4)
  t.is(await tx.sendBatch([]), 0)
  t.is(tx.stats().sendSyscalls, 0)
})

test('consecutive sendBatch calls without awaiting keep their order', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: 4 << 20 })
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  const port = portOf(rx)
  const ps = []
  for (let k = 0; k < 10; k++) ps.push(tx.sendBatch(messagesTo(V4, port, range(k * 100, k * 100 + 100))))
  t.deepEqual(await Promise.all(ps), Array(10).fill(100))
  t.true(await c.waitFor(1000))
  t.deepEqual(c.messages.map((m) => checkPayload(m.data)), range(0, 1000))
})

test('a connected socket sends without destinations and receives only from its peer', async (t) => {
  const peer = openLo(t, 4)
  const stranger = openLo(t, 4)
  const pc = new Collector(peer)
  const s = openLo(t, 4, { connect: { address: V4, port: portOf(peer) } })
  const sc = new Collector(s)
  t.is(await s.sendBatch([{ data: 'a' }, { data: ['b', 'c'] }]), 2)
  t.true(await pc.waitFor(2))
  t.deepEqual(pc.texts(), ['a', 'bc'])
  // The stranger's datagram is filtered by the kernel; the peer's marker, sent after it, arrives.
  await stranger.sendBatch([{ data: 'stranger', address: V4, port: portOf(s) }])
  await peer.sendBatch([{ data: 'peer', address: V4, port: portOf(s) }])
  t.true(await sc.waitFor(1))
  await ticks()
  t.deepEqual(sc.texts(), ['peer'])
})

test('connect() and disconnect() after binding change where sends go', async (t) => {
  const a = openLo(t, 4)
  const b = openLo(t, 4)
  const ca = new Collector(a)
  const cb = new Collector(b)
  const s = openLo(t, 4)
  s.connect(V4, portOf(a))
  await s.sendBatch([{ data: 'to-a' }])
  const err = await caught(() => s.sendBatch([{ data: 'x', address: V4, port: portOf(b) }]))
  t.is(err.code, 'ERR_SOCKET_DGRAM_IS_CONNECTED')
  s.disconnect()
  t.is(s.remoteAddress(), null)
  await s.sendBatch([{ data: 'to-b', address: V4, port: portOf(b) }])
  const err2 = await caught(() => s.sendBatch([{ data: 'x' }]))
  t.is(err2.code, 'ERR_SOCKET_DGRAM_NOT_CONNECTED')
  t.true(await ca.waitFor(1))
  t.true(await cb.waitFor(1))
  t.deepEqual(ca.texts(), ['to-a'])
  t.deepEqual(cb.texts(), ['to-b'])
})

test('a datagram without a destination is refused even when a later one has one (nothing is sent)', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  const port = portOf(rx)
  for (const messages of [
    [{ data: 'no destination' }],
    [{ data: 'no destination' }, { data: 'with', address: V4, port }],
    [{ data: 'with', address: V4, port }, { data: 'no destination' }],
  ]) {
    const err = await caught(() => tx.sendBatch(messages))
    t.is(err.code, 'ERR_SOCKET_DGRAM_NOT_CONNECTED', JSON.stringify(messages))
    t.regex(err.message, /messages\[\d\]/)
    t.throws(() => tx.trySendBatch(messages), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' })
  }
  t.is(tx.stats().datagramsSent, 0, 'validation happens before anything is sent')
  await tx.sendBatch([{ data: 'marker', address: V4, port }])
  t.true(await c.waitFor(1))
  await ticks()
  t.deepEqual(c.texts(), ['marker'])
})

test('a sendBatch larger than one slice is sent completely; later sends and trySendBatch keep the order', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: 4 << 20 })
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  const port = portOf(rx)
  const big = tx.sendBatch(range(0, 6000).map((i) => ({ data: `b${i}`, address: V4, port })))
  const small = tx.sendBatch([{ data: 'small', address: V4, port }])
  // While the big batch is still in progress (it is sent in slices, one per event-loop turn),
  // a non-waiting send must not jump the queue: it sends nothing.
  const inProgress = tx.stats().pendingSends > 0
  const tried = tx.trySendBatch([{ data: 'try', address: V4, port }])
  t.is(tried, inProgress ? 0 : 1)
  t.is(await big, 6000)
  t.is(await small, 1)
  t.is(tx.stats().pendingSends, 0)
  const expected = [...range(0, 6000).map((i) => `b${i}`), 'small', ...(tried ? ['try'] : [])]
  t.true(await c.waitFor(expected.length), `received ${c.count}`)
  await ticks()
  t.deepEqual(c.texts(), expected)
})

test('scatter/gather in runs of same-size datagrams (what GSO batches) keeps every datagram intact', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: 4 << 20 })
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  const port = portOf(rx)
  const expected: Buffer[] = []
  const messages: OutgoingMessage[] = []
  for (let i = 0; i < 300; i++) {
    const full = payload(i, 50)
    // The same total length, split at different points into three parts.
    const a = i % 17
    const b = 17 + (i % 13)
    expected.push(full)
    messages.push({ data: [full.subarray(0, a), full.subarray(a, b), full.subarray(b)], address: V4, port })
  }
  // A shorter last datagram (GSO allows the last segment of a run to be shorter).
  expected.push(Buffer.from('short'))
  messages.push({ data: ['sh', 'ort'], address: V4, port })
  t.is(await tx.sendBatch(messages), 301)
  t.true(await c.waitFor(301), `received ${c.count}`)
  t.deepEqual(
    c.messages.map((m) => m.data),
    expected,
  )
})
