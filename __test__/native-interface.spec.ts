// The native interface lib/ codes against (src/error.rs, src/native/dispatch.rs): structured
// errors (an OS error, argument errors with and without a table index, the closed error),
// the event kinds, and batchLayout() checked against what a received batch really holds.
import test from 'ava'
import native from '../index.js'
import { UdpSocket, V4, portOf, waitUntil } from './helpers.js'
import { openSocket as openNative, packInto, PACK_ORDER } from '../lib/native.js'
import { normalize } from '../lib/options.js'

const { batchLayout, EVENT_BATCH, EVENT_BATCH_COMPACT, EVENT_BATCH_LANDED, EVENT_BATCH_COMPACT_LANDED, EVENT_ERROR, EVENT_WRITABLE } = native as any

/** A dispatch event as lib/receive.ts reads it: a landed batch (src/native/landing.rs) copied
 * out of the landing buffer at once, under the kind of its layout. */
function event(kind: number, data: Uint8Array | null, count: number, kernelDrops: number, errno?: number) {
  if (kind === EVENT_BATCH_LANDED || kind === EVENT_BATCH_COMPACT_LANDED) {
    const bytes = Buffer.from((data as Uint8Array).subarray(0, errno as number))
    return { kind: kind === EVENT_BATCH_LANDED ? EVENT_BATCH : EVENT_BATCH_COMPACT, data: bytes, count, kernelDrops, landed: true }
  }
  return { kind, data, count, kernelDrops, landed: false }
}
// Sockets are opened as lib/ opens them: the options packed (src/native/packed_options.rs).
const openSocket = openNative as unknown as (options: Record<string, unknown>, dispatch: (...args: any[]) => void) => any

function options(over: Record<string, unknown> = {}) {
  return {
    address: V4,
    port: 0,
    ipv6: false,
    reuseAddr: false,
    reusePort: false,
    broadcast: false,
    forceBufferSize: false,
    batchSize: 16,
    maxDatagramSize: 2048,
    maxPendingBatches: 4,
    coalesceMicros: 0,
    portable: false,
    gso: 0,
    gro: false,
    pktinfo: false,
    timestamps: false,
    recvTos: false,
    ...over,
  }
}

function thrown(fn: () => unknown): any {
  try {
    fn()
  } catch (e) {
    return e
  }
  return undefined
}

test('an OS error is an Error with code UDP_MMSG_OS, errno, syscall and detail', (t) => {
  const busy = UdpSocket.bindSync({ address: V4, port: 0 })
  t.teardown(() => busy.close())
  const err = thrown(() => openSocket(options({ port: portOf(busy) }), () => {}))
  t.true(err instanceof Error, String(err))
  t.is(err.code, 'UDP_MMSG_OS')
  t.is(err.errno, 98) // EADDRINUSE on Linux: positive, as the contract says
  t.is(err.syscall, 'bind')
  t.is(typeof err.detail, 'string')
})

test('argument errors carry code UDP_MMSG_ARG, argument, reason, and index only for table entries', (t) => {
  const err = thrown(() => openSocket(options({ batchSize: 0 }), () => {}))
  t.true(err instanceof Error, String(err))
  t.is(err.code, 'UDP_MMSG_ARG')
  t.is(err.argument, 'batchSize')
  t.is(err.index, undefined)
  t.is(typeof err.reason, 'string')
  t.true(err.reason.length > 0)

  const s = openSocket(options(), () => {})
  t.teardown(() => s.close())
  const data = Buffer.from('ab')
  const lens = Uint32Array.of(1, 1)
  const dest = Uint32Array.of(0, 1)
  const e2 = thrown(() => s.send(data, lens, null, dest, [V4, 'not-an-ip'], [9, 9], 0, 0, null, null, null))
  t.is(e2.code, 'UDP_MMSG_ARG')
  t.is(e2.argument, 'destination')
  t.is(e2.index, 1)
  t.is(typeof e2.reason, 'string')
  const e3 = thrown(() => s.send(data, lens, null, dest, [V4, V4], [9, 9], 0, 0, Uint32Array.of(0, 2), [V4, 'nope'], null))
  t.is(e3.code, 'UDP_MMSG_ARG')
  t.is(e3.argument, 'source')
  t.is(e3.index, 1)
})

