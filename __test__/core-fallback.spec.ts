// The portable fallback path (`portable: true`): one recvmsg/sendmsg per datagram.
import test from 'ava'
import { needs } from './backend.js'
import { UdpSocket } from '../lib/index.js'
import { BIG_RCVBUF, Collector, V4, V6, bulkRoundTrip, checkPayload, messagesTo, openLo, portOf, pull, range, waitUntil } from './helpers.js'

needs('batched')('portable sockets say so; default sockets on Linux do not', (t) => {
  const p4 = openLo(t, 4, { portable: true })
  const p6 = openLo(t, 6, { portable: true })
  const b = openLo(t, 4)
  t.true(p4.portable)
  t.true(p6.portable)
  t.false(b.portable)
})

for (const family of [4, 6] as const) {
  test.serial(`portable IPv${family} round trip of 2000 sequence-numbered datagrams`, async (t) => {
    const rx = openLo(t, family, { portable: true, recvBufferSize: BIG_RCVBUF })
    const tx = openLo(t, family, { portable: true })
    const addr = family === 4 ? V4 : V6
    const tracker = await bulkRoundTrip(t, tx, rx, { address: addr, port: portOf(rx) }, 2000, 250, { address: addr, port: portOf(tx) })
    const ts = tx.stats()
    t.is(ts.datagramsSent, 2000)
    t.true(ts.sendSyscalls >= 2000, `one sendmsg per datagram (${ts.sendSyscalls} calls for 2000)`)
    const rs = rx.stats()
    t.is(rs.datagramsReceived, 2000)
    t.is(rs.bytesReceived, tracker.bytes)
    t.is(rs.batchesReceived, tracker.batches)
  })
}

test.serial('portable interoperates with the batched path in both directions', async (t) => {
  const p = openLo(t, 4, { portable: true, recvBufferSize: BIG_RCVBUF })
  const b = openLo(t, 4, { recvBufferSize: BIG_RCVBUF })
  const cp = new Collector(p)
  const cb = new Collector(b)
  await p.sendBatch(messagesTo(V4, portOf(b), range(0, 500)))
  await b.sendBatch(messagesTo(V4, portOf(p), range(0, 500)))
  t.true(await cp.waitFor(500))
  t.true(await cb.waitFor(500))
  t.deepEqual(cp.messages.map((m) => checkPayload(m.data)), range(0, 500))
  t.deepEqual(cb.messages.map((m) => checkPayload(m.data)), range(0, 500))
})

// Regression: on the portable path `recvSyscalls` once counted `RecvSlab::receive` calls
// (batches) instead of the recvmsg calls inside them (~8 "syscalls" for 500 datagrams).
test('portable: stats().recvSyscalls counts one recvmsg per datagram (recvSyscalls ≈ datagrams)', async (t) => {
  const rx = openLo(t, 4, { portable: true, recvBufferSize: BIG_RCVBUF, batchSize: 64 })
  const tx = openLo(t, 4, { portable: true })
  // Queue them all first so the receiver drains full batches.
  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 500)))
  const got = await pull(rx, 500)
  t.is(got.length, 500)
  const s = rx.stats()
  t.is(s.datagramsReceived, 500)
  t.true(s.recvSyscalls >= s.datagramsReceived, `recvSyscalls ${s.recvSyscalls} for ${s.datagramsReceived} datagrams`)
  t.true(s.recvSyscalls <= 2 * s.datagramsReceived, `recvSyscalls ${s.recvSyscalls} for ${s.datagramsReceived} datagrams`)
})

test('portable: scatter/gather sends several parts as one datagram', async (t) => {
  const rx = openLo(t, 4, { portable: true })
  const tx = openLo(t, 4, { portable: true })
  const c = new Collector(rx)
  const port = portOf(rx)
  const u16 = new Uint16Array([0x4241])
  await tx.sendBatch([
    { data: ['one', 'two'], address: V4, port },
    { data: 'three', address: V4, port },
    { data: [Buffer.from('ab'), u16, new DataView(new Uint8Array([0x43, 0x44, 0x45]).buffer, 1, 2)], address: V4, port },
  ])
  t.true(await c.waitFor(3))
  t.deepEqual(c.texts(), ['onetwo', 'three', 'abABDE'])
})

