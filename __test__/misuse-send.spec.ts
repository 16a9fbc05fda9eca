// Sending under misuse (issue 11): sends made re-entrantly from a getter of a message being
// packed, a bad destination among good ones in one facade tick, and one sendBatch to
// thousands of distinct destinations. Every datagram is checked at its receiver: payload,
// destination and order. Loopback only; every wait is bounded.
import test from 'ava'
import { needs } from './backend.js'
import * as nodeDgram from 'node:dgram'
import type { OutgoingMessage } from '../lib/index.js'
import { createSocket } from '../lib/dgram.js'
import { BIG_RCVBUF, Collector, V4, V6, checkPayload, openLo, payload, portOf, waitUntil, type UdpSocket } from './helpers.js'
import { callback, messages as dgramMessages, sockets } from './dgram-harness.js'

/** A marker sent last to every receiver: once it arrived, nothing else was on its way. */
const END = 'end'

/** Waits for the expected counts, then sends END to every receiver and waits for it; says per receiver whether all arrived. */
async function drained(tx: UdpSocket, cs: Collector[], rxs: UdpSocket[], address: string, expected: number[]): Promise<boolean[]> {
  const ok = await Promise.all(cs.map((c, r) => c.waitFor(expected[r])))
  await tx.sendBatch(rxs.map((rx) => ({ data: END, address, port: portOf(rx) })))
  const ended = await Promise.all(cs.map((c, r) => c.waitFor(expected[r] + 1)))
  return ok.map((v, r) => v && ended[r])
}

/** What receiver `c` got: payload seqs (or what is wrong with one), plain texts, then 'end'. */
function got(c: Collector): Array<number | string> {
  return c.messages.map((m) => {
    const text = m.data.toString('latin1')
    if (text === END || text.startsWith('in:')) return text
    return checkPayload(m.data)
  })
}

// ---- item 6: re-entrant sends ------------------------------------------------------------

type Reenter = 'trySendBatch' | 'sendBatch'
type Getter = 'data' | 'address'

for (const outer of ['sendBatch', 'trySendBatch'] as const) {
  for (const inner of ['trySendBatch', 'sendBatch'] as Reenter[]) {
    for (const getter of ['data', 'address'] as Getter[]) {
      test(`a ${inner} from a message's ${getter} getter during ${outer}: every datagram reaches its own destination with its own payload`, async (t) => {
        // Outer datagrams alternate between receivers 0 and 1; the inner call sends to 2 and 3
        // in a different pattern, so a shared destination table would send outer datagrams
        // to the wrong receiver (or to 2/3).
        const rxs = [0, 1, 2, 3].map(() => openLo(t, 4))
        const cs = rxs.map((r) => new Collector(r))
        const tx = openLo(t, 4)
        const N = 40
        const REENTER_AT = 17
        const outerDest = (seq: number) => (seq % 3 === 0 ? 0 : 1)
        const innerMessages: OutgoingMessage[] = ['in:a', 'in:b', 'in:c', 'in:d', 'in:e'].map((text, k) => ({
          data: text,
          address: V4,
          port: portOf(rxs[k === 1 || k === 4 ? 3 : 2]),
        }))
        let innerResult: number | Promise<number> | undefined
        let calls = 0
        const messages: OutgoingMessage[] = []
        for (let seq = 0; seq < N; seq++) {
          const m: OutgoingMessage = { data: payload(seq), address: V4, port: portOf(rxs[outerDest(seq)]) }
          if (seq === REENTER_AT) {
            const value = m[getter]
            Object.defineProperty(m, getter, {
              enumerable: true,
              get() {
                calls++
                innerResult = tx[inner](innerMessages)
                return value
              },
            })
          }
          messages.push(m)
        }
        const sent = outer === 'sendBatch' ? await tx.sendBatch(messages) : tx.trySendBatch(messages)
        t.is(sent, N)
        t.is(calls, 1, 'the getter is read exactly once')
        t.is(await innerResult, innerMessages.length)
        const expected = [[], [], [], []] as Array<Array<number | string>>
        for (let seq = 0; seq < N; seq++) expected[outerDest(seq)].push(seq)
        expected[2].push('in:a', 'in:c', 'in:d')
        expected[3].push('in:b', 'in:e')
        const ok = await drained(
          tx,
          cs,
          rxs,
          V4,
          expected.map((e) => e.length),
        )
        t.deepEqual(ok, [true, true, true, true], `counts: ${cs.map((c) => c.count)}`)
        // The inner call completed inside the outer pack, so its datagrams arrive first.
        const inner2 = expected[2].filter((x) => typeof x === 'string')
        const inner3 = expected[3].filter((x) => typeof x === 'string')
        t.deepEqual(got(cs[0]), [...expected[0], END], 'receiver 0: exactly its outer datagrams')
        t.deepEqual(got(cs[1]), [...expected[1], END], 'receiver 1: exactly its outer datagrams')
        t.deepEqual(got(cs[2]), [...inner2, END], 'receiver 2: exactly its inner datagrams')
        t.deepEqual(got(cs[3]), [...inner3, END], 'receiver 3: exactly its inner datagrams')
      })
    }
  }
}

