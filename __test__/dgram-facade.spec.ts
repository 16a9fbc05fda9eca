// What the udp-mmsg/dgram facade does on top of (or differently from) node:dgram: batching,
// udp-mmsg options, and the intentional differences listed in docs/migrating-from-dgram.md.
import test from 'ava'
import { needs } from './backend.js'
import { UdpSocket } from '../lib/index.js'
import { createSocket, Socket } from '../lib/dgram.js'
import { callback, messages, MMSG, sockets, thrown, waitEvent } from './dgram-harness.js'

needs('batched')('the sends of one tick go out in one batch: far fewer sendmmsg calls than datagrams', async (t) => {
  const S = sockets(t)
  const rx = await S.bound(MMSG)
  const tx = (await S.bound(MMSG)) as Socket
  const inner = tx.udpSocket
  t.true(inner instanceof UdpSocket)
  const before = inner!.stats()
  const N = 64
  const got = messages(rx, N)
  const dones = []
  for (let i = 0; i < N; i++) {
    const { cb, done } = callback<[Error | null, number]>(`send ${i}`)
    tx.send(`m${i}`, rx.address().port, '127.0.0.1', cb)
    dones.push(done)
  }
  // Queued until the next tick.
  t.is(tx.getSendQueueCount(), N)
  t.true(tx.getSendQueueSize() > 0)
  const cbs = await Promise.all(dones)
  t.deepEqual(
    cbs,
    Array.from({ length: N }, (_, i) => [null, `m${i}`.length]),
  )
  t.deepEqual(
    (await got).map((m) => m.text),
    Array.from({ length: N }, (_, i) => `m${i}`),
  )
  const after = inner!.stats()
  t.is(after.datagramsSent - before.datagramsSent, N)
  // One sendmmsg normally; a few if the send buffer filled up on a busy machine.
  t.true(after.sendSyscalls - before.sendSyscalls < N / 4, `sendmmsg calls: ${after.sendSyscalls - before.sendSyscalls}`)
  t.is(tx.getSendQueueCount(), 0)
  t.is(tx.getSendQueueSize(), 0)
})

needs('batched')(
  "answers sent from 'message' listeners go out together once the batch's events are done, before the listeners' next-tick callbacks",
  async (t) => {
    const S = sockets(t)
    const server = (await S.bound(MMSG)) as Socket
    const inner = server.udpSocket as UdpSocket
    const client = await UdpSocket.bind({ address: '127.0.0.1' })
    t.teardown(() => client.close())
    const N = 40
    const sentByTick: boolean[] = []
    server.on('message', (msg, rinfo) => {
      const before = inner.stats().datagramsSent
      // Queued before the send, yet it finds the answer handed to the kernel already.
      process.nextTick(() => sentByTick.push(inner.stats().datagramsSent > before))
      server.send(msg, rinfo.port, rinfo.address)
    })
    const replies: string[] = []
    const all = new Promise<void>((resolve) => {
      client.onBatch((b) => {
        for (let i = 0; i < b.count; i++) replies.push(b.data(i).toString())
        if (replies.length === N) resolve()
      })
    })
    const before = inner.stats()
    await client.sendBatch(
      Array.from({ length: N }, (_, i) => ({ data: Buffer.from(`q${i}`), address: '127.0.0.1', port: server.address().port })),
    )
    await all
    t.deepEqual(replies.sort(), Array.from({ length: N }, (_, i) => `q${i}`).sort())
    t.is(sentByTick.length, N)
    t.true(sentByTick.every(Boolean), `sent before the next tick: ${sentByTick.filter(Boolean).length} of ${N}`)
    const after = inner.stats()
    // One sendmmsg per received batch (more only if the send buffer filled).
    t.true(
      after.sendSyscalls - before.sendSyscalls <= after.batchesReceived - before.batchesReceived,
      `sendmmsg calls ${after.sendSyscalls - before.sendSyscalls}, batches ${after.batchesReceived - before.batchesReceived}`,
    )
  },
)

test("one receive batch becomes one 'message' per datagram, in order, with the right rinfo", async (t) => {
  const S = sockets(t)
  const rx = await S.bound(MMSG)
  const tx = await UdpSocket.bind({ address: '127.0.0.1' })
  t.teardown(() => tx.close())
  const port = rx.address().port
  const got = messages(rx, 100)
  await tx.sendBatch(Array.from({ length: 100 }, (_, i) => ({ data: `n${i}`, address: '127.0.0.1', port })))
  const msgs = await got
  t.deepEqual(
    msgs.map((m) => m.text),
    Array.from({ length: 100 }, (_, i) => `n${i}`),
  )
  for (const m of msgs) t.deepEqual(m.rinfo, { address: '127.0.0.1', family: 'IPv4', port: tx.localAddress().port, size: m.text.length })
  t.true((rx as Socket).udpSocket!.stats().batchesReceived <= 100)
})

