// Linux features beyond batching: GSO, GRO, the kernel drop counter, pktinfo, timestamps,
// TOS/ECN, multicast, broadcast, capabilities. Loopback only (IPv4 multicast uses the lo
// interface with TTL 0, so nothing can leave the host).
import anyTest from 'ava'
import { readFileSync } from 'node:fs'
import { UdpSocket, type Batch } from '../lib/index.js'

// Everything here needs Linux (GSO/GRO, SO_RXQ_OVFL, pktinfo/timestamps/TOS on receive, the
// lo interface, /proc). Elsewhere each test is listed as skipped, so the gap shows in the
// output instead of failing (macOS) or vanishing.
const ON_LINUX = process.platform === 'linux'
const test = ON_LINUX ? anyTest : anyTest.skip
if (!ON_LINUX) {
  anyTest(`linux-features: every test below is skipped on ${process.platform} (Linux only)`, (t) => {
    t.log(`skipped: needs Linux, this is ${process.platform}`)
    t.pass()
  })
}

const SOL_SOCKET = 1
const SO_NO_CHECK = 11

type Opts = Parameters<typeof UdpSocket.bind>[0]

async function open(t: any, opts: Opts): Promise<UdpSocket> {
  const s = await UdpSocket.bind(opts)
  t.teardown(() => s.close())
  return s
}

/** Collects datagrams until `n` arrived (bounded by time), keeping each batch. */
async function collect(rx: UdpSocket, n: number, limitMs = 10000): Promise<{ data: Buffer[]; batches: Batch[] }> {
  const data: Buffer[] = []
  const batches: Batch[] = []
  const until = Date.now() + limitMs
  while (data.length < n && Date.now() < until) {
    const b = await rx.recvBatch({ timeoutMs: 500 })
    if (b.count > 0) batches.push(b)
    for (let i = 0; i < b.count; i++) data.push(Buffer.from(b.data(i)))
  }
  return { data, batches }
}

/** A loopback port that was free a moment ago (bound and closed). */
async function freePort(): Promise<number> {
  const s = await UdpSocket.bind({ address: '127.0.0.1' })
  const { port } = s.localAddress()
  s.close()
  return port
}

function payload(i: number, size: number): Buffer {
  const b = Buffer.alloc(size)
  for (let j = 0; j < size; j++) b[j] = (i * 31 + j) & 0xff
  b.writeUInt32LE(i, 0)
  return b
}

test('capabilities reflect the options and the path', async (t) => {
  const fast = await open(t, { address: '127.0.0.1', pktinfo: true, timestamps: true, recvTos: true, gro: true })
  const c = fast.capabilities()
  t.true(c.batched)
  t.true(c.gsoSupported, 'this kernel (>= 4.18) supports UDP_SEGMENT')
  t.true(c.gso)
  t.true(c.gro)
  t.true(c.dropCounter)
  t.true(c.pktinfo && c.timestamps && c.recvTos)
  const plain = await open(t, { address: '127.0.0.1', gso: false })
  t.false(plain.capabilities().gso)
  t.false(plain.capabilities().gro)
  const portable = await open(t, { address: '127.0.0.1', portable: true })
  t.false(portable.capabilities().batched)
  t.false(portable.capabilities().gso, 'the portable path never uses GSO')
  await t.throwsAsync(UdpSocket.bind({ address: '127.0.0.1', portable: true, gso: true }), { instanceOf: TypeError, message: /options\.gso/ })
  await t.throwsAsync(UdpSocket.bind({ address: '127.0.0.1', portable: true, gro: true }), { instanceOf: TypeError, message: /options\.gro/ })
  await t.throwsAsync(UdpSocket.bind({ address: '127.0.0.1', gso: 'yes' as any }), { instanceOf: TypeError })
})

