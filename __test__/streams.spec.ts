// Web streams over UdpSocket (lib/streams.ts) and the AbortSignal support of bind, recvBatch
// and sendBatch. Loopback only; bounded waits; sockets closed in teardown.
import test, { type ExecutionContext } from 'ava'
import { setTimeout as sleep } from 'node:timers/promises'
import { UdpSocket, type Batch } from '../lib/index.js'
import { readable, writable } from '../lib/streams.js'
import { withTimeout } from './dgram-harness.js'

async function pair(t: ExecutionContext, rxOptions: Record<string, unknown> = {}) {
  const rx = await UdpSocket.bind({ address: '127.0.0.1', ...rxOptions })
  const tx = await UdpSocket.bind({ address: '127.0.0.1' })
  t.teardown(() => {
    rx.close()
    tx.close()
  })
  const port = rx.localAddress().port
  const send = (texts: string[]) => tx.sendBatch(texts.map((data) => ({ data, address: '127.0.0.1', port })))
  return { rx, tx, port, send }
}

const texts = (n: number, p = 'd') => Array.from({ length: n }, (_, i) => `${p}${i}`)

/** Reads batches from `reader` until `n` datagrams arrived; returns their texts. */
async function readTexts(reader: ReadableStreamDefaultReader<Batch>, n: number): Promise<string[]> {
  const got: string[] = []
  while (got.length < n) {
    const { value, done } = await withTimeout(reader.read(), `datagram ${got.length + 1} of ${n}`)
    if (done) break
    for (let i = 0; i < value.count; i++) got.push(value.data(i).toString())
  }
  return got
}

test('readable(): batches in order; for await works; empty batches never appear', async (t) => {
  const { rx, send } = await pair(t)
  const stream = readable(rx)
  await send(texts(50))
  const got: string[] = []
  for await (const batch of stream) {
    t.true(batch.count > 0)
    for (const m of batch) got.push(m.data.toString())
    if (got.length >= 50) break // leaves the loop: cancels the stream
  }
  t.deepEqual(got, texts(50))
  t.false(rx.closed, 'breaking out of for-await cancels the stream, not the socket')
})

test('readable(): backpressure — an unread stream stops reading; nothing is lost once it is read', async (t) => {
  const { rx, send } = await pair(t, { batchSize: 4, maxPendingBatches: 1 })
  const stream = readable(rx, { highWaterMark: 1 })
  const reader = stream.getReader()
  const N = 100
  await send(texts(N))
  // Let the socket read whatever it is going to read while nobody pulls.
  let last = -1
  for (let i = 0; i < 50 && rx.stats().datagramsReceived !== last; i++) {
    last = rx.stats().datagramsReceived
    await sleep(100)
  }
  const taken = rx.stats().datagramsReceived
  t.true(taken < N, `read ${taken} of ${N} datagrams before anyone pulled`)
  t.log(`read ahead while paused: ${taken} datagrams`)
  t.deepEqual(await readTexts(reader, N), texts(N))
  reader.releaseLock()
})

test('readable(): cancel() leaves the socket open unless closeOnCancel', async (t) => {
  const { rx, send } = await pair(t)
  const reader = readable(rx).getReader()
  await send(['one'])
  t.deepEqual(await readTexts(reader, 1), ['one'])
  await reader.cancel()
  t.false(rx.closed)
  // The socket still works for other consumers.
  await send(['two'])
  const b = await rx.recvBatch({ timeoutMs: 15000 })
  t.is(b.data(0).toString(), 'two')

  const r2 = readable(rx, { closeOnCancel: true }).getReader()
  await r2.cancel()
  t.true(rx.closed)
})

test('readable(): the stream ends when the socket closes', async (t) => {
  const { rx } = await pair(t)
  const reader = readable(rx).getReader()
  const pending = reader.read()
  rx.close()
  const r = await withTimeout(pending, 'end of stream')
  t.true(r.done)
})

test('readable({ signal }): abort errors the stream with an AbortError; the socket stays open', async (t) => {
  const { rx, send } = await pair(t)
  const ac = new AbortController()
  const reader = readable(rx, { signal: ac.signal }).getReader()
  const pending = reader.read()
  ac.abort()
  const err = await t.throwsAsync(withTimeout(pending, 'abort'))
  t.is(err!.name, 'AbortError')
  t.false(rx.closed)
  await send(['after'])
  t.is((await rx.recvBatch({ timeoutMs: 15000 })).data(0).toString(), 'after')

  const pre = new AbortController()
  pre.abort()
  const r2 = readable(rx, { signal: pre.signal }).getReader()
  await t.throwsAsync(r2.read(), { name: 'AbortError' })
})

/** A loopback port nobody listens on (bound, read, closed). */
async function deadPort(): Promise<number> {
  const gone = await UdpSocket.bind({ address: '127.0.0.1' })
  const port = gone.localAddress().port
  gone.close()
  return port
}