test('difference: bind() validates the port (Node 20 silently truncates it to 16 bits)', (t) => {
  const S = sockets(t)
  const s = S.add(createSocket('udp4'))
  for (const port of [70000, -1, 1.5, 'abc']) {
    const e = thrown(() => s.bind(port as number, '127.0.0.1'))
    t.like(e, { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT' }, String(port))
  }
})

// Reads them back with getSocketOption (raw getsockopt), which only the native backend has.
needs('native')('socket options reach the kernel: createSocket({ broadcast, ttl }), setBroadcast(), setTTL()', async (t) => {
  const IPPROTO_IP = 0
  const IP_TTL = 2
  const S = sockets(t)
  const o = S.add(createSocket({ type: 'udp4', broadcast: true, ttl: 3 }))
  const listening = waitEvent(o, 'listening')
  o.bind(0, '127.0.0.1')
  await listening
  const inner = o.udpSocket!
  t.true(inner.getBroadcast())
  t.is(inner.getSocketOption(IPPROTO_IP, IP_TTL), 3)
  o.setBroadcast(false)
  t.is(o.setTTL(9), 9)
  t.false(inner.getBroadcast())
  t.is(inner.getSocketOption(IPPROTO_IP, IP_TTL), 9)
  t.is(o.setMulticastLoopback(false), false)
  t.false(inner.getMulticastLoopback())
})

test('udp-mmsg options: maxDatagramSize cuts long datagrams (rinfo.size is what was kept); bad options throw at createSocket', async (t) => {
  const S = sockets(t)
  const rx = S.add(createSocket({ type: 'udp4', maxDatagramSize: 4, batchSize: 8 }))
  const listening = waitEvent(rx, 'listening')
  rx.bind(0, '127.0.0.1')
  await listening
  const tx = await S.bound(MMSG)
  const got = messages(rx, 1)
  tx.send('0123456789', rx.address().port, '127.0.0.1')
  const [m] = await got
  t.is(m.text, '0123')
  t.is(m.rinfo.size, 4)
  t.like(
    thrown(() => createSocket({ type: 'udp4', batchSize: 0 })),
    { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' },
  )
  t.like(
    thrown(() => createSocket({ type: 'udp4', lookup: 5 as any })),
    { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' },
  )
})

needs('reusePort')('reusePort: two facade sockets share one port', async (t) => {
  const S = sockets(t)
  const a = S.add(createSocket({ type: 'udp4', reusePort: true }))
  const la = waitEvent(a, 'listening')
  a.bind(0, '127.0.0.1')
  await la
  const b = S.add(createSocket({ type: 'udp4', reusePort: true }))
  const lb = waitEvent(b, 'listening')
  b.bind(a.address().port, '127.0.0.1')
  await lb
  t.is(b.address().port, a.address().port)
})

test('Symbol.asyncDispose closes the socket', async (t) => {
  const S = sockets(t)
  const s = await S.bound(MMSG)
  const dispose = (s as unknown as Record<symbol, () => Promise<void>>)[Symbol.asyncDispose]
  t.is(typeof dispose, 'function')
  await dispose.call(s)
  t.like(
    thrown(() => s.address()),
    { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' },
  )
  await dispose.call(s)
})

test('errors print like Node’s: `Error [ERR_X]: message`', (t) => {
  const s = createSocket('udp4')
  try {
    s.disconnect()
    t.fail()
  } catch (e) {
    t.is(String(e), 'Error [ERR_SOCKET_DGRAM_NOT_CONNECTED]: Not connected')
    t.regex((e as Error).stack!, /^Error \[ERR_SOCKET_DGRAM_NOT_CONNECTED\]: Not connected/)
    t.is((e as Error).name, 'Error')
  }
  s.close()
})

test('new Socket(type) works like createSocket(type); listener goes to message', async (t) => {
  const S = sockets(t)
  const got: string[] = []
  const { cb, done } = callback('message')
  const s = S.add(
    new Socket('udp4', (msg) => {
      got.push(msg.toString())
      cb()
    }),
  )
  const listening = waitEvent(s, 'listening')
  s.bind(0, '127.0.0.1')
  await listening
  const tx = await S.bound(MMSG)
  tx.send('hi', s.address().port, '127.0.0.1')
  await done
  t.deepEqual(got, ['hi'])
  t.is(s.type, 'udp4')
})

test("'message' names each datagram's own source when sources alternate within one batch", async (t) => {
  const S = sockets(t)
  const rx = await S.bound(MMSG)
  const a = UdpSocket.bindSync({ address: '127.0.0.1', port: 0 })
  const b = UdpSocket.bindSync({ address: '127.0.0.2', port: 0 })
  t.teardown(() => {
    a.close()
    b.close()
  })
  const N = 8
  const got = messages(rx, N)
  // Sent synchronously in one tick: the receiver reads them together, in one batch.
  for (let i = 0; i < N; i++) (i % 2 === 0 ? a : b).trySendBatch([{ data: Buffer.from(`m${i}`), address: '127.0.0.1', port: rx.address().port }])
  const msgs = await got
  t.deepEqual(
    msgs.map((m) => [m.text, m.rinfo.address, m.rinfo.port, m.rinfo.family]),
    Array.from({ length: N }, (_, i) => {
      const s = i % 2 === 0 ? a : b
      return [`m${i}`, s.localAddress().address, s.localAddress().port, 'IPv4']
    }),
  )
  const st = (rx as Socket).udpSocket?.stats()
  if (st) t.true(st.batchesReceived < N, `several datagrams per batch (${st.batchesReceived} batches)`)
})
