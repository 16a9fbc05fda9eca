// The facade paces bursts of send(): PACE_BURST datagrams leave at once, the rest at
// `sendRate` (default DEFAULT_SEND_RATE per second), so a receiver that keeps up with
// node:dgram's own pace is not flooded (docs/migrating-from-dgram.md). These tests check the
// mechanism and what it must keep (order, callbacks, close/disconnect); how fast a burst
// leaves is a benchmark matter. The tests run one at a time, and every burst fits a default
// receive buffer whole (~200 small datagrams), so none can be lost whatever the timing.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { needs } from './backend.js'
import { createSocket, Socket } from '../lib/dgram.js'
import { DEFAULT_SEND_RATE, PACE_BURST } from '../lib/dgram-pace.js'
import { callback, messages, MMSG, NODE, sockets, thrown, withTimeout } from './dgram-harness.js'

const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Sends `n` numbered datagrams from `tx` to `port` in one tick; resolves with every callback's arguments. */
function burst(tx: Socket, port: number, n: number, from = 0): Promise<Array<[Error | null, number]>> {
  const dones: Array<Promise<[Error | null, number]>> = []
  for (let i = from; i < from + n; i++) {
    const { cb, done } = callback<[Error | null, number]>(`send ${i}`)
    tx.send(`m${i}`, port, '127.0.0.1', cb)
    dones.push(done)
  }
  return Promise.all(dones)
}

/** A node:dgram receiver and a facade sender, both bound to 127.0.0.1 (closed after the test). */
async function pair(t: ExecutionContext) {
  const S = sockets(t)
  const rx = await S.bound(NODE)
  const tx = (await S.bound(MMSG)) as Socket
  return { S, rx, tx, port: rx.address().port }
}

const names = (from: number, n: number) => Array.from({ length: n }, (_, i) => `m${from + i}`)

/** Every one of the `n` sends called back `(null, bytes)` and arrived, in order. */
async function allArrived(
  t: ExecutionContext,
  cbs: Promise<Array<[Error | null, number]>>,
  got: Promise<Array<{ text: string }>>,
  n: number,
): Promise<void> {
  t.deepEqual(
    await withTimeout(cbs, 'callbacks'),
    names(0, n).map((m) => [null, m.length]),
  )
  t.deepEqual(
    (await withTimeout(got, 'datagrams')).map((m) => m.text),
    names(0, n),
  )
}

test('pacing constants: a burst of 64, then 64 000 datagrams per second', (t) => {
  t.is(PACE_BURST, 64)
  t.is(DEFAULT_SEND_RATE, 64_000)
})

needs.serial('batched')(
  'a burst larger than PACE_BURST: the first flush sends PACE_BURST, the rest follows in order, every callback once',
  async (t) => {
    const { rx, tx, port } = await pair(t)
    const N = 3 * PACE_BURST + 7
    const got = messages(rx, N)
    const cbs = burst(tx, port, N)
    t.is(tx.getSendQueueCount(), N)
    await new Promise<void>((resolve) => process.nextTick(resolve))
    await tick()
    // The first flush (next tick) took exactly the burst; pacing holds the rest.
    t.is(tx.udpSocket!.stats().datagramsSent, PACE_BURST)
    t.is(tx.getSendQueueCount(), N - PACE_BURST)
    await allArrived(t, cbs, got, N)
    t.is(tx.getSendQueueCount(), 0)
  },
)

needs.serial('batched')('sends made while a burst is held back go out after it, in order', async (t) => {
  const { rx, tx, port } = await pair(t)
  const got = messages(rx, 2 * PACE_BURST + 10)
  const first = burst(tx, port, 2 * PACE_BURST)
  await tick()
  const second = burst(tx, port, 10, 2 * PACE_BURST)
  await withTimeout(Promise.all([first, second]), 'callbacks')
  t.deepEqual(
    (await withTimeout(got, 'datagrams')).map((m) => m.text),
    names(0, 2 * PACE_BURST + 10),
  )
})

needs.serial('batched')(
  'close() sends what pacing held back (node:dgram would have sent it); same-tick unconnected sends are dropped as by Node',
  async (t) => {
    const { rx, tx, port } = await pair(t)
    const N = 3 * PACE_BURST
    const got = messages(rx, N)
    const cbs = burst(tx, port, N)
    await tick()
    t.true(tx.getSendQueueCount() > 0, 'part of the burst is held back')
    let lateCalled = false
    tx.send('late', port, '127.0.0.1', () => (lateCalled = true))
    await new Promise<void>((resolve) => tx.close(resolve))
    await allArrived(t, cbs, got, N)
    await tick()
    t.false(lateCalled, 'a send made in the tick of close() is dropped without a callback, as by Node')
  },
)

needs.serial('batched')('disconnect() first sends what pacing held back, to the destinations it was sent to', async (t) => {
  const { S, rx, tx, port } = await pair(t)
  const other = await S.bound(NODE)
  const N = 3 * PACE_BURST
  const got = messages(rx, N)
  const cbs = burst(tx, port, N)
  await tick()
  await new Promise<void>((resolve, reject) =>
    tx.connect(other.address().port, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve())),
  )
  tx.disconnect()
  await withTimeout(cbs, 'callbacks')
  t.deepEqual(
    (await withTimeout(got, 'datagrams')).map((m) => m.text),
    names(0, N),
  )
})

needs.serial('batched')("answers sent from 'message' listeners are not paced (the requests pace them)", async (t) => {
  const S = sockets(t)
  const server = (await S.bound(MMSG)) as Socket
  // The queries leave in one batch (no pacing on the client), so they arrive together.
  const client = S.add(createSocket({ type: 'udp4', sendRate: Infinity }))
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve))
  const N = 3 * PACE_BURST
  let answered = 0
  const held: number[] = []
  server.on('message', (msg, rinfo) => {
    server.send(msg, rinfo.port, rinfo.address)
    // After this batch's listeners, its answers are flushed: none may be held back.
    if (++answered === N) process.nextTick(() => held.push(server.getSendQueueCount()))
  })
  const got = messages(client, N)
  const port = server.address().port
  for (let i = 0; i < N; i++) client.send(`q${i}`, port, '127.0.0.1')
  t.is((await withTimeout(got, 'answers')).length, N)
  t.deepEqual(held, [0])
})

needs.serial('batched')('sendRate: Infinity sends a whole burst in one flush', async (t) => {
  const S = sockets(t)
  const rx = await S.bound(NODE)
  const tx = createSocket({ type: 'udp4', sendRate: Infinity })
  t.teardown(() => tx.close())
  await new Promise<void>((resolve) => tx.bind(0, '127.0.0.1', resolve))
  const N = 3 * PACE_BURST
  const got = messages(rx, N)
  const cbs = burst(tx, rx.address().port, N)
  await new Promise<void>((resolve) => process.nextTick(resolve))
  await tick()
  t.is(tx.getSendQueueCount(), 0)
  await withTimeout(cbs, 'callbacks')
  t.is((await withTimeout(got, 'datagrams')).length, N)
})

test('sendRate must be a positive number (or Infinity)', (t) => {
  const make = (v: unknown) => thrown(() => createSocket({ type: 'udp4', sendRate: v as number }).close())
  t.like(make('fast'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  t.like(make(0), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  t.like(make(-5), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  t.like(make(Number.NaN), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  t.is(make(1000), 'no throw')
  t.is(make(Infinity), 'no throw')
})