// Not Linux-only: SO_REUSEPORT exists on macOS too (without Linux's load balancing).
anyTest('capabilities().reusePort is what the socket got: false unless bound with reusePort', async (t) => {
  const plain = await open(t, { address: '127.0.0.1' })
  t.false(plain.capabilities().reusePort, 'bound without reusePort')
  const first = await open(t, { address: '127.0.0.1', reusePort: true })
  t.true(first.capabilities().reusePort, 'bound with reusePort: true')
  const { port } = first.localAddress()
  const second = await open(t, { address: '127.0.0.1', port, reusePort: true })
  t.true(second.capabilities().reusePort, 'a second socket on the same port')
  t.false((await open(t, { address: '127.0.0.1', reusePort: false })).capabilities().reusePort)
  const portable = await open(t, { address: '127.0.0.1', portable: true, reusePort: true })
  t.true(portable.capabilities().reusePort, 'the portable path keeps the option')
})

for (const gso of [true, false] as const) {
  test(`GSO ${gso ? 'on' : 'off'}: the receiver sees exactly the datagrams sent, byte for byte`, async (t) => {
    const rx = await open(t, { address: '127.0.0.1', recvBufferSize: 4 << 20, gso: false })
    const rx2 = await open(t, { address: '127.0.0.1', recvBufferSize: 4 << 20 })
    const tx = await open(t, { address: '127.0.0.1', gso })
    const port = rx.localAddress().port
    const port2 = rx2.localAddress().port
    // Runs GSO can merge (same size, same destination), a shorter tail, a size change, a
    // second destination in the middle, and per-datagram TOS breaking a run.
    const msgs: { data: Buffer; address: string; port: number; tos?: number }[] = []
    for (let i = 0; i < 200; i++) msgs.push({ data: payload(i, 300), address: '127.0.0.1', port })
    msgs.push({ data: payload(200, 17), address: '127.0.0.1', port })
    for (let i = 201; i < 230; i++) msgs.push({ data: payload(i, 1200), address: '127.0.0.1', port: i % 7 === 0 ? port2 : port })
    msgs.push({ data: payload(230, 1200), address: '127.0.0.1', port, tos: 4 })
    for (let i = 231; i < 300; i++) msgs.push({ data: payload(i, 64), address: '127.0.0.1', port })
    t.is(await tx.sendBatch(msgs), msgs.length)
    const mine = msgs.filter((m) => m.port === port)
    const other = msgs.filter((m) => m.port === port2)
    const got = await collect(rx, mine.length)
    const got2 = await collect(rx2, other.length)
    t.is(got.data.length, mine.length)
    t.is(got2.data.length, other.length)
    t.true(got.data.every((d, k) => d.equals(mine[k].data)), 'every datagram identical and in order')
    t.true(got2.data.every((d, k) => d.equals(other[k].data)))
    const s = tx.stats()
    t.is(s.datagramsSent, msgs.length)
    if (gso) {
      t.true(s.gsoSends > 0, 'runs went as GSO super-datagrams')
      t.true(s.sendSyscalls < 5)
    } else {
      t.is(s.gsoSends, 0)
    }
    t.is(s.gsoFallbacks, 0)
    t.is(rx.stats().kernelDrops, 0)
  })
}

test('GSO refused by the kernel: the socket falls back, counts it, and nothing is lost', async (t) => {
  const rx = await open(t, { address: '127.0.0.1', recvBufferSize: 1 << 20 })
  const tx = await open(t, { address: '127.0.0.1', gso: true })
  // Without UDP checksums the kernel refuses segmentation offload (EINVAL).
  tx.setSocketOption(SOL_SOCKET, SO_NO_CHECK, 1)
  t.is(tx.getSocketOption(SOL_SOCKET, SO_NO_CHECK), 1)
  const port = rx.localAddress().port
  const msgs = Array.from({ length: 100 }, (_, i) => ({ data: payload(i, 200), address: '127.0.0.1', port }))
  t.is(await tx.sendBatch(msgs), 100)
  const got = await collect(rx, 100)
  t.is(got.data.length, 100)
  t.true(got.data.every((d, i) => d.equals(msgs[i].data)))
  const s = tx.stats()
  t.is(s.gsoFallbacks, 1)
  t.is(s.gsoSends, 0)
  t.false(tx.capabilities().gso, 'GSO is off for this socket from now on')
  t.true(tx.capabilities().gsoSupported)
  t.is(await tx.sendBatch(msgs.slice(0, 10)), 10)
  t.is(tx.stats().gsoFallbacks, 1, 'no second fallback')
})