test('use after close throws code UDP_MMSG_CLOSED', (t) => {
  const s = openSocket(options(), () => {})
  s.close()
  const err = thrown(() => s.localAddress())
  t.true(err instanceof Error, String(err))
  t.is(err.code, 'UDP_MMSG_CLOSED')
  t.is(thrown(() => s.setReading(true)).code, 'UDP_MMSG_CLOSED')
})

test('the packed options: optionSlots() plus the three side arguments are exactly the NativeOptions keys', (t) => {
  const slots: string[] = (native as any).optionSlots()
  const { native: normalized } = normalize({
    type: 'udp6',
    address: '::1',
    port: 0,
    connect: { address: '::1', port: 9 },
    ttl: 9,
    fd: undefined,
  })
  const keys = Object.keys(normalized).sort()
  t.deepEqual([...slots, 'address', 'connectAddress', 'steering'].sort(), keys)
  t.is(new Set(slots).size, slots.length)
})

test('packInto writes each option to its own slot, in the order optionSlots() gives', (t) => {
  t.deepEqual([...PACK_ORDER], (native as any).optionSlots())
  const { native: base } = normalize({ type: 'udp6', address: '::1', port: 0 })
  const before = new Float64Array(PACK_ORDER.length)
  packInto(before, base)
  for (let i = 0; i < PACK_ORDER.length; i++) {
    const name = PACK_ORDER[i]
    const was = (base as any)[name]
    const changed = { ...base, [name]: typeof was === 'boolean' ? !was : 12345 }
    const after = new Float64Array(PACK_ORDER.length)
    packInto(after, changed as any)
    const moved = [...after.keys()].filter((k) => !Object.is(after[k], before[k]))
    t.deepEqual(moved, [i], `${name} lands in slot ${i} only`)
  }
})

test('a malformed packed options array is an argument error naming the option, never a crash', (t) => {
  const { NativeSocket } = native as any
  const slots: string[] = (native as any).optionSlots()
  const good = () => {
    const a = new Float64Array(slots.length).fill(0)
    for (const k of ['ipv6Only', 'recvBufferSize', 'sendBufferSize', 'ttl', 'connectPort', 'tos', 'fd']) a[slots.indexOf(k)] = NaN
    a[slots.indexOf('batchSize')] = 16
    a[slots.indexOf('maxDatagramSize')] = 2048
    a[slots.indexOf('maxPendingBatches')] = 4
    return a
  }
  const s = new NativeSocket(V4, good(), null, null, () => {})
  s.close()
  const short = thrown(() => new NativeSocket(V4, good().subarray(1), null, null, () => {}))
  t.is(short.code, 'UDP_MMSG_ARG')
  t.is(short.argument, 'options')
  for (const [name, value] of [
    ['batchSize', -1],
    ['gro', 2],
    ['port', 1.5],
    ['port', Infinity],
  ] as const) {
    const a = good()
    a[slots.indexOf(name)] = value
    const e = thrown(() => new NativeSocket(V4, a, null, null, () => {}))
    t.is(e.code, 'UDP_MMSG_ARG', `${name} = ${value}`)
    t.is(e.argument, name)
  }
})

test('event kinds are six distinct numbers', (t) => {
  const kinds = [EVENT_BATCH, EVENT_BATCH_COMPACT, EVENT_BATCH_LANDED, EVENT_BATCH_COMPACT_LANDED, EVENT_ERROR, EVENT_WRITABLE]
  t.true(kinds.every((k) => typeof k === 'number'))
  t.is(new Set(kinds).size, 6)
})

