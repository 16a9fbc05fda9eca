// Reliability: property-based fuzzing with fast-check. Fixed seeds (printed, and overridable
// with FUZZ_SEED=<n>) and bounded numRuns keep every property well under 30 s.
//  - random batches (sizes 0..1500, 1..N datagrams, scatter/gather splits, a few destinations,
//    sendBatch or trySendBatch, GSO on/off, portable on/off) round-trip exactly over loopback
//  - random call sequences on a socket pair never crash, hang or leave a promise unsettled
//  - the native send entry point, fed arrays that disagree with each other, answers with an
//    error or a result and never crashes (the JS layer is bypassed on purpose)
// Only the test's own loopback sockets are ever sent to.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import * as assert from 'node:assert/strict'
import * as net from 'node:net'
import fc from 'fast-check'
import { UdpSocket } from '../lib/index.js'
import type { Batch, OutgoingMessage } from '../lib/index.js'
import { V4, V6, owned, ownedBaseline, portOf, settleOwned, sleep, ticks, waitUntil } from './helpers.js'

const BASE_SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : 20261123

function params(t: ExecutionContext, offset: number, numRuns: number) {
  const seed = BASE_SEED + offset
  t.log(`fast-check seed ${seed} (rerun with FUZZ_SEED=${BASE_SEED}), numRuns ${numRuns}`)
  return { seed, numRuns, endOnFailure: true, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: true }
}