test('GRO: coalesced receives are split back into the datagrams sent (GSO sender, mixed sizes)', async (t) => {
  const rx = await open(t, { address: '127.0.0.1', gro: true, recvBufferSize: 4 << 20, maxDatagramSize: 2048 })
  // The sender binds a port the test chose (a free one, found by binding and closing), so the
  // expected source port does not come from the socket under test.
  let txPort = 0
  let tx: UdpSocket | undefined
  for (let attempt = 0; attempt < 5 && tx === undefined; attempt++) {
    txPort = await freePort()
    tx = await open(t, { address: '127.0.0.1', port: txPort, gso: true }).catch((e) => {
      if (e.code !== 'EADDRINUSE') throw e
      return undefined // taken by someone else meanwhile: pick another
    })
  }
  if (tx === undefined) return t.fail('no free port for the sender in 5 attempts')
  const port = rx.localAddress().port
  const sizes = [1000, 1000, 1000, 1000, 400, 1500, 1500, 1500, 64, 64, 64, 64, 64, 64, 7, 900]
  const msgs: { data: Buffer; address: string; port: number }[] = []
  for (let r = 0; r < 20; r++) for (const size of sizes) msgs.push({ data: payload(msgs.length, size), address: '127.0.0.1', port })
  t.is(await tx.sendBatch(msgs), msgs.length)
  const got = await collect(rx, msgs.length)
  t.is(got.data.length, msgs.length)
  t.true(got.data.every((d, i) => d.equals(msgs[i].data)), 'same datagrams, same order, same lengths')
  const s = rx.stats()
  t.true(s.groReceives > 0, 'the kernel did coalesce')
  t.is(s.datagramsReceived, msgs.length)
  t.is(s.truncated, 0)
  // The views split the coalesced receives back into what was sent: each length, each payload
  // at its offset, and the sender's address and port (the port the test bound it to).
  let k = 0
  for (const b of got.batches) {
    let offset = 0
    for (let i = 0; i < b.count; i++, k++) {
      const want = msgs[k].data
      t.is(b.lengths[i], want.length, `datagram ${k}: the length sent`)
      t.is(b.offsets[i], offset, `datagram ${k}: back to back in the buffer`)
      t.true(b.buffer.subarray(b.offsets[i], b.offsets[i] + b.lengths[i]).equals(want), `datagram ${k}: the bytes sent, at offsets[i]`)
      t.is(b.address(i), '127.0.0.1')
      t.is(b.port(i), txPort)
      t.false(b.truncated(i))
      offset += want.length
    }
    t.is(b.buffer.length, offset, 'the buffer holds exactly the payloads sent')
  }
  t.is(k, msgs.length)
})

test('kernel drop counter: received + dropped == sent, exactly', async (t) => {
  const rx = await open(t, { address: '127.0.0.1', recvBufferSize: 2048 })
  const tx = await open(t, { address: '127.0.0.1' })
  const port = rx.localAddress().port
  const N = 3000
  // Nobody consumes yet: the tiny buffer overflows and the kernel drops.
  for (let k = 0; k < N; k += 500) {
    await tx.sendBatch(Array.from({ length: 500 }, (_, i) => ({ data: payload(k + i, 100), address: '127.0.0.1', port })))
  }
  // Read until every datagram sent is accounted for (received or counted as dropped), bounded.
  const seqs: number[] = []
  const until = Date.now() + 20_000
  while (seqs.length + rx.stats().kernelDrops < N && Date.now() < until) {
    const b = await rx.recvBatch({ timeoutMs: 500 })
    for (let i = 0; i < b.count; i++) {
      t.true(b.data(i).equals(payload(b.data(i).readUInt32LE(0), 100)), 'an intact datagram')
      seqs.push(b.data(i).readUInt32LE(0))
    }
  }
  const s = rx.stats()
  t.true(seqs.length < N, 'some were dropped')
  t.is(new Set(seqs).size, seqs.length, 'none twice')
  t.true(seqs.every((q) => q >= 0 && q < N))
  t.is(s.kernelDrops, N - seqs.length, 'kernelDrops is exactly what was sent and not received')
  // A batch that arrives after the drops carries the cumulative counter too.
  await tx.sendBatch([{ data: 'after', address: '127.0.0.1', port }])
  const b = await rx.recvBatch({ timeoutMs: 5000 })
  t.is(b.count, 1)
  t.is(b.data(0).toString(), 'after')
  t.is(b.kernelDrops, N - seqs.length, 'the batch carries the same count: sent minus received')
})