test('a small batch lands in the landing buffer (its length in the errno slot); a large one comes in a buffer of its own', async (t) => {
  const raw: any[][] = []
  const rx = openSocket(options({ maxDatagramSize: 65507 }), (...args: any[]) => raw.push(args))
  t.teardown(() => rx.close())
  rx.setReading(true)
  const tx = UdpSocket.bindSync({ address: V4, port: 0 })
  t.teardown(() => tx.close())
  const port = rx.localAddress().port
  tx.trySendBatch([{ data: Buffer.from('small'), address: V4, port }])
  t.true(await waitUntil(() => raw.length >= 1, 10_000))
  tx.trySendBatch([{ data: Buffer.alloc(20_000, 7), address: V4, port }])
  t.true(await waitUntil(() => raw.length >= 2, 10_000))
  const [small, large] = raw
  const L = batchLayout()
  t.is(small[0], EVENT_BATCH_COMPACT_LANDED)
  t.true(small[1] instanceof Uint8Array && small[1].length >= small[4])
  t.is(small[4], L.compactBytesPerDatagram + 5, 'the batch length')
  t.is(large[0], EVENT_BATCH_COMPACT)
  t.true(Buffer.isBuffer(large[1]))
  t.is(large[1].length, L.compactBytesPerDatagram + 20_000)
})

test('send returns how many datagrams went; lastSendError() says which error stopped it early', (t) => {
  const rx = UdpSocket.bindSync({ address: V4, port: 0 })
  t.teardown(() => rx.close())
  const s = openSocket(options(), () => {})
  t.teardown(() => s.close())
  const port = portOf(rx)
  const lens = Uint32Array.of(10, 70_000, 10) // the second is too big for UDP: EMSGSIZE
  const data = Buffer.alloc(70_020, 1)
  t.is(s.send(data, lens, null, null, [V4], [port], 0, 3, null, null, null), 1)
  const err = s.lastSendError()
  t.is(err.errno, 90) // EMSGSIZE on Linux
  t.is(typeof err.syscall, 'string')
  t.true(err.syscall.startsWith('send'), err.syscall)
  t.is(s.send(data.subarray(0, 20), Uint32Array.of(10, 10), null, null, [V4], [port], 0, 2, null, null, null), 2)
  t.is(s.lastSendError(), null, 'a send that completed leaves no error behind')
})

test('sendOne sends one datagram of exactly its bytes; its refusals are the errors send gives', async (t) => {
  const rx = UdpSocket.bindSync({ address: V4, port: 0 })
  t.teardown(() => rx.close())
  const got: Buffer[] = []
  rx.onBatch((b) => {
    for (let i = 0; i < b.count; i++) got.push(Buffer.from(b.data(i)))
  })
  const s = openSocket(options(), () => {})
  const port = portOf(rx)
  t.is(s.sendOne(Buffer.from('hello'), V4, port), 1)
  t.is(s.sendOne(Buffer.from('hello world').subarray(6), V4, port), 1, 'a view sends only its own bytes')
  t.is(s.sendOne(new Uint8Array(0), V4, port), 1, 'an empty datagram')
  t.true(await waitUntil(() => got.length === 3))
  t.deepEqual(got.map(String), ['hello', 'world', ''])
  const bad = thrown(() => s.sendOne(Buffer.from('x'), 'not-an-ip', port))
  t.is(bad.code, 'UDP_MMSG_ARG')
  t.is(bad.argument, 'destination')
  t.is(bad.index, 0)
  t.is(thrown(() => s.sendOne(Buffer.from('x'), V4, 70_000)).code, 'UDP_MMSG_ARG')
  const none = thrown(() => s.sendOne(Buffer.from('x'), null, 0))
  t.is(none.code, 'UDP_MMSG_ARG', 'an unconnected socket needs a destination')
  t.is(none.argument, 'destination')
  t.true(thrown(() => s.sendOne('x' as any, V4, port)) instanceof Error, 'a string is refused, not sent')
  t.is(s.sendOne(Buffer.alloc(70_000), V4, port), 0, 'too big for UDP: nothing sent')
  t.is(s.lastSendError().errno, 90) // EMSGSIZE on Linux
  s.close()
  t.is(thrown(() => s.sendOne(Buffer.from('x'), V4, port)).code, 'UDP_MMSG_CLOSED')
})