/** Runs a fast-check property and turns its report (seed, counterexample) into an ava failure. */
async function check(t: ExecutionContext, prop: fc.IAsyncProperty<any>, p: ReturnType<typeof params>) {
  const details = await fc.check(prop, p)
  if (details.failed) {
    t.fail(fc.defaultReportMessage(details) || 'property failed')
  } else {
    t.pass(`${details.numRuns} runs`)
  }
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms (hang)`)), ms)
    }),
  ])
}

// ---- round trips -----------------------------------------------------------------------------

interface FuzzMessage {
  parts: Uint8Array[]
  /** How the parts are given: 0 = one Buffer, 1 = the array of parts, 2 = a Uint8Array, 3 = a DataView */
  form: number
  dest: number
}

/** Payloads of 0..1500 bytes: uniformly spread sizes ('max'), plus the edges. */
const payloadArb = fc.oneof(
  { arbitrary: fc.uint8Array({ minLength: 0, maxLength: 1500, size: 'max' }), weight: 4 },
  { arbitrary: fc.constantFrom(0, 1, 1499, 1500).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })), weight: 1 },
)

const partsArb = payloadArb
  .chain((bytes) =>
    fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 4, size: 'max' }).map((cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b)
      const parts: Uint8Array[] = []
      let prev = 0
      for (const c of points) {
        parts.push(bytes.subarray(prev, c))
        prev = c
      }
      parts.push(bytes.subarray(prev))
      return parts
    }),
  )

const messageArb = fc.record({ parts: partsArb, form: fc.integer({ min: 0, max: 3 }), dest: fc.integer({ min: 0, max: 2 }) })

const batchArb = fc.record({
  messages: fc.array(messageArb, { minLength: 1, maxLength: 48, size: 'max' }),
  method: fc.constantFrom('sendBatch', 'trySendBatch'),
  gso: fc.constantFrom<'auto' | boolean>('auto', false),
  portable: fc.boolean(),
  chunks: fc.integer({ min: 1, max: 3 }),
})

function concat(parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)))
}

function toData(m: FuzzMessage): OutgoingMessage['data'] {
  const whole = concat(m.parts)
  switch (m.form) {
    case 0:
      return whole
    case 1:
      return m.parts
    case 2:
      return new Uint8Array(whole)
    default:
      return new DataView(whole.buffer, whole.byteOffset, whole.byteLength)
  }
}

/** Datagrams verified byte for byte by the round-trip properties (logged, and checked > 0). */
const verified = { datagrams: 0, bytes: 0, runs: 0 }

async function roundTrip(family: 4 | 6, input: any) {
  const addr = family === 6 ? V6 : V4
  const socks: UdpSocket[] = []
  try {
    const rx = [0, 1, 2].map(() => UdpSocket.bindSync({ address: addr, port: 0, recvBufferSize: 1 << 20, maxDatagramSize: 1500 }))
    socks.push(...rx)
    const tx = UdpSocket.bindSync({ address: addr, port: 0, gso: input.portable ? 'auto' : input.gso, portable: input.portable })
    socks.push(tx)
    const got: Buffer[][] = [[], [], []]
    const problems: string[] = []
    rx.forEach((s, k) =>
      s.onBatch((b: Batch) => {
        for (let i = 0; i < b.count; i++) {
          got[k].push(Buffer.from(b.data(i)))
          if (b.truncated(i)) problems.push(`rx${k}: datagram ${i} truncated`)
          if (b.port(i) !== portOf(tx)) problems.push(`rx${k}: source port ${b.port(i)}`)
          if (b.address(i) !== addr) problems.push(`rx${k}: source ${b.address(i)}`)
        }
      }),
    )
    const messages: FuzzMessage[] = input.messages
    const expected: string[][] = [[], [], []]
    for (const m of messages) expected[m.dest].push(concat(m.parts).toString('hex'))
    const out: OutgoingMessage[] = messages.map((m) => ({ data: toData(m), address: addr, port: portOf(rx[m.dest]) }))
    // Split into `chunks` calls, as an application would.
    const per = Math.ceil(out.length / input.chunks)
    for (let i = 0; i < out.length; i += per) {
      const slice = out.slice(i, i + per)
      if (input.method === 'sendBatch') {
        assert.equal(await withTimeout(tx.sendBatch(slice), 10_000, 'sendBatch'), slice.length)
      } else {
        // trySendBatch sends what fits; on loopback everything fits, but resume if not.
        let sent = 0
        for (let k = 0; k < 1000 && sent < slice.length; k++) {
          sent += tx.trySendBatch(slice.slice(sent))
          if (sent < slice.length) await sleep(1)
        }
        assert.equal(sent, slice.length)
      }
    }
    const total = messages.length
    const arrived = await waitUntil(() => got[0].length + got[1].length + got[2].length >= total, 10_000, 2)
    await ticks(3)
    const drops = rx.reduce((s, r) => s + r.stats().kernelDrops, 0)
    assert.equal(drops, 0, 'no kernel drops')
    assert.ok(arrived, `received ${got.map((g) => g.length)} of ${expected.map((e) => e.length)}`)
    assert.deepEqual(problems, [])
    for (let k = 0; k < 3; k++) {
      assert.deepEqual(
        got[k].map((b) => b.toString('hex')),
        expected[k],
        `receiver ${k}: exactly the datagrams sent to it, in order, byte for byte`,
      )
    }
    assert.equal(tx.stats().datagramsSent, total)
    verified.runs++
    verified.datagrams += total
    verified.bytes += got.reduce((a, g) => a + g.reduce((b, d) => b + d.length, 0), 0)
  } finally {
    for (const s of socks) s.close()
  }
}

test.serial('random batches round-trip exactly over IPv4 loopback', async (t) => {
  t.timeout(120_000)
  const before = { ...verified }
  await check(
    t,
    fc.asyncProperty(batchArb, (input) => roundTrip(4, input)),
    params(t, 0, 150),
  )
  t.log(`${verified.runs - before.runs} runs, ${verified.datagrams - before.datagrams} datagrams (${verified.bytes - before.bytes} bytes) verified`)
  t.true(verified.datagrams > before.datagrams)
})

test.serial('random batches round-trip exactly over IPv6 loopback', async (t) => {
  t.timeout(120_000)
  const before = { ...verified }
  await check(
    t,
    fc.asyncProperty(batchArb, (input) => roundTrip(6, input)),
    params(t, 1, 80),
  )
  t.log(`${verified.runs - before.runs} runs, ${verified.datagrams - before.datagrams} datagrams (${verified.bytes - before.bytes} bytes) verified`)
  t.true(verified.datagrams > before.datagrams)
})

// ---- random call sequences --------------------------------------------------------------------

type Op =
  | { op: 'send'; n: number; size: number; toPeer: boolean }
  | { op: 'trySend'; n: number; size: number }
  | { op: 'peerSend'; n: number; size: number }
  | { op: 'recv'; timeoutMs: number }
  | { op: 'recvPending' }
  | { op: 'recvAbort'; afterMs: number }
  | { op: 'iterate'; take: number }
  | { op: 'onBatch' }
  | { op: 'unsubscribe'; which: number }
  | { op: 'ref' }
  | { op: 'unref' }
  | { op: 'connect' }
  | { op: 'stats' }
  | { op: 'sendAbort' }
  | { op: 'close' }
  | { op: 'closePeer' }
  | { op: 'tick' }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('send' as const), n: fc.integer({ min: 0, max: 300 }), size: fc.integer({ min: 0, max: 1400 }), toPeer: fc.boolean() }),
  fc.record({ op: fc.constant('trySend' as const), n: fc.integer({ min: 0, max: 50 }), size: fc.integer({ min: 0, max: 1400 }) }),
  fc.record({ op: fc.constant('peerSend' as const), n: fc.integer({ min: 1, max: 100 }), size: fc.integer({ min: 0, max: 1400 }) }),
  fc.record({ op: fc.constant('recv' as const), timeoutMs: fc.integer({ min: 0, max: 30 }) }),
  fc.constant({ op: 'recvPending' as const }),
  fc.record({ op: fc.constant('recvAbort' as const), afterMs: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ op: fc.constant('iterate' as const), take: fc.integer({ min: 0, max: 3 }) }),
  fc.constant({ op: 'onBatch' as const }),
  fc.record({ op: fc.constant('unsubscribe' as const), which: fc.nat(5) }),
  fc.constant({ op: 'ref' as const }),
  fc.constant({ op: 'unref' as const }),
  fc.constant({ op: 'connect' as const }),
  fc.constant({ op: 'stats' as const }),
  fc.constant({ op: 'sendAbort' as const }),
  fc.constant({ op: 'close' as const }),
  fc.constant({ op: 'closePeer' as const }),
  fc.constant({ op: 'tick' as const }),
)

/** Operations executed by the call-sequence properties (logged). */
const executed = { ops: 0, sequences: 0 }

const KNOWN_CODES = new Set(['ERR_SOCKET_CLOSED', 'ABORT_ERR', 'ECONNREFUSED', 'ERR_SOCKET_DGRAM_IS_CONNECTED', 'ERR_SOCKET_DGRAM_NOT_CONNECTED'])

async function runSequence(ops: Op[]) {
  const a = UdpSocket.bindSync({ address: V4, port: 0, recvBufferSize: 1 << 20, batchSize: 16 })
  const b = UdpSocket.bindSync({ address: V4, port: 0, recvBufferSize: 1 << 20 })
  const portA = portOf(a)
  const portB = portOf(b)
  a.on('error', () => {})
  b.on('error', () => {})
  b.onBatch(() => {})
  const pending: Promise<unknown>[] = []
  const unexpected: string[] = []
  const unsubs: (() => void)[] = []
  let connected = false
  let lastSent = 0
  const note = (e: any, where: string) => {
    if (!e || !KNOWN_CODES.has(e.code)) unexpected.push(`${where}: ${e && (e.stack || e)}`)
  }
  /** Keeps a promise that must settle by the end; records unexpected rejections. */
  const track = (p: Promise<unknown>, where: string) => {
    pending.push(p.then(() => undefined, (e) => note(e, where)))
  }
  const msgs = (n: number, size: number, port: number) =>
    Array.from({ length: n }, (_, i) => (connected && port === portB ? { data: Buffer.alloc(size, i) } : { data: Buffer.alloc(size, i), address: V4, port }))
  try {
    executed.sequences++
    for (const o of ops) {
      executed.ops++
      switch (o.op) {
        case 'send':
          track(withTimeout(a.sendBatch(msgs(o.n, o.size, o.toPeer || connected ? portB : portA)), 20_000, 'sendBatch'), 'send')
          break
        case 'trySend':
          try {
            const n = a.trySendBatch(msgs(o.n, o.size, portB))
            if (!(n >= 0 && n <= o.n)) unexpected.push(`trySendBatch returned ${n} of ${o.n}`)
          } catch (e) {
            note(e, 'trySend')
          }
          break
        case 'peerSend':
          if (!b.closed) track(b.sendBatch(msgs(o.n, o.size, portA)), 'peerSend')
          break
        case 'recv':
          track(withTimeout(a.recvBatch({ timeoutMs: o.timeoutMs }), 10_000, 'recvBatch(timeout)'), 'recv')
          break
        case 'recvPending':
          // No timeout: must be settled by a batch or by close() at the end.
          track(a.recvBatch(), 'recvPending')
          break
        case 'recvAbort': {
          const ac = new AbortController()
          setTimeout(() => ac.abort(), o.afterMs)
          track(withTimeout(a.recvBatch({ signal: ac.signal }), 10_000, 'recvBatch(signal)'), 'recvAbort')
          break
        }
        case 'iterate':
          track(
            (async () => {
              let k = 0
              for await (const _ of a) if (++k >= o.take) break
            })(),
            'iterate',
          )
          break
        case 'onBatch':
          try {
            unsubs.push(a.onBatch(() => {}))
          } catch (e) {
            note(e, 'onBatch')
          }
          break
        case 'unsubscribe':
          if (unsubs.length) unsubs.splice(o.which % unsubs.length, 1)[0]()
          break
        case 'ref':
          a.ref()
          break
        case 'unref':
          a.unref()
          break
        case 'connect':
          if (!connected && !a.closed) {
            a.connect(V4, portB)
            connected = true
          }
          break
        case 'stats': {
          const s = a.stats()
          for (const [k, v] of Object.entries(s)) if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) unexpected.push(`stats.${k} = ${v}`)
          if (!a.closed && s.datagramsSent < lastSent) unexpected.push('datagramsSent went down')
          if (!a.closed) lastSent = s.datagramsSent
          break
        }
        case 'sendAbort': {
          const ac = new AbortController()
          const p = a.sendBatch(msgs(5, 10, portB), { signal: ac.signal })
          ac.abort()
          track(p, 'sendAbort')
          break
        }
        case 'close':
          a.close()
          if (!a.closed) unexpected.push('closed is false after close()')
          break
        case 'closePeer':
          b.close()
          break
        case 'tick':
          await ticks(1)
          break
      }
    }
    await ticks(2)
  } finally {
    a.close()
    b.close()
  }
  // Everything settles once both sockets are closed.
  const all = await withTimeout(Promise.all(pending).then(() => 'settled'), 20_000, `${pending.length} pending calls`)
  assert.equal(all, 'settled')
  assert.deepEqual(unexpected, [])
}

test.serial('random call sequences never crash, hang or leave a call unsettled', async (t) => {
  t.timeout(120_000)
  await check(
    t,
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40, size: 'max' }), (ops) => runSequence(ops)),
    params(t, 2, 200),
  )
  t.log(`${executed.sequences} sequences, ${executed.ops} operations so far`)
})

test.serial('after many random sequences, UDP sockets, timerfds and threads are back to the baseline', async (t) => {
  t.timeout(120_000)
  // Counts what the package owns (helpers.owned()), not every fd of the process: the test
  // runner opens and closes its own files meanwhile. Every test of this file is serial, so
  // nothing else opens sockets meanwhile.
  await ticks(10)
  const base = await ownedBaseline()
  await check(
    t,
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25, size: 'max' }), (ops) => runSequence(ops)),
    params(t, 3, 40),
  )
  // No thread is ever made; fds are closed by close() itself.
  t.is(owned().ioThreads, base.ioThreads, 'no I/O thread left')
  t.deepEqual(await settleOwned(base), base, 'no UDP socket, timerfd or thread left')
})

// ---- the native send entry point -----------------------------------------------------------------

/** A consistent packed batch (what lib/pack.ts produces), then at most one corruption. */
const packedArb = fc
  .record({
    msgs: fc.array(fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 0, maxLength: 3 }), { minLength: 0, maxLength: 10 }),
    multiDest: fc.boolean(),
    withSources: fc.boolean(),
    withTos: fc.boolean(),
    start: fc.integer({ min: 0, max: 10 }),
    max: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constant(0xffffffff)),
    corruption: fc.integer({ min: 0, max: 14 }),
    k: fc.nat(),
  })
  .map((x) => {
    const lens = x.msgs.flat()
    const parts = x.msgs.map((m) => m.length)
    const total = lens.reduce((a, b) => a + b, 0)
    const n = x.msgs.length
    return {
      ...x,
      data: new Uint8Array(total).map((_, i) => i & 0xff),
      lens,
      parts: parts.every((p) => p === 1) && x.k % 2 === 0 ? null : parts,
      dest: x.multiDest ? x.msgs.map((_, i) => i % 2) : null,
      addrs: x.multiDest ? [V4, V4] : [V4],
      srcIdx: x.withSources ? x.msgs.map((_, i) => i % 2) : null,
      sources: x.withSources ? [V4] : null,
      tos: x.withTos ? x.msgs.map((_, i) => (i % 3 === 0 ? -1 : i)) : null,
      start: Math.min(x.start, n),
    }
  })

/** Applies corruption number `c` (0 and > 12: none). */
function corrupt(x: any, port: number) {
  const y = { ...x, ports: x.addrs.map(() => port) }
  const pick = (a: number[]) => (a.length ? x.k % a.length : 0)
  switch (x.corruption) {
    case 1: // a part length off by one
      if (y.lens.length) y.lens = y.lens.map((l: number, i: number) => (i === pick(y.lens) ? l + 1 : l))
      else y.lens = [1]
      break
    case 2: // a missing part length
      y.lens = y.lens.slice(0, -1)
      break
    case 3: // parts per datagram that do not add up
      y.parts = (y.parts ?? y.lens.map(() => 1)).concat([1])
      break
    case 4: // a destination index out of range
      y.dest = x.msgs.map((_: unknown, i: number) => (i === pick(x.msgs) ? 7 : 0))
      break
    case 5: // one destination index too few
      y.dest = x.msgs.map(() => 0).slice(1)
      break
    case 6: // start past the end
      y.start = x.msgs.length + 1 + (x.k % 3)
      break
    case 7: // addresses and ports of different lengths
      y.ports = y.ports.concat([port])
      break
    case 8: // a destination that is not an IP
      y.addrs = y.addrs.map(() => 'not an ip')
      break
    case 9: // a port that does not fit in 16 bits
      y.ports = y.ports.map(() => 65536 + (x.k % 1000))
      break
    case 10: // tos out of range
      y.tos = x.msgs.map(() => 256)
      break
    case 11: // a source index past the source table
      y.srcIdx = x.msgs.map(() => 5)
      y.sources = [V4]
      break
    case 12: // a huge part length (sum overflows 32 bits)
      y.lens = y.lens.concat([0xffffffff, 1])
      break
  }
  return y
}

/**
 * An independent statement of what the native send accepts (src/native.rs `send` and
 * src/send.rs `Packed::validate`): 'ok', or why it must be refused.
 */
function modelVerdict(y: any): string {
  const isIp = (a: string) => net.isIP(a.split('%')[0]) !== 0 && (!a.includes('%') || /%\d+$/.test(a))
  if (y.sources !== null && !y.sources.every(isIp)) return 'bad source'
  if (y.addrs.length !== y.ports.length) return 'addresses/ports lengths'
  if (!y.ports.every((p: number) => p >= 0 && p <= 65535)) return 'port range'
  if (!y.addrs.every(isIp)) return 'bad address'
  const sum = y.lens.reduce((a: number, b: number) => a + b, 0)
  if (sum !== y.data.length) return 'lengths do not add up'
  const count = y.parts === null ? y.lens.length : y.parts.length
  if (y.parts !== null && y.parts.reduce((a: number, b: number) => a + b, 0) !== y.lens.length) return 'parts do not add up'
  if (y.dest !== null && (y.dest.length !== count || y.dest.some((i: number) => i >= y.addrs.length))) return 'destination index'
  if (y.srcIdx !== null && (y.srcIdx.length !== count || y.srcIdx.some((i: number) => i > (y.sources ?? []).length))) return 'source index'
  if (y.tos !== null && (y.tos.length !== count || y.tos.some((v: number) => v < -1 || v > 255))) return 'tos'
  if (y.start > count) return 'start past the end'
  if (y.addrs.length === 0 && count > y.start) return 'no destination'
  return 'ok'
}

test.serial('the native send entry point rejects inconsistent packed arrays without crashing', async (t) => {
  t.timeout(120_000)
  const rx = UdpSocket.bindSync({ address: V4, port: 0, recvBufferSize: 4 << 20 })
  const tx = UdpSocket.bindSync({ address: V4, port: 0 })
  t.teardown(() => {
    rx.close()
    tx.close()
  })
  let received = 0
  rx.onBatch((b) => (received += b.count))
  const native = (tx as any)._native
  const port = portOf(rx)
  let results = 0
  let errors = 0
  let sent = 0
  const prop = fc.asyncProperty(packedArb, async (x0) => {
    const x = corrupt(x0, port)
    const u = (a: number[] | null) => (a === null ? null : Uint32Array.from(a))
    const verdict = modelVerdict(x)
    let r: any
    try {
      r = native.send(x.data, Uint32Array.from(x.lens), u(x.parts), u(x.dest), x.addrs, x.ports, x.start, x.max, u(x.srcIdx), x.sources, x.tos === null ? null : Int32Array.from(x.tos))
    } catch (e: any) {
      errors++
      assert.ok(e instanceof Error, `an Error object: ${e}`)
      assert.equal((e as any).code, 'UDP_MMSG_ARG', `a validation error, not something else: ${e.message}`)
      assert.notEqual(verdict, 'ok', `a consistent batch was refused: ${e.message} ${JSON.stringify(x)}`)
      return
    }
    results++
    assert.equal(verdict, 'ok', `an inconsistent batch (${verdict}) was accepted: ${JSON.stringify(x)}`)
    const count = x.parts === null ? x.lens.length : x.parts.length
    const want = Math.max(0, Math.min(count, x.start + x.max) - x.start)
    const failed = r < want ? native.lastSendError() : null
    assert.equal(failed, null, `syscall error ${JSON.stringify(failed)}`)
    assert.equal(r, want, `sent ${r} of datagrams ${x.start}..${x.start + x.max} of ${count}`)
    sent += r
  })
  await check(t, prop, params(t, 4, 2000))
  t.log(`${results} calls answered with a result (${sent} datagrams), ${errors} with a validation error`)
  t.true(errors > 100, 'corrupted batches were refused')
  t.true(results > 100, 'consistent batches were sent')
  t.true(await waitUntil(() => received + rx.stats().kernelDrops >= sent, 10_000), `received ${received} of ${sent}`)
  // The socket is still usable afterwards.
  t.is(await tx.sendBatch([{ data: 'fine', address: V4, port }]), 1)
})