test('pktinfo: each datagram carries the local address it was sent to and the interface', async (t) => {
  const rx = await open(t, { address: '0.0.0.0', pktinfo: true })
  const tx = await open(t, { address: '127.0.0.1' })
  const port = rx.localAddress().port
  await tx.sendBatch([{ data: 'a', address: '127.0.0.1', port }])
  const b = await rx.recvBatch({ timeoutMs: 5000 })
  t.is(b.count, 1)
  t.is(b.data(0).toString(), 'a')
  t.is(b.localAddress(0), '127.0.0.1', 'the address the test sent to')
  const loIndex = Number(readFileSync('/sys/class/net/lo/ifindex', 'utf8'))
  t.is(b.interfaceIndex(0), loIndex, 'the index of lo, where the test sent it')
  // Without the option nothing is reported.
  const plain = await open(t, { address: '0.0.0.0' })
  await tx.sendBatch([{ data: 'b', address: '127.0.0.1', port: plain.localAddress().port }])
  const p = await plain.recvBatch({ timeoutMs: 5000 })
  t.is(p.localAddress(0), undefined)
  t.is(p.interfaceIndex(0), undefined)
})

test('pktinfo IPv6 and dual-stack: local addresses, and replies from a chosen source address', async (t) => {
  const rx = await open(t, { address: '::', ipv6Only: false, pktinfo: true })
  const port = rx.localAddress().port
  const tx6 = await open(t, { address: '::1' })
  const tx4 = await open(t, { address: '127.0.0.1' })
  await tx6.sendBatch([{ data: 'six', address: '::1', port }])
  await tx4.sendBatch([{ data: 'four', address: '127.0.0.1', port }])
  const got = new Map<string, string | undefined>()
  const until = Date.now() + 5000
  while (got.size < 2 && Date.now() < until) {
    const b = await rx.recvBatch({ timeoutMs: 500 })
    for (let i = 0; i < b.count; i++) got.set(b.data(i).toString(), b.localAddress(i))
  }
  t.is(got.get('six'), '::1')
  t.true(['127.0.0.1', '::ffff:127.0.0.1'].includes(got.get('four') ?? ''), `got ${got.get('four')}`)
  // The server replies from the address it was reached on (sourceAddress), to both peers.
  await rx.sendBatch([
    { data: 'r6', address: '::1', port: tx6.localAddress().port, sourceAddress: '::1' },
    { data: 'r4', address: '127.0.0.1', port: tx4.localAddress().port, sourceAddress: '127.0.0.1' },
  ])
  const r6 = await tx6.recvBatch({ timeoutMs: 5000 })
  const r4 = await tx4.recvBatch({ timeoutMs: 5000 })
  t.is(r6.data(0).toString(), 'r6')
  t.is(r6.address(0), '::1')
  t.is(r4.data(0).toString(), 'r4')
  t.is(r4.address(0), '127.0.0.1')
  const tx4only = await open(t, { address: '127.0.0.1' })
  t.throws(() => tx4only.trySendBatch([{ data: 'x', address: '127.0.0.1', port, sourceAddress: '::1' }]), {
    instanceOf: TypeError,
    message: /sourceAddress/,
  })
})