test('a re-entrant send that throws (bad inner message) leaves the outer batch intact', async (t) => {
  const rxs = [openLo(t, 4), openLo(t, 4)]
  const cs = rxs.map((r) => new Collector(r))
  const tx = openLo(t, 4)
  let innerError: unknown
  const messages: OutgoingMessage[] = []
  for (let seq = 0; seq < 10; seq++) {
    const m: OutgoingMessage = { data: payload(seq), address: V4, port: portOf(rxs[seq % 2]) }
    if (seq === 5) {
      const data = m.data
      Object.defineProperty(m, 'data', {
        get() {
          try {
            tx.trySendBatch([{ data: 'x', address: V4, port: portOf(rxs[0]) }, { data: 'y', address: V4, port: 0 }])
          } catch (e) {
            innerError = e
          }
          return data
        },
      })
    }
    messages.push(m)
  }
  t.is(await tx.sendBatch(messages), 10)
  t.like(innerError, { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT' })
  t.deepEqual(await drained(tx, cs, rxs, V4, [5, 5]), [true, true])
  t.deepEqual(got(cs[0]), [0, 2, 4, 6, 8, END])
  t.deepEqual(got(cs[1]), [1, 3, 5, 7, 9, END])
})

// ---- item 7: facade, one bad address among good sends in a tick --------------------------

/** Sends a, bad, c, d in one tick from a udp6 socket of `impl` to `port` on ::1. */
async function sendTick(
  t: import('ava').ExecutionContext,
  impl: typeof nodeDgram | { createSocket: typeof nodeDgram.createSocket },
  port: number,
  bad: string,
): Promise<Array<[Error | null, number?]>> {
  const S = sockets(t)
  const tx = S.add(impl.createSocket('udp6'))
  const listening = new Promise((resolve) => tx.once('listening', resolve))
  tx.bind(0, V6)
  await listening
  const sends = [
    ['a', V6],
    ['bad', bad],
    ['c', V6],
    ['d', V6],
  ].map(([text, address]) => {
    const { cb, done } = callback<[Error | null, number?]>(`send ${text}`)
    tx.send(text, port, address, cb)
    return done
  })
  return Promise.all(sends)
}

test("facade: an unknown IPv6 scope fails only its own send; the other sends of the tick go out and call back (null, bytes), as with node:dgram", async (t) => {
  const S = sockets(t)
  const BAD = '::1%nosuchif0'
  // node:dgram, for comparison (libuv turns the unknown scope into scope 0, so it sends the
  // bad one to ::1 too: the facade refuses it instead, see below).
  const nrx = S.add(nodeDgram.createSocket('udp6'))
  await new Promise<void>((resolve) => nrx.bind(0, V6, resolve))
  const nodeTexts: string[] = []
  nrx.on('message', (m) => nodeTexts.push(m.toString('latin1')))
  const nodeCbs = await sendTick(t, nodeDgram, nrx.address().port, BAD)
  // 'd' is sent last: once it is in, everything node:dgram sent to ::1 is.
  t.true(await waitUntil(() => nodeTexts.includes('d')), `node:dgram received ${JSON.stringify(nodeTexts)}`)
  t.log(`node:dgram: callbacks ${JSON.stringify(nodeCbs.map(([e, n]) => (e ? (e as NodeJS.ErrnoException).code : n)))}, received ${JSON.stringify(nodeTexts)}`)

  const rx = S.add(createSocket('udp6'))
  await new Promise<void>((resolve) => rx.bind(0, V6, resolve))
  const port = rx.address().port
  const mmsgGot = dgramMessages(rx, 3)
  const cbs = await sendTick(t, { createSocket } as unknown as typeof nodeDgram, port, BAD)
  // The good sends: same as node:dgram.
  for (const k of [0, 2, 3]) {
    t.deepEqual(cbs[k], nodeCbs[k], `send ${k} calls back like node:dgram`)
    t.deepEqual(cbs[k], [null, 1])
  }
  const texts = (await mmsgGot).map((m) => m.text)
  t.deepEqual(texts, ['a', 'c', 'd'], 'the good datagrams arrive, in order')
  t.deepEqual(
    nodeTexts.filter((x) => x !== 'bad'),
    texts,
  )
  // The bad one: an errno error about itself, shaped like node:dgram's send errors.
  const err = cbs[1][0] as NodeJS.ErrnoException & { address?: string; port?: number }
  t.truthy(err, 'the bad send calls back with an error')
  t.like(err, { code: 'EINVAL', errno: -22, syscall: 'send', address: BAD, port })
  t.is(err.message, `send EINVAL ${BAD}:${port}`)
  t.notRegex(err.message, /messages\[/, 'never names an index of an internal batch')
  t.is(cbs[1].length, 1)
})

test('facade: a bad scope in the middle of a long tick, without a callback, does not stop or misroute the rest', async (t) => {
  const S = sockets(t)
  const rx = S.add(createSocket('udp6'))
  await new Promise<void>((resolve) => rx.bind(0, V6, resolve))
  const port = rx.address().port
  const tx = S.add(createSocket('udp6'))
  await new Promise<void>((resolve) => tx.bind(0, V6, resolve))
  const got = dgramMessages(rx, 48)
  const dones: Array<Promise<[Error | null, number?]>> = []
  const y = callback<[Error | null, number?]>('send y')
  for (let i = 0; i < 50; i++) {
    if (i === 10) tx.send('x', port, 'fe80::1%nosuchif0') // no callback: dropped, as node:dgram drops send errors
    else if (i === 30) tx.send('y', port, 'fe80::2%nosuchif1', y.cb)
    else {
      const { cb, done } = callback<[Error | null, number?]>(`send ${i}`)
      tx.send(`m${i}`, port, V6, cb)
      dones.push(done)
    }
  }
  const results = await Promise.all(dones)
  t.true(
    results.every(([e, n]) => e === null && typeof n === 'number'),
    JSON.stringify(results.filter(([e]) => e).map(([e]) => e!.message)),
  )
  const expected = Array.from({ length: 50 }, (_, i) => i)
    .filter((i) => i !== 10 && i !== 30)
    .map((i) => `m${i}`)
  t.deepEqual(
    (await got).map((m) => m.text),
    expected,
  )
  t.like((await y.done)[0], { code: 'EINVAL', syscall: 'send', address: 'fe80::2%nosuchif1', port })
})

// ---- item 11: one sendBatch to thousands of distinct destinations -------------------------

/**
 * A distinct spelling of ::1 for each k < 4^8: every group written with 1..4 digits. The
 * native layer sees a different destination string (a different table entry), the kernel the
 * same loopback address, so a test can have thousands of destinations while staying on ::1.
 */
function spellingOfLoopback(k: number): string {
  const groups: string[] = []
  for (let g = 0; g < 8; g++) {
    const width = 1 + ((k >> (2 * g)) & 3)
    groups.push((g === 7 ? '1' : '0').padStart(width, '0'))
  }
  return groups.join(':')
}

/** A deterministic pseudo-random sequence (LCG), so a failure reproduces. */
function lcg(seed: number): () => number {
  let x = seed >>> 0
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    return x / 2 ** 32
  }
}

/**
 * `count` messages in runs of 1..4 to one destination (receiver, spelling), receivers drawn
 * from a subset that changes every ~3000 messages (so slices of 4096 see different sets and
 * their boundaries fall mid-run), spellings from 65,536 (mostly distinct, some repeated far
 * apart, so one table entry is used by several slices).
 */
function manyDestinations(rxs: UdpSocket[], count: number) {
  const rand = lcg(20261130)
  const messages: OutgoingMessage[] = []
  const expected: number[][] = rxs.map(() => [])
  const spellings = new Set<string>()
  let seq = 0
  while (seq < count) {
    const phase = Math.floor(seq / 3000)
    const subset = [phase % rxs.length, (phase * 3 + 1) % rxs.length, (phase * 5 + 2) % rxs.length]
    const r = rand() < 0.1 ? Math.floor(rand() * rxs.length) : subset[Math.floor(rand() * subset.length)]
    const address = spellingOfLoopback(Math.floor(rand() * 65536))
    spellings.add(`${address}|${r}`)
    const run = 1 + Math.floor(rand() * 4)
    for (let k = 0; k < run && seq < count; k++, seq++) {
      messages.push({ data: payload(seq), address, port: portOf(rxs[r]) })
      expected[r].push(seq)
    }
  }
  return { messages, expected, distinct: spellings.size }
}

test('sendBatch of 20,000 datagrams to thousands of distinct destinations: each arrives exactly at its own, with its payload, in order', async (t) => {
  const rxs = Array.from({ length: 8 }, () => openLo(t, 6, { recvBufferSize: BIG_RCVBUF }))
  const cs = rxs.map((r) => new Collector(r))
  const tx = openLo(t, 6)
  const { messages, expected, distinct } = manyDestinations(rxs, 20_000)
  t.true(distinct > 4096, `distinct destinations: ${distinct}`)
  t.is(await tx.sendBatch(messages), 20_000)
  const ok = await drained(
    tx,
    cs,
    rxs,
    V6,
    expected.map((e) => e.length),
  )
  t.deepEqual(ok, rxs.map(() => true), `received ${cs.map((c) => c.count)} of ${expected.map((e) => e.length)}`)
  for (let r = 0; r < rxs.length; r++) {
    t.deepEqual(got(cs[r]), [...expected[r], END], `receiver ${r} gets exactly its datagrams, intact, in order`)
  }
  t.is(
    rxs.reduce((n, rx) => n + rx.stats().kernelDrops, 0),
    0,
    'no kernel drops (a drop would make the comparison meaningless)',
  )
})

test('sendBatch to thousands of destinations: each native send converts at most as many destinations as it may send datagrams (linear, not per slice the whole table)', async (t) => {
  const rxs = Array.from({ length: 4 }, () => openLo(t, 6, { recvBufferSize: BIG_RCVBUF }))
  const cs = rxs.map((r) => new Collector(r))
  const tx = openLo(t, 6)
  const native = (tx as unknown as { _native: { send: (...args: unknown[]) => unknown } })._native
  const calls: Array<{ table: number; max: number; start: number }> = []
  const send = native.send.bind(native)
  native.send = (...args: unknown[]) => {
    calls.push({ table: (args[4] as string[]).length, start: args[6] as number, max: args[7] as number })
    return send(...args)
  }
  const { messages, expected, distinct } = manyDestinations(rxs, 14_000)
  t.true(distinct > 4096, `distinct destinations: ${distinct}`)
  t.is(await tx.sendBatch(messages), 14_000)
  const bad = calls.filter((c) => c.table > Math.min(c.max, 14_000 - c.start))
  t.deepEqual(bad, [], `calls converting more destinations than they may send: ${JSON.stringify(bad.slice(0, 3))}`)
  const converted = calls.reduce((n, c) => n + c.table, 0)
  t.true(converted <= 14_000, `destinations converted in all: ${converted}`)
  t.deepEqual(await drained(tx, cs, rxs, V6, expected.map((e) => e.length)), rxs.map(() => true))
  for (let r = 0; r < rxs.length; r++) t.deepEqual(got(cs[r]), [...expected[r], END])
})

test('sendBatch in slices still refuses an unknown IPv6 scope before anything is sent, naming its message', async (t) => {
  const rx = openLo(t, 6)
  const c = new Collector(rx)
  const tx = openLo(t, 6)
  const messages: OutgoingMessage[] = Array.from({ length: 10_000 }, (_, seq) => ({ data: payload(seq), address: V6, port: portOf(rx) }))
  messages[9_000] = { data: 'bad', address: 'fe80::1%nosuchif0', port: portOf(rx) }
  const before = tx.stats().datagramsSent
  const err = await tx.sendBatch(messages).then(
    () => null,
    (e) => e,
  )
  t.like(err, { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', sent: 0, index: 9_000 })
  t.regex(err.message, /"messages\[9000\]\.address"/)
  t.is(tx.stats().datagramsSent, before, 'nothing was sent')
  await tx.sendBatch([{ data: END, address: V6, port: portOf(rx) }])
  t.true(await c.waitFor(1))
  t.deepEqual(c.texts(), [END])
})

needs('pktinfo')('sendBatch in slices with scatter/gather parts, source addresses and a small send buffer: every datagram reassembled intact at its own destination', async (t) => {
  // Parts of varying count and length move the byte/part position of every slice; the
  // small send buffer makes sends stop (and resume) in the middle of slices.
  const rxs = Array.from({ length: 4 }, () => openLo(t, 6, { recvBufferSize: BIG_RCVBUF }))
  const cs = rxs.map((r) => new Collector(r))
  const tx = openLo(t, 6, { sendBufferSize: 16 * 1024 })
  const { messages: plain, expected, distinct } = manyDestinations(rxs, 12_000)
  t.true(distinct > 4096)
  const messages: OutgoingMessage[] = plain.map((m, seq) => {
    const b = m.data as Buffer
    const cut1 = seq % 3 === 0 ? 0 : Math.min(b.length, 3 + (seq % 7))
    const cut2 = Math.min(b.length, cut1 + (seq % 5) * 4)
    const data = seq % 4 === 0 ? b : [b.subarray(0, cut1), b.subarray(cut1, cut2), b.subarray(cut2)]
    return seq % 5 === 0 ? { ...m, data, sourceAddress: V6 } : { ...m, data }
  })
  t.is(await tx.sendBatch(messages), 12_000)
  // (Loopback rarely fills the buffer; the next test covers slices starting anywhere.)
  t.log(`send retries (buffer full): ${tx.stats().sendRetries}`)
  t.deepEqual(await drained(tx, cs, rxs, V6, expected.map((e) => e.length)), rxs.map(() => true))
  for (let r = 0; r < rxs.length; r++) t.deepEqual(got(cs[r]), [...expected[r], END], `receiver ${r}`)
})

test('a slice starting anywhere (as after a partial send) carries exactly its datagrams: bytes, parts, destinations, sources, tos', (t) => {
  const { pack } = require('../lib/pack.js')
  const { sliceOf, cursor } = require('../lib/slice.js')
  const rand = lcg(7)
  const messages: OutgoingMessage[] = []
  for (let seq = 0; seq < 9_000; seq++) {
    const b = payload(seq)
    const cut = Math.floor(rand() * b.length)
    messages.push({
      data: rand() < 0.5 ? b : [b.subarray(0, cut), b.subarray(cut)],
      address: spellingOfLoopback(Math.floor(rand() * 6000)),
      port: 1000 + Math.floor(rand() * 3),
      ...(rand() < 0.3 ? { sourceAddress: spellingOfLoopback(Math.floor(rand() * 50)) } : {}),
      ...(rand() < 0.3 ? { tos: Math.floor(rand() * 256) } : {}),
    })
  }
  const p = pack(messages, { family: 6, connected: false }, null)
  const cur = cursor()
  let start = 0
  let slices = 0
  while (start < p.count) {
    const max = 1 + Math.floor(rand() * 5000)
    const v = sliceOf(p, start, max, cur)
    t.is(v.count, Math.min(max, p.count - start))
    t.true(v.addrs.length <= v.count)
    let off = 0
    let part = 0
    for (let j = 0; j < v.count; j++) {
      const m = messages[start + j]
      const parts: Buffer[] = Array.isArray(m.data) ? (m.data as Buffer[]) : [m.data as Buffer]
      const n = v.parts === null ? 1 : v.parts[j]
      if (n !== parts.length) return t.fail(`datagram ${start + j}: ${n} parts, expected ${parts.length}`)
      for (const b of parts) {
        if (v.lens[part] !== b.length) return t.fail(`datagram ${start + j}: part length`)
        if (Buffer.compare(Buffer.from(v.data.buffer, v.data.byteOffset + off, b.length), b) !== 0) return t.fail(`datagram ${start + j}: bytes`)
        off += b.length
        part++
      }
      const d = v.dest === null ? 0 : v.dest[j]
      if (v.addrs[d] !== m.address || v.ports[d] !== m.port) return t.fail(`datagram ${start + j}: destination`)
      const s = v.srcIdx === null ? 0 : v.srcIdx[j]
      if ((s === 0 ? undefined : v.sources[s - 1]) !== m.sourceAddress) return t.fail(`datagram ${start + j}: source`)
      const tos = v.tos === null ? -1 : v.tos[j]
      if (tos !== (m.tos ?? -1)) return t.fail(`datagram ${start + j}: tos`)
    }
    t.is(off, v.data.length)
    t.is(part, v.lens.length)
    // Resume part-way through this slice, as a partial send does.
    start += Math.max(1, Math.floor(v.count * (0.3 + 0.7 * rand())))
    slices++
  }
  t.true(slices > 3)
})