test('an error event passes kind, null data, errno and syscall positionally', async (t) => {
  // A datagram to a port nobody listens on: the ICMP port-unreachable comes back as an
  // ECONNREFUSED receive error on the connected sender.
  const gone = UdpSocket.bindSync({ address: V4, port: 0 })
  const deadPort = portOf(gone)
  gone.close()
  const events: unknown[][] = []
  const s = openSocket(options({ connectAddress: V4, connectPort: deadPort }), (...args: unknown[]) => events.push(args))
  t.teardown(() => s.close())
  s.setReading(true)
  t.is(s.send(Buffer.from('x'), Uint32Array.of(1), null, null, [], [], 0, 1, null, null, null), 1)
  t.true(await waitUntil(() => events.length > 0, 10_000), 'an error event came')
  const [kind, data, count, drops, errno, syscall] = events[0]
  t.is(kind, EVENT_ERROR)
  t.is(data, null)
  t.is(count, 0)
  t.is(drops, -1)
  t.is(errno, 111) // ECONNREFUSED on Linux
  t.is(typeof syscall, 'string')
})

test('batchLayout() says where a received batch keeps each field', async (t) => {
  const L = batchLayout()
  for (const k of [
    'bytesPerDatagram',
    'timestamps',
    'lengths',
    'offsets',
    'scopes',
    'ifindexes',
    'ports',
    'families',
    'flags',
    'tos',
    'localFamilies',
    'addresses',
    'localAddresses',
    'flagTruncated',
    'flagLocal',
    'flagTimestamp',
    'flagTos',
  ]) {
    t.is(typeof L[k], 'number', k)
  }
  const events: any[] = []
  const rx = openSocket(
    options({ pktinfo: true, timestamps: true, recvTos: true }),
    (kind: number, data: Uint8Array | null, count: number, kernelDrops: number, errno?: number) =>
      events.push(event(kind, data, count, kernelDrops, errno)),
  )
  t.teardown(() => rx.close())
  rx.setReading(true)
  const tx = UdpSocket.bindSync({ address: V4, port: 0 })
  t.teardown(() => tx.close())
  const lengths = [1, 300, 17]
  const port = rx.localAddress().port
  await tx.sendBatch(lengths.map((n, i) => ({ data: Buffer.alloc(n, 65 + i), address: V4, port })))
  const count = () => events.filter((e) => e.kind === EVENT_BATCH).reduce((a, e) => a + e.count, 0)
  t.true(await waitUntil(() => count() >= lengths.length, 10_000), `received ${count()}`)

  let seen = 0
  for (const e of events) {
    t.is(e.kind, EVENT_BATCH, 'timestamps, TOS and local addresses need the full layout')
    const n: number = e.count
    const b: Buffer = e.data
    const at = (section: number) => b.byteOffset + section * n
    const lens = new Uint32Array(b.buffer, at(L.lengths), n)
    const offs = new Uint32Array(b.buffer, at(L.offsets), n)
    const ports = new Uint16Array(b.buffer, at(L.ports), n)
    const ifindexes = new Uint32Array(b.buffer, at(L.ifindexes), n)
    const stamps = new BigUint64Array(b.buffer, at(L.timestamps), n)
    const payloads = b.subarray(L.bytesPerDatagram * n)
    for (let i = 0; i < n; i++, seen++) {
      t.is(lens[i], lengths[seen], `length of datagram ${seen}`)
      t.true(payloads.subarray(offs[i], offs[i] + lens[i]).equals(Buffer.alloc(lengths[seen], 65 + seen)), `payload ${seen}`)
      t.is(ports[i], portOf(tx))
      t.is(b[L.families * n + i], 4)
      t.deepEqual([...b.subarray(L.addresses * n + 16 * i, L.addresses * n + 16 * i + 4)], [127, 0, 0, 1])
      const flags = b[L.flags * n + i]
      t.is(flags & L.flagTruncated, 0)
      t.not(flags & L.flagLocal, 0, 'pktinfo delivered')
      t.not(flags & L.flagTimestamp, 0, 'timestamp delivered')
      t.not(flags & L.flagTos, 0, 'tos delivered')
      t.is(b[L.tos * n + i], 0)
      t.is(b[L.localFamilies * n + i], 4)
      t.deepEqual([...b.subarray(L.localAddresses * n + 16 * i, L.localAddresses * n + 16 * i + 4)], [127, 0, 0, 1])
      t.true(ifindexes[i] > 0, 'loopback has an interface index')
      t.true(stamps[i] > 0n, 'a receive time')
      t.is(new Uint32Array(b.buffer, at(L.scopes), n)[i], 0)
    }
  }
  t.is(seen, lengths.length)
})