test('timestamps: per-datagram kernel receive time in nanoseconds', async (t) => {
  const rx = await open(t, { address: '127.0.0.1', timestamps: true })
  const tx = await open(t, { address: '127.0.0.1' })
  const before = BigInt(Date.now() - 1000) * 1_000_000n
  await tx.sendBatch(Array.from({ length: 5 }, (_, i) => ({ data: payload(i, 10), address: '127.0.0.1', port: rx.localAddress().port })))
  const got = await collect(rx, 5)
  const after = BigInt(Date.now() + 1000) * 1_000_000n
  t.is(got.data.length, 5)
  t.true(got.data.every((d, i) => d.equals(payload(i, 10))), 'the datagrams sent, in order')
  for (const b of got.batches) {
    t.true(b.timestamps instanceof BigUint64Array)
    for (let i = 0; i < b.count; i++) {
      const ts = b.timestamp(i)
      t.is(typeof ts, 'bigint')
      // Between the wall-clock times taken before sending and after receiving (+-1 s for
      // clock granularity): a real receive time, not zero or garbage.
      t.true(ts! >= before && ts! <= after, `a wall-clock time around now (${ts})`)
      t.is(b.timestamps[i], ts!)
    }
  }
})

for (const family of ['IPv4', 'IPv6'] as const) {
  test(`TOS / ECN (${family}): per socket and per datagram, read back per datagram`, async (t) => {
    const lo = family === 'IPv4' ? '127.0.0.1' : '::1'
    const rx = await open(t, { address: lo, recvTos: true })
    const tx = await open(t, { address: lo, tos: 0x20 })
    const port = rx.localAddress().port
    await tx.sendBatch([
      { data: 'socket default', address: lo, port },
      { data: 'ect0', address: lo, port, tos: 0xb8 | 2 },
      { data: 'ce', address: lo, port, tos: 3 },
    ])
    const got = new Map<string, [number | undefined, number | undefined]>()
    const until = Date.now() + 5000
    while (got.size < 3 && Date.now() < until) {
      const b = await rx.recvBatch({ timeoutMs: 500 })
      for (let i = 0; i < b.count; i++) got.set(b.data(i).toString(), [b.tos(i), b.ecn(i)])
    }
    t.deepEqual(got.get('socket default'), [0x20, 0])
    t.deepEqual(got.get('ect0'), [0xba, 2])
    t.deepEqual(got.get('ce'), [3, 3])
    tx.setTOS(0x48)
    await tx.sendBatch([{ data: 'changed', address: lo, port }])
    const b = await rx.recvBatch({ timeoutMs: 5000 })
    t.is(b.tos(0), 0x48)
    t.throws(() => tx.setTOS(256), { instanceOf: RangeError })
    t.throws(() => tx.trySendBatch([{ data: 'x', address: lo, port, tos: -1 }]), { instanceOf: RangeError, message: /tos/ })
  })
}

