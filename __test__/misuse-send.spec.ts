// Sending under misuse (issue 11): sends made re-entrantly from a getter of a message being
// packed. Every datagram is checked at its receiver: payload, destination and order.
// Loopback only; every wait is bounded.
import test from 'ava'
import type { OutgoingMessage } from '../lib/index.js'
import { Collector, V4, checkPayload, openLo, payload, portOf, type UdpSocket } from './helpers.js'

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