/** Opens a native socket with `over`, reading, and collects its events. */
function collecting(t: any, over: Record<string, unknown>) {
  const events: any[] = []
  const rx = openSocket(options(over), (kind: number, data: Uint8Array | null, count: number, drops: number, errno?: number) =>
    events.push(event(kind, data, count, drops, errno)),
  )
  t.teardown(() => rx.close())
  rx.setReading(true)
  const received = () => events.reduce((a, e) => a + e.count, 0)
  return { rx, events, received }
}

test('batchLayout() compact fields say where a batch from IPv4 sources without extras keeps each field', async (t) => {
  const L = batchLayout()
  for (const k of ['compactBytesPerDatagram', 'compactLengths', 'compactOffsets', 'compactAddresses', 'compactPorts', 'compactFamilies', 'compactFlags']) {
    t.is(typeof L[k], 'number', k)
  }
  const { rx, events, received } = collecting(t, { batchSize: 64 })
  const tx = UdpSocket.bindSync({ address: V4, port: 0 })
  t.teardown(() => tx.close())
  const tx2 = UdpSocket.bindSync({ address: '127.0.0.2', port: 0 })
  t.teardown(() => tx2.close())
  const lengths = [5, 0, 2100, 64]
  const port = rx.localAddress().port
  // 2100 bytes is longer than maxDatagramSize (2048): cut and flagged.
  const from = (i: number) => (i % 2 === 0 ? tx : tx2)
  for (let i = 0; i < lengths.length; i++) from(i).trySendBatch([{ data: Buffer.alloc(lengths[i], 97 + i), address: V4, port }])
  t.true(await waitUntil(() => received() >= lengths.length, 10_000), `received ${received()}`)
  let seen = 0
  for (const e of events) {
    t.is(e.kind, EVENT_BATCH_COMPACT)
    const n: number = e.count
    const b: Buffer = e.data
    const at = (section: number) => b.byteOffset + section * n
    const lens = new Uint32Array(b.buffer, at(L.compactLengths), n)
    const offs = new Uint32Array(b.buffer, at(L.compactOffsets), n)
    const ports = new Uint16Array(b.buffer, at(L.compactPorts), n)
    const payloads = b.subarray(L.compactBytesPerDatagram * n)
    for (let i = 0; i < n; i++, seen++) {
      const kept = Math.min(lengths[seen], 2048)
      t.is(lens[i], kept, `length of datagram ${seen}`)
      t.true(payloads.subarray(offs[i], offs[i] + lens[i]).equals(Buffer.alloc(kept, 97 + seen)), `payload ${seen}`)
      t.is(ports[i], portOf(from(seen)))
      t.is(b[L.compactFamilies * n + i], 4)
      t.deepEqual([...b.subarray(L.compactAddresses * n + 4 * i, L.compactAddresses * n + 4 * i + 4)], [127, 0, 0, seen % 2 === 0 ? 1 : 2])
      t.is(b[L.compactFlags * n + i], lengths[seen] > 2048 ? L.flagTruncated : 0)
    }
    t.is(b.length, L.compactBytesPerDatagram * n + lens.reduce((a, x) => a + x, 0), 'nothing after the payloads')
  }
  t.is(seen, lengths.length)
})

test('an IPv6 source, or an IPv4 one with a timestamp, makes a full batch', async (t) => {
  const v6 = collecting(t, { address: '::1', ipv6: true })
  const tx6 = UdpSocket.bindSync({ address: '::1', port: 0 })
  t.teardown(() => tx6.close())
  tx6.trySendBatch([{ data: Buffer.from('six'), address: '::1', port: v6.rx.localAddress().port }])
  const v4 = collecting(t, { timestamps: true })
  const tx4 = UdpSocket.bindSync({ address: V4, port: 0 })
  t.teardown(() => tx4.close())
  tx4.trySendBatch([{ data: Buffer.from('four'), address: V4, port: v4.rx.localAddress().port }])
  t.true(await waitUntil(() => v6.received() >= 1 && v4.received() >= 1, 10_000))
  t.deepEqual(
    [...v6.events, ...v4.events].map((e) => e.kind),
    [EVENT_BATCH, EVENT_BATCH],
  )
  const L = batchLayout()
  t.is(v6.events[0].data.length, L.bytesPerDatagram + 3)
})