test('IPv4 multicast on the loopback interface: join, receive, leave', async (t) => {
  const group = '239.255.42.99'
  const rx = await open(t, { address: '0.0.0.0', reuseAddr: true })
  // IP_MULTICAST_ALL off: otherwise a socket bound to 0.0.0.0 also receives every group some
  // other socket on the host joined on lo (another test process running this very test), and
  // 'nothing arrives once the group is left' fails for a reason outside this socket.
  const IPPROTO_IP = 0
  const IP_MULTICAST_ALL = 49
  rx.setSocketOption(IPPROTO_IP, IP_MULTICAST_ALL, 0)
  t.is(rx.getSocketOption(IPPROTO_IP, IP_MULTICAST_ALL), 0)
  const port = rx.localAddress().port
  rx.addMembership(group, '127.0.0.1')
  const tx = await open(t, { address: '127.0.0.1' })
  tx.setMulticastInterface('127.0.0.1')
  tx.setMulticastTTL(0) // never leaves the host
  tx.setMulticastLoopback(true)
  t.true(tx.getMulticastLoopback())
  await tx.sendBatch([{ data: 'to the group', address: group, port }])
  const b = await rx.recvBatch({ timeoutMs: 5000 })
  t.is(b.count, 1)
  t.is(b.data(0).toString(), 'to the group')
  rx.dropMembership(group, '127.0.0.1')
  await tx.sendBatch([{ data: 'after leaving', address: group, port }])
  const after = await rx.recvBatch({ timeoutMs: 300 })
  t.is(after.count, 0, 'nothing arrives once the group is left')
  // Source-specific: only the named source is delivered.
  rx.addSourceSpecificMembership('127.0.0.1', '232.1.2.3', '127.0.0.1')
  await tx.sendBatch([{ data: 'ssm', address: '232.1.2.3', port }])
  const ssm = await rx.recvBatch({ timeoutMs: 5000 })
  t.is(ssm.count, 1)
  rx.dropSourceSpecificMembership('127.0.0.1', '232.1.2.3', '127.0.0.1')
  t.throws(() => rx.addMembership('127.0.0.1'), { instanceOf: TypeError, message: /multicast/ })
  t.throws(() => rx.addMembership('not an ip'), { instanceOf: TypeError })
})

test('IPv6 multicast: the kernel accepts join, leave and source-specific join on lo', async (t) => {
  // The sandbox's lo has no MULTICAST flag, so IPv6 multicast is not delivered here; the
  // membership calls themselves are real setsockopt calls the kernel must accept.
  const rx = await open(t, { address: '::', ipv6Only: true })
  t.notThrows(() => rx.addMembership('ff02::4242', 'lo'))
  t.notThrows(() => rx.dropMembership('ff02::4242', 'lo'))
  t.notThrows(() => rx.addSourceSpecificMembership('::1', 'ff3e::4242', '1'))
  t.notThrows(() => rx.dropSourceSpecificMembership('::1', 'ff3e::4242', '1'))
  const err = t.throws<NodeJS.ErrnoException>(() => rx.dropMembership('ff02::4242', 'lo'))
  t.is(err?.code, 'EADDRNOTAVAIL', 'leaving a group not joined is an errno error')
  rx.setMulticastTTL(0)
  rx.setMulticastInterface('lo')
})

test('broadcast flag: refused without SO_BROADCAST, settable and readable', async (t) => {
  const s = await open(t, { address: '127.0.0.1' })
  t.false(s.getBroadcast())
  const err = t.throws<NodeJS.ErrnoException>(() => s.trySendBatch([{ data: 'x', address: '127.255.255.255', port: 9 }]))
  t.is(err?.code, 'EACCES')
  s.setBroadcast(true)
  t.true(s.getBroadcast())
  const b = await open(t, { address: '127.0.0.1', broadcast: true })
  t.true(b.getBroadcast())
})

test('forceBufferSize: granted sizes are reported; a capped request warns instead of failing', async (t) => {
  const s = await open(t, { address: '127.0.0.1', recvBufferSize: 1 << 20, forceBufferSize: true })
  const sizes = s.bufferSizes()
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'))
  if (sizes.recvForced) {
    t.is(sizes.recvBufferSize, 2 << 20, 'SO_RCVBUFFORCE: the request (doubled), past rmem_max')
  } else {
    t.is(sizes.recvBufferSize, Math.min(2 << 20, 2 * rmemMax), 'no CAP_NET_ADMIN: SO_RCVBUF, capped by rmem_max')
  }
  const warnings: string[] = []
  const onWarning = (w: Error & { code?: string }) => warnings.push(String(w.code))
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const huge = await open(t, { address: '127.0.0.1', recvBufferSize: 0x7ffffff0 })
  await new Promise((r) => setTimeout(r, 50))
  t.true(huge.bufferSizes().recvBufferSize < 0x7ffffff0, 'the kernel capped it')
  t.true(warnings.includes('UDP_MMSG_BUFFER_CAPPED'))
})
