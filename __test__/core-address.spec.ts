// Addresses: localAddress with port 0, remoteAddress, connect/disconnect, dual-stack.
import test from 'ava'
import { UdpSocket } from '../lib/index.js'
import { Collector, V4, V6, open, openLo, portOf, pull } from './helpers.js'

test('localAddress() with port 0 gives the real port, and datagrams to it arrive', async (t) => {
  for (const family of [4, 6] as const) {
    const s = openLo(t, family)
    const a = s.localAddress()
    t.is(a.address, family === 4 ? V4 : V6)
    t.is(a.family, family === 4 ? 'IPv4' : 'IPv6')
    t.true(Number.isInteger(a.port) && a.port > 0 && a.port <= 65535, String(a.port))
    const tx = openLo(t, family)
    await tx.sendBatch([{ data: 'hello', address: a.address, port: a.port }])
    const got = await pull(s, 1)
    t.deepEqual(got.map((m) => m.data.toString()), ['hello'])
  }
})

test('binding a specific port reports that port; the type is inferred from the address', (t) => {
  const probe = UdpSocket.bindSync({ address: V4 })
  const port = portOf(probe)
  probe.close()
  const s = open(t, { address: V4, port })
  t.deepEqual(s.localAddress(), { address: V4, port, family: 'IPv4' })
  t.is(s.type, 'udp4')
  const s6 = open(t, { address: V6 })
  t.is(s6.type, 'udp6')
  const d = open(t, {})
  t.is(d.type, 'udp4')
  t.is(d.localAddress().address, '0.0.0.0')
  const d6 = open(t, { type: 'udp6' })
  t.is(d6.localAddress().address, '::')
  t.is(d6.localAddress().family, 'IPv6')
})

test('remoteAddress() is null unconnected and set when connected (option or connect())', (t) => {
  const peer = openLo(t, 4)
  const s = openLo(t, 4)
  t.is(s.remoteAddress(), null)
  s.connect(V4, portOf(peer))
  t.deepEqual(s.remoteAddress(), { address: V4, port: portOf(peer), family: 'IPv4' })
  s.disconnect()
  t.is(s.remoteAddress(), null)
  const c = openLo(t, 4, { connect: { address: V4, port: portOf(peer) } })
  t.deepEqual(c.remoteAddress(), { address: V4, port: portOf(peer), family: 'IPv4' })
  const peer6 = openLo(t, 6)
  const c6 = openLo(t, 6, { connect: { address: V6, port: portOf(peer6) } })
  t.deepEqual(c6.remoteAddress(), { address: V6, port: portOf(peer6), family: 'IPv6' })
})

test("dual-stack: a udp6 socket on '::' with ipv6Only false receives from IPv4 as ::ffff:127.0.0.1 and replies", async (t) => {
  const ds = open(t, { type: 'udp6', address: '::', port: 0, ipv6Only: false })
  const tx4 = openLo(t, 4)
  const c4 = new Collector(tx4)
  await tx4.sendBatch([{ data: 'from v4', address: V4, port: portOf(ds) }])
  const got = await pull(ds, 1)
  t.is(got.length, 1)
  t.is(got[0].data.toString(), 'from v4')
  t.is(got[0].address, '::ffff:127.0.0.1')
  t.is(got[0].family, 'IPv6')
  t.is(got[0].port, portOf(tx4))
  // Replying to the address as reported, and to the plain IPv4 literal, both reach the IPv4 socket.
  await ds.sendBatch([
    { data: 'reply mapped', address: got[0].address, port: got[0].port },
    { data: 'reply v4', address: V4, port: portOf(tx4) },
  ])
  t.true(await c4.waitFor(2))
  t.deepEqual(c4.texts(), ['reply mapped', 'reply v4'])
  t.true(c4.messages.every((m) => m.address === V4 && m.family === 'IPv4' && m.port === portOf(ds)))
  // It still receives IPv6.
  const tx6 = openLo(t, 6)
  await tx6.sendBatch([{ data: 'from v6', address: V6, port: portOf(ds) }])
  const got6 = await pull(ds, 1)
  t.is(got6[0].address, V6)
})

