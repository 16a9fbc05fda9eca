// The native interface lib/ codes against (src/error.rs, src/native/dispatch.rs): structured
// errors (an OS error, argument errors with and without a table index, the closed error),
// the event kinds, and batchLayout() checked against what a received batch really holds.
import test from 'ava'
import native from '../index.js'
import { UdpSocket, V4, portOf, waitUntil } from './helpers.js'

const { NativeSocket, batchLayout, EVENT_BATCH, EVENT_ERROR, EVENT_WRITABLE } = native as any

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
  const err = thrown(() => new NativeSocket(options({ port: portOf(busy) }), () => {}))
  t.true(err instanceof Error, String(err))
  t.is(err.code, 'UDP_MMSG_OS')
  t.is(err.errno, 98) // EADDRINUSE on Linux: positive, as the contract says
  t.is(err.syscall, 'bind')
  t.is(typeof err.detail, 'string')
})

test('argument errors carry code UDP_MMSG_ARG, argument, reason, and index only for table entries', (t) => {
  const err = thrown(() => new NativeSocket(options({ batchSize: 0 }), () => {}))
  t.true(err instanceof Error, String(err))
  t.is(err.code, 'UDP_MMSG_ARG')
  t.is(err.argument, 'batchSize')
  t.is(err.index, undefined)
  t.is(typeof err.reason, 'string')
  t.true(err.reason.length > 0)

  const s = new NativeSocket(options(), () => {})
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
  const s = new NativeSocket(options(), () => {})
  s.close()
  const err = thrown(() => s.localAddress())
  t.true(err instanceof Error, String(err))
  t.is(err.code, 'UDP_MMSG_CLOSED')
  t.is(thrown(() => s.setReading(true)).code, 'UDP_MMSG_CLOSED')
})

test('event kinds are three distinct numbers', (t) => {
  t.deepEqual([EVENT_BATCH, EVENT_ERROR, EVENT_WRITABLE].map((k) => typeof k), ['number', 'number', 'number'])
  t.is(new Set([EVENT_BATCH, EVENT_ERROR, EVENT_WRITABLE]).size, 3)
})

test('batchLayout() says where a received batch keeps each field', async (t) => {
  const L = batchLayout()
  for (const k of ['bytesPerDatagram', 'timestamps', 'lengths', 'offsets', 'scopes', 'ifindexes', 'ports', 'families', 'flags', 'tos', 'localFamilies', 'addresses', 'localAddresses', 'flagTruncated', 'flagLocal', 'flagTimestamp', 'flagTos']) {
    t.is(typeof L[k], 'number', k)
  }
  const events: any[] = []
  const rx = new NativeSocket(options({ pktinfo: true, timestamps: true, recvTos: true }), (e: any) => events.push(e))
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
    t.is(e.kind, EVENT_BATCH)
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