test('portable: truncation is flagged and counted', async (t) => {
  const rx = openLo(t, 4, { portable: true, maxDatagramSize: 100 })
  const tx = openLo(t, 4, { portable: true })
  const port = portOf(rx)
  const sizes = [300, 100, 101, 20]
  const sent = sizes.map((n, i) => Buffer.alloc(n).map((_, k) => (k + i * 3) & 0xff))
  await tx.sendBatch(sent.map((data) => ({ data, address: V4, port })))
  const got = await pull(rx, 4)
  t.deepEqual(got.map((m) => m.truncated), [true, false, true, false])
  t.deepEqual(got.map((m) => m.data.length), [100, 100, 100, 20])
  for (let i = 0; i < 4; i++) t.deepEqual(got[i].data, sent[i].subarray(0, 100))
  t.is(rx.stats().truncated, 2)
})

test('portable: per-datagram destinations', async (t) => {
  const rxs = [openLo(t, 4, { portable: true }), openLo(t, 4, { portable: true })]
  const cs = rxs.map((r) => new Collector(r))
  const tx = openLo(t, 4, { portable: true })
  const messages = range(0, 30).map((i) => ({ data: `m${i}`, address: V4, port: portOf(rxs[(i * 5) % 7 < 3 ? 0 : 1]) }))
  await tx.sendBatch(messages)
  const want = [0, 1].map((r) => range(0, 30).filter((i) => ((i * 5) % 7 < 3 ? 0 : 1) === r).map((i) => `m${i}`))
  t.true(await cs[0].waitFor(want[0].length))
  t.true(await cs[1].waitFor(want[1].length))
  t.deepEqual(cs[0].texts(), want[0])
  t.deepEqual(cs[1].texts(), want[1])
})

test('portable: batches still group datagrams for JS (at most batchSize)', async (t) => {
  const rx = openLo(t, 4, { portable: true, batchSize: 16 })
  const tx = openLo(t, 4, { portable: true })
  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 100)))
  const counts: number[] = []
  let n = 0
  while (n < 100) {
    const b = await rx.recvBatch({ timeoutMs: 10_000 })
    if (b.count === 0) break
    counts.push(b.count)
    n += b.count
  }
  t.is(n, 100)
  t.true(counts.every((k) => k >= 1 && k <= 16), String(counts))
  t.true(Math.max(...counts) > 1, String(counts))
})

test('portable: a batch of 3000 is sent whole with one sendmsg per datagram', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: BIG_RCVBUF })
  const tx = openLo(t, 4, { portable: true })
  const c = new Collector(rx)
  t.is(await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 3000))), 3000)
  t.true(tx.stats().sendSyscalls >= 3000)
  t.true(await c.waitFor(3000), `received ${c.count}`)
  t.deepEqual(c.messages.map((m) => checkPayload(m.data)), range(0, 3000))
})

test('portable: ECONNREFUSED is reported (syscall recvmsg) and the socket keeps receiving', async (t) => {
  const throwaway = UdpSocket.bindSync({ address: V4 })
  const deadPort = portOf(throwaway)
  throwaway.close()
  const s = openLo(t, 4, { portable: true, connect: { address: V4, port: deadPort } })
  const errors: any[] = []
  s.on('error', (e) => errors.push(e))
  const c = new Collector(s)
  for (let i = 0; i < 20 && errors.length === 0; i++) {
    await s.sendBatch([{ data: 'probe' }]).catch((e) => errors.push(e))
    await waitUntil(() => errors.length > 0, 2000, 5)
  }
  t.true(errors.length > 0)
  t.true(errors.every((e) => e.code === 'ECONNREFUSED'), errors.map((e) => e.code).join())
  t.true(errors.some((e) => e.syscall === 'recvmsg' || e.syscall === 'sendmsg'), errors.map((e) => e.syscall).join())
  const peer = openLo(t, 4)
  s.connect(V4, portOf(peer))
  await peer.sendBatch([{ data: 'still here', address: V4, port: portOf(s) }])
  t.true(await c.waitFor(1))
  t.deepEqual(c.texts(), ['still here'])
})