test('a dual-stack socket can connect to an IPv4 peer', async (t) => {
  const peer = openLo(t, 4)
  const pc = new Collector(peer)
  const ds = open(t, { type: 'udp6', address: '::', ipv6Only: false, connect: { address: V4, port: portOf(peer) } })
  const r = ds.remoteAddress()
  t.truthy(r)
  t.is(r!.port, portOf(peer))
  t.true(r!.address === '::ffff:127.0.0.1', r!.address)
  await ds.sendBatch([{ data: 'hi' }])
  t.true(await pc.waitFor(1))
  t.deepEqual(pc.texts(), ['hi'])
  await peer.sendBatch([{ data: 'back', address: V4, port: portOf(ds) }])
  const got = await pull(ds, 1)
  t.deepEqual(got.map((m) => m.data.toString()), ['back'])
})

test('an IPv6-only socket does not receive IPv4 datagrams', async (t) => {
  // An IPv4 socket may share the port number then; the IPv4 datagram goes there, not to s6.
  // (Another process may hold 127.0.0.1 on the port the kernel picked: then try another.)
  let pair: [UdpSocket, UdpSocket] | undefined
  for (let attempt = 0; attempt < 20 && pair === undefined; attempt++) {
    const a = UdpSocket.bindSync({ type: 'udp6', address: '::', ipv6Only: true })
    try {
      pair = [a, UdpSocket.bindSync({ address: V4, port: portOf(a) })]
    } catch (e: any) {
      a.close()
      if (e.code !== 'EADDRINUSE') throw e
    }
  }
  t.truthy(pair, 'found a port free for both families')
  const [s6, s4] = pair!
  t.teardown(() => {
    s6.close()
    s4.close()
  })
  const c6 = new Collector(s6)
  const tx4 = openLo(t, 4)
  const tx6 = openLo(t, 6)
  await tx4.sendBatch([{ data: 'v4', address: V4, port: portOf(s6) }])
  const got4 = await pull(s4, 1)
  t.deepEqual(got4.map((m) => m.data.toString()), ['v4'])
  await tx6.sendBatch([{ data: 'v6', address: V6, port: portOf(s6) }])
  t.true(await c6.waitFor(1))
  t.deepEqual(c6.texts(), ['v6'])
})

test('bufferSizes() reports what the kernel granted (Linux doubles the request)', (t) => {
  const s = openLo(t, 4, { recvBufferSize: 65536, sendBufferSize: 65536 })
  const b = s.bufferSizes()
  t.is(b.recvBufferSize, 2 * 65536)
  t.is(b.sendBufferSize, 2 * 65536)
  t.false(b.recvForced)
  s.setRecvBufferSize(32768)
  t.is(s.bufferSizes().recvBufferSize, 2 * 32768)
})

test('one batch with interleaved sources reports each datagram with its own address and port', async (t) => {
  const ds = open(t, { type: 'udp6', address: '::', ipv6Only: false, batchSize: 64 })
  const senders = [openLo(t, 4), openLo(t, 6), openLo(t, 4), openLo(t, 6)]
  const want: Array<[string, number, string]> = []
  // Queued while nobody reads, so they come out together in one or a few batches.
  for (let i = 0; i < 24; i++) {
    const k = [0, 1, 1, 2, 3, 0, 2, 1][i % 8]
    const s = senders[k]
    await s.sendBatch([{ data: `m${i}`, address: k % 2 === 0 ? V4 : V6, port: portOf(ds) }])
    want.push([k % 2 === 0 ? '::ffff:127.0.0.1' : V6, portOf(s), `m${i}`])
  }
  const got: Array<[string, number, string]> = []
  const viaIndex: Array<[string, number, string]> = []
  while (got.length < 24) {
    const b = await ds.recvBatch({ timeoutMs: 10_000 })
    if (b.count === 0) break
    for (const m of b) got.push([m.address, m.port, m.data.toString()])
    // Random access in reverse order too (the address cache must not leak across indexes).
    const rev: Array<[string, number, string]> = []
    for (let i = b.count - 1; i >= 0; i--) rev.unshift([b.address(i), b.port(i), b.data(i).toString()])
    viaIndex.push(...rev)
  }
  t.deepEqual(got, want)
  t.deepEqual(viaIndex, want)
})
