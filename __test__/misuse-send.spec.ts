// Sending under misuse (issue 11): sends made re-entrantly from a getter of a message being
// packed, and a bad destination among good ones in one facade tick. Every datagram is checked
// at its receiver: payload, destination and order. Loopback only; every wait is bounded.
import test from 'ava'
import * as nodeDgram from 'node:dgram'
import type { OutgoingMessage } from '../lib/index.js'
import { createSocket } from '../lib/dgram.js'
import { Collector, V4, V6, checkPayload, openLo, payload, portOf, waitUntil, type UdpSocket } from './helpers.js'
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
