// Bulk round trips on loopback: every datagram arrives exactly once, uncut, byte for byte.
import test from 'ava'
import { CAPS, needs } from './backend.js'
import { BIG_RCVBUF, Collector, V4, V6, bulkRoundTrip, checkPayload, messagesTo, openLo, payload, portOf, range, waitUntil } from './helpers.js'

// The two 10 000-datagram runs go one after the other: on a 2-core machine they would only
// compete with each other for the CPU.
test.serial('IPv4 round trip of 10 000 sequence-numbered datagrams, each exactly once and uncut', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: BIG_RCVBUF })
  const tx = openLo(t, 4)
  await bulkRoundTrip(t, tx, rx, { address: V4, port: portOf(rx) }, 10_000, 500, { address: V4, port: portOf(tx) })
})

test.serial('IPv6 round trip of 10 000 sequence-numbered datagrams, each exactly once and uncut', async (t) => {
  const rx = openLo(t, 6, { recvBufferSize: BIG_RCVBUF })
  const tx = openLo(t, 6)
  t.is(rx.type, 'udp6')
  await bulkRoundTrip(t, tx, rx, { address: V6, port: portOf(rx) }, 10_000, 500, { address: V6, port: portOf(tx) })
})

needs.serial('batched')('a batch of 3000 (more than UIO_MAXIOV = 1024) arrives whole, in a few sendmmsg calls (gso: false)', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: BIG_RCVBUF })
  // Without GSO every datagram is one mmsghdr, so the vlen cap of 1024 decides the call count.
  const tx = openLo(t, 4, { gso: false })
  const c = new Collector(rx)
  const before = tx.stats()
  const n = await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 3000)))
  t.is(n, 3000)
  const after = tx.stats()
  const syscalls = after.sendSyscalls - before.sendSyscalls
  t.true(syscalls >= 3, `vlen is capped at 1024, so 3000 datagrams need at least 3 sendmmsg calls (made ${syscalls})`)
  t.true(syscalls <= 100, `far fewer system calls than datagrams (made ${syscalls})`)
  t.is(after.datagramsSent - before.datagramsSent, 3000)
  t.true(await c.waitFor(3000), `received ${c.count} of 3000 (kernelDrops ${rx.stats().kernelDrops})`)
  const seqs = c.messages.map((m) => checkPayload(m.data))
  t.deepEqual(seqs, range(0, 3000), 'all 3000 arrive in order with their content')
})

test.serial('default options (GSO auto): 3000 same-size datagrams in one sendBatch arrive whole, in order, byte for byte', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: BIG_RCVBUF })
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  const n = await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 3000), 200))
  t.is(n, 3000)
  const st = tx.stats()
  t.is(st.datagramsSent, 3000)
  t.is(st.bytesSent, 3000 * 200)
  // (The fallback makes one send per datagram: capabilities().batched is false.)
  if (CAPS.batched) t.true(st.sendSyscalls >= 1 && st.sendSyscalls <= 100, `far fewer system calls than datagrams (made ${st.sendSyscalls})`)
  t.true(await c.waitFor(3000), `received ${c.count} of 3000 (kernelDrops ${rx.stats().kernelDrops})`)
  t.deepEqual(c.messages.map((m) => checkPayload(m.data)), range(0, 3000))
  t.true(c.messages.every((m) => m.data.length === 200 && !m.truncated))
})

test.serial('IPv4 and IPv6 round trips of 5000 same-size datagrams (the GSO path), each exactly once and uncut', async (t) => {
  for (const family of [4, 6] as const) {
    const rx = openLo(t, family, { recvBufferSize: BIG_RCVBUF })
    const tx = openLo(t, family)
    const addr = family === 4 ? V4 : V6
    await bulkRoundTrip(t, tx, rx, { address: addr, port: portOf(rx) }, 5000, 500, { address: addr, port: portOf(tx) }, 300)
  }
})

test('datagrams report their source address, port and family', async (t) => {
  for (const family of [4, 6] as const) {
    const rx = openLo(t, family)
    const tx = openLo(t, family)
    const c = new Collector(rx)
    const addr = family === 4 ? V4 : V6
    await tx.sendBatch(messagesTo(addr, portOf(rx), [1, 2, 3]))
    t.true(await c.waitFor(3))
    for (const m of c.messages) {
      t.is(m.address, addr)
      t.is(m.port, portOf(tx))
      t.is(m.family, family === 4 ? 'IPv4' : 'IPv6')
      t.false(m.truncated)
    }
  }
})

test('empty datagrams and a datagram of the largest IPv4 size (65 507 bytes) round-trip', async (t) => {
  const rx = openLo(t, 4, { maxDatagramSize: 65535, recvBufferSize: BIG_RCVBUF })
  const tx = openLo(t, 4)
  const c = new Collector(rx)
  const port = portOf(rx)
  const big = payload(7, 65507)
  await tx.sendBatch([
    { data: '', address: V4, port },
    { data: Buffer.alloc(0), address: V4, port },
    { data: big, address: V4, port },
    { data: [], address: V4, port },
    { data: 'end', address: V4, port },
  ])
  t.true(await c.waitFor(5), `received ${c.count} of 5`)
  t.deepEqual(
    c.messages.map((m) => m.data.length),
    [0, 0, 65507, 0, 3],
  )
  t.true(c.messages[2].data.equals(big), 'the 65 507-byte datagram arrives byte for byte')
  t.deepEqual(
    c.messages.map((m) => m.truncated),
    [false, false, false, false, false],
  )
})

test('a batch of only empty datagrams is delivered (a zero-length payload buffer)', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  const port = portOf(rx)
  await tx.sendBatch([
    { data: '', address: V4, port },
    { data: '', address: V4, port },
  ])
  let got = 0
  while (got < 2) {
    const b = await rx.recvBatch({ timeoutMs: 10_000 })
    if (b.count === 0) break
    for (let i = 0; i < b.count; i++) {
      t.is(b.data(i).length, 0)
      t.is(b.lengths[i], 0)
    }
    t.is(b.buffer.length, 0)
    got += b.count
  }
  t.is(got, 2)
})

test('bidirectional: both sockets send and receive at the same time', async (t) => {
  const a = openLo(t, 4, { recvBufferSize: BIG_RCVBUF })
  const b = openLo(t, 4, { recvBufferSize: BIG_RCVBUF })
  const ca = new Collector(a)
  const cb = new Collector(b)
  const total = 1000
  for (let start = 0; start < total; start += 250) {
    await Promise.all([
      a.sendBatch(messagesTo(V4, portOf(b), range(start, start + 250))),
      b.sendBatch(messagesTo(V4, portOf(a), range(start, start + 250))),
    ])
    await waitUntil(() => ca.count >= start + 250 && cb.count >= start + 250)
  }
  t.deepEqual(ca.messages.map((m) => checkPayload(m.data)), range(0, total))
  t.deepEqual(cb.messages.map((m) => checkPayload(m.data)), range(0, total))
})