test('readable(): a receive error errors the stream', async (t) => {
  const c = await UdpSocket.bind({ address: '127.0.0.1', connect: { address: '127.0.0.1', port: await deadPort() } })
  t.teardown(() => c.close())
  const reader = readable(c).getReader()
  const pending = reader.read()
  await c.sendBatch([{ data: 'anyone?' }])
  const err = await t.throwsAsync(withTimeout(pending, 'ECONNREFUSED'))
  t.is((err as NodeJS.ErrnoException).code, 'ECONNREFUSED')
  t.true(c.stats().recvErrors >= 1)
})

test('readable({ skipErrors: true }): a receive error that did arrive is skipped and the stream goes on', async (t) => {
  // The dead port is bound by the peer later; if someone else grabbed it meanwhile, retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await deadPort()
    const c = await UdpSocket.bind({ address: '127.0.0.1', connect: { address: '127.0.0.1', port } })
    t.teardown(() => c.close())
    const reader = readable(c, { skipErrors: true }).getReader()
    const pending = reader.read()
    let settled = false
    pending.then(
      () => (settled = true),
      () => (settled = true),
    )
    // Provoke ICMP port unreachable until the socket has really seen an error (bounded).
    for (let k = 0; k < 20 && c.stats().recvErrors === 0; k++) {
      await c.sendBatch([{ data: `anyone? ${k}` }]).catch(() => {})
      for (let w = 0; w < 50 && c.stats().recvErrors === 0; w++) await sleep(10)
    }
    t.true(c.stats().recvErrors >= 1, 'an ECONNREFUSED reached the socket')
    await sleep(20)
    t.false(settled, 'the read is still waiting, not errored')
    // The peer appears on the port: the same stream delivers its datagrams.
    let peer: UdpSocket
    try {
      peer = await UdpSocket.bind({ address: '127.0.0.1', port })
    } catch (e: any) {
      if (e.code === 'EADDRINUSE') continue
      throw e
    }
    t.teardown(() => peer.close())
    await peer.sendBatch(texts(5, 'after').map((data) => ({ data, address: '127.0.0.1', port: c.localAddress().port })))
    // The error reached JS before these datagrams (one ordered channel), so this read resolving
    // with them (not rejecting) is the proof the stream skipped the error.
    const first = await withTimeout(pending, 'the first batch after the error')
    t.false(first.done)
    const got: string[] = []
    for (let i = 0; i < first.value!.count; i++) got.push(first.value!.data(i).toString())
    got.push(...(await readTexts(reader, 5 - got.length)))
    t.deepEqual(got, texts(5, 'after'))
    c.close()
    t.true((await withTimeout(reader.read(), 'end')).done, 'the stream ends when the socket closes')
    return
  }
  t.fail('the dead port was taken by someone else three times')
})

test('writable(): messages and arrays of messages are sent; closing the stream leaves the socket open', async (t) => {
  const { rx, tx, port } = await pair(t)
  const w = writable(tx).getWriter()
  await w.write({ data: 'single', address: '127.0.0.1', port })
  await w.write([
    { data: 'a', address: '127.0.0.1', port },
    { data: ['b', 'c'], address: '127.0.0.1', port },
  ])
  await w.close()
  t.false(tx.closed)
  const got: string[] = []
  while (got.length < 3) {
    const b = await rx.recvBatch({ timeoutMs: 15000 })
    if (b.count === 0) break
    for (const m of b) got.push(m.data.toString())
  }
  t.deepEqual(got, ['single', 'a', 'bc'])

  const w2 = writable(tx, { closeOnEnd: true }).getWriter()
  await w2.close()
  t.true(tx.closed)
})

test('AbortSignal: UdpSocket.bind({ signal }) rejects when already aborted', async (t) => {
  const ac = new AbortController()
  ac.abort(new Error('not now'))
  const err = await t.throwsAsync(UdpSocket.bind({ address: '127.0.0.1', signal: ac.signal }))
  t.is(err!.name, 'AbortError')
  t.is((err as NodeJS.ErrnoException).code, 'ABORT_ERR')
  t.is((err!.cause as Error).message, 'not now')
})

test('AbortSignal: recvBatch({ signal }) rejects while waiting, and the socket keeps working', async (t) => {
  const { rx, send } = await pair(t)
  const ac = new AbortController()
  const pending = rx.recvBatch({ signal: ac.signal })
  ac.abort()
  const err = await t.throwsAsync(withTimeout(pending, 'abort'))
  t.is(err!.name, 'AbortError')
  t.is((err as NodeJS.ErrnoException).code, 'ABORT_ERR')
  await t.throwsAsync(rx.recvBatch({ signal: ac.signal }), { name: 'AbortError' })
  await send(['still here'])
  t.is((await rx.recvBatch({ timeoutMs: 15000 })).data(0).toString(), 'still here')
})

test('AbortSignal: sendBatch({ signal }) with an aborted signal sends nothing (sent: 0)', async (t) => {
  const { tx, rx, port } = await pair(t)
  const ac = new AbortController()
  ac.abort()
  const err = await t.throwsAsync(tx.sendBatch([{ data: 'x', address: '127.0.0.1', port }], { signal: ac.signal }))
  t.is(err!.name, 'AbortError')
  t.is((err as unknown as { sent: number }).sent, 0)
  t.is(tx.stats().datagramsSent, 0)
  t.is((await rx.recvBatch({ timeoutMs: 100 })).count, 0)
})
