// Issue 11, receive side: nothing is lost (or stalls, or grows without bound) when the
// receiving API is misused: an iterator abandoned while a next() is pending, an async iterator
// left unread next to an onBatch listener (or started and abandoned in turn), a listener that
// leaves in the middle of a stream, a `for await` over an unref()'d socket that only its own
// pending promise references, and close() with batches received but not yet consumed.
// Real loopback sockets only; every wait is bounded and nothing asserts on timing.
import test from 'ava'
import { spawn } from 'node:child_process'
import * as path from 'node:path'
import type { Batch } from '../lib/index.js'
import { FIXTURES, V4, checkPayload, messagesTo, openLo, portOf, pull, range, sleep, ticks, waitUntil } from './helpers'
import type { UdpSocket } from './helpers'

/** lib/receive.ts: batches an async iterator may have unread before reading pauses. */
const ITERATOR_HIGH_WATER = 8

/** The sequence numbers carried by a batch (failing the test on a malformed datagram). */
function seqsOf(b: Batch): number[] {
  const out: number[] = []
  for (let i = 0; i < b.count; i++) {
    const r = checkPayload(b.data(i))
    if (typeof r === 'string') throw new Error(r)
    out.push(r)
  }
  return out
}

/**
 * True once the receive side is quiet: every batch the native layer counted has reached JS,
 * and either everything sent arrived or reading is paused (JS asked the I/O thread to stop).
 * `_reading` is the socket's own record of that request; no public API exposes it.
 */
function quiet(rx: UdpSocket, seenByJs: number, sent: number): boolean {
  const s = rx.stats()
  return seenByJs === s.datagramsReceived && (s.datagramsReceived + s.kernelDrops === sent || !(rx as any)._reading)
}

/**
 * Reads `it` in the background, adding each datagram's sequence number to `into` and calling
 * `onBatch` after each batch, until the iterator ends.
 */
function drain(it: AsyncIterator<Batch>, into: Set<number>, onBatch: () => void = () => {}): Promise<void> {
  return (async () => {
    for (;;) {
      const r = await it.next()
      if (r.done) return
      for (const s of seqsOf(r.value)) into.add(s)
      onBatch()
    }
  })()
}

/** Resolves with what `p` resolves with, or with `'still pending'` after `ms` (a bound on a
 * wait that must not hang the suite when the code under test is broken). */
async function within<T>(p: Promise<T>, ms = 10_000): Promise<T | 'still pending'> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<'still pending'>((resolve) => {
    timer = setTimeout(() => resolve('still pending'), ms)
  })
  try {
    return await Promise.race([p, limit])
  } finally {
    clearTimeout(timer)
  }
}

// ---- 8: iterator.return() while a next() is pending --------------------------------------

test('iterator.return() ends a pending next() with done; a later recvBatch gets every datagram', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  const it = rx[Symbol.asyncIterator]()
  let settled: IteratorResult<Batch> | 'rejected' | undefined
  it.next().then(
    (r) => (settled = r),
    () => (settled = 'rejected'),
  )
  t.deepEqual(await it.return!(), { value: undefined, done: true })
  await ticks()
  t.deepEqual(settled, { value: undefined, done: true }, 'the abandoned next() settled with done: true')

  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 40)))
  const got = await pull(rx, 40, 10_000)
  t.deepEqual(
    got.map((m) => checkPayload(m.data)),
    range(0, 40),
    'recvBatch receives every datagram: none went to the abandoned next()',
  )
  t.deepEqual(settled, { value: undefined, done: true }, 'the abandoned next() was never handed a batch')
})

test('iterator.return() with several next() pending ends them all; a new iterator gets every datagram', async (t) => {
  const rx = openLo(t, 4, { batchSize: 4 })
  const tx = openLo(t, 4)
  const it = rx[Symbol.asyncIterator]()
  const pending = [it.next(), it.next(), it.next()]
  await it.return!()
  t.deepEqual(await within(Promise.all(pending)), [
    { value: undefined, done: true },
    { value: undefined, done: true },
    { value: undefined, done: true },
  ])
  t.deepEqual(await it.next(), { value: undefined, done: true }, 'a returned iterator stays done')

  const it2 = rx[Symbol.asyncIterator]()
  const seqs = new Set<number>()
  const reading = drain(it2, seqs)
  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 40)))
  t.true(await waitUntil(() => seqs.size >= 40, 10_000), `the new iterator got ${seqs.size} of 40`)
  await it2.return!()
  t.is(await within(reading), undefined, 'the reader ended')
  t.deepEqual([...seqs].sort((a, b) => a - b), range(0, 40))
})

// ---- 9: an onBatch listener next to an unread async iterator -------------------------------

test('onBatch plus an iterator never read: unread batches stay bounded, reading pauses, nothing is lost', async (t) => {
  const inFlight = 2 // maxPendingBatches: batches already on their way when reading pauses
  const bound = ITERATOR_HIGH_WATER + inFlight
  const sent = 64
  const rx = openLo(t, 4, { batchSize: 1, maxPendingBatches: inFlight })
  const tx = openLo(t, 4)
  const heard = new Set<number>()
  let maxQueued = 0
  const sample = () => {
    maxQueued = Math.max(maxQueued, rx.stats().queuedBatches)
  }
  rx.onBatch((b) => {
    for (const s of seqsOf(b)) heard.add(s)
    queueMicrotask(sample) // after the batch was queued for the iterator
  })
  const it = rx[Symbol.asyncIterator]()
  t.teardown(() => it.return!())

  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, sent)))
  t.true(await waitUntil(() => quiet(rx, heard.size, sent), 20_000), `not quiet: ${JSON.stringify(rx.stats())}`)
  sample()
  t.true(maxQueued <= bound, `queuedBatches reached ${maxQueued}; the bound is ${bound}`)
  t.true(maxQueued >= ITERATOR_HIGH_WATER, `the iterator reads ahead up to its high-water mark (${maxQueued})`)
  t.true(heard.size < sent, `the listener waits with the iterator (it heard ${heard.size} of ${sent})`)

  // Reading the iterator resumes reading: everything sent reaches it (or was counted dropped).
  const read = new Set<number>()
  const reading = drain(it, read, sample)
  t.true(
    await waitUntil(() => read.size + rx.stats().kernelDrops >= sent, 20_000),
    `the iterator read ${read.size}, kernelDrops ${rx.stats().kernelDrops}`,
  )
  await it.return!()
  t.is(await within(reading), undefined, 'the reader ended')
  const drops = rx.stats().kernelDrops
  t.is(read.size + drops, sent, 'received by the iterator + kernelDrops === sent')
  t.true(await waitUntil(() => heard.size + drops >= sent, 10_000))
  t.is(heard.size + drops, sent, 'the listener, too, got everything not dropped')
  t.true(maxQueued <= bound, `queuedBatches stayed <= ${bound} (max ${maxQueued})`)
})

test('an idle iterator alone buffers at most its high-water mark plus the batches in flight', async (t) => {
  const inFlight = 16 // the default maxPendingBatches
  const bound = ITERATOR_HIGH_WATER + inFlight
  const sent = 100
  const rx = openLo(t, 4, { batchSize: 1 })
  const tx = openLo(t, 4)
  const it = rx[Symbol.asyncIterator]()
  t.teardown(() => it.return!())

  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, sent)))
  // Nothing is read: what reached JS is what is queued (one datagram per batch).
  t.true(
    await waitUntil(() => quiet(rx, rx.stats().queuedBatches, sent), 20_000),
    `not quiet: ${JSON.stringify(rx.stats())}`,
  )
  const queued = rx.stats().queuedBatches
  t.true(queued <= bound, `queuedBatches ${queued}; the bound is ${bound}`)
  t.true(queued >= ITERATOR_HIGH_WATER, `the iterator reads ahead up to its high-water mark (${queued})`)

  const read = new Set<number>()
  let maxQueued = queued
  const reading = drain(it, read, () => {
    maxQueued = Math.max(maxQueued, rx.stats().queuedBatches)
  })
  t.true(await waitUntil(() => read.size + rx.stats().kernelDrops >= sent, 20_000), `read ${read.size}`)
  await it.return!()
  t.is(await within(reading), undefined, 'the reader ended')
  t.is(read.size + rx.stats().kernelDrops, sent, 'received by the iterator + kernelDrops === sent')
  t.true(maxQueued <= bound, `queuedBatches stayed <= ${bound} (max ${maxQueued})`)
})

test('onBatch with iterators started and abandoned in turn: their unread batches do not pile up', async (t) => {
  const inFlight = 2
  const bound = ITERATOR_HIGH_WATER + inFlight
  const sent = 200
  const rx = openLo(t, 4, { batchSize: 1, maxPendingBatches: inFlight })
  const tx = openLo(t, 4)
  const heard = new Set<number>()
  rx.onBatch((b) => {
    for (const s of seqsOf(b)) heard.add(s)
  })
  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, sent)))
  for (let round = 0; round < 4; round++) {
    const it = rx[Symbol.asyncIterator]()
    t.true(await waitUntil(() => quiet(rx, heard.size, sent), 20_000), `round ${round}: not quiet: ${JSON.stringify(rx.stats())}`)
    const queued = rx.stats().queuedBatches
    t.true(queued <= bound, `round ${round}: queuedBatches ${queued}; the bound is ${bound}`)
    await it.return!()
    t.is(rx.stats().queuedBatches, 0, `round ${round}: the listener had every queued batch, so none is kept`)
  }
  // With no iterator left the listener reads on: everything sent arrives (or was counted dropped).
  t.true(await waitUntil(() => heard.size + rx.stats().kernelDrops >= sent, 20_000), `heard ${heard.size}`)
  t.is(heard.size + rx.stats().kernelDrops, sent)
  const s = rx.stats()
  rx.close()
  t.is(rx.stats().datagramsDiscarded, 0, 'nothing the listener had counts as discarded')
  t.is(rx.stats().datagramsReceived, s.datagramsReceived)
})

test('a listener that leaves in the middle of a stream: the next listener gets what is left, in order, none pile up', async (t) => {
  // Batches reach JS synchronously from the event loop, so none is ever "in flight" between the
  // native layer and JS: a listener that leaves from inside its callback stops reading at once
  // (within the same wake-up), and whatever a later wake-up receives waits for the next one.
  const sent = 1500
  const maxPending = 16 // the default maxPendingBatches
  const rx = openLo(t, 4, { batchSize: 1, recvBufferSize: 4 << 20 })
  const tx = openLo(t, 4)
  const order: number[] = []
  let heardBatches = 0
  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, sent)))
  let left = 0
  for (let round = 0; round < 5; round++) {
    const leftOver = rx.stats().queuedBatches
    t.true(leftOver <= maxPending, `round ${round}: ${leftOver} batches left over; they must not pile up`)
    let leftNow = false
    let thisRound = 0
    const off = rx.onBatch((b) => {
      heardBatches++
      thisRound++
      order.push(...seqsOf(b))
      if (!leftNow && thisRound > leftOver + 3) {
        leftNow = true
        off()
      }
    })
    if (!(await waitUntil(() => leftNow || order.length + rx.stats().kernelDrops >= sent, 20_000))) break
    if (!leftNow) {
      off()
      break
    }
    left++
    await ticks(5)
    const s = rx.stats()
    t.is(s.batchesReceived, heardBatches + s.queuedBatches, `round ${round}: every batch received was heard or waits`)
  }
  t.true(left >= 2, `the listener left mid-stream ${left} times`)
  rx.onBatch((b) => {
    heardBatches++
    order.push(...seqsOf(b))
  })
  t.true(await waitUntil(() => order.length + rx.stats().kernelDrops >= sent, 20_000), `heard ${order.length}`)
  t.is(order.length + rx.stats().kernelDrops, sent, 'every datagram heard once, or counted dropped')
  t.true(
    order.every((s, i) => i === 0 || s > order[i - 1]),
    'in order: the left-over batches came before any later one',
  )
})

// ---- 10: a pending pull on an unref()'d, otherwise unreachable socket ---------------------

interface Ran {
  code: number | null
  signal: NodeJS.Signals | null
  lines: any[]
  stderr: string
}

/**
 * Runs `node --expose-gc fixtures/misuse-gc.js <mode>` and resolves once the child's streams
 * closed (its output is then complete); kills it when it is still running after `limitMs`
 * (then `signal` is `'SIGKILL'`).
 */
function runGcFixture(mode: string, limitMs: number, stopWhen: (line: any) => boolean = () => false): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', path.join(FIXTURES, 'misuse-gc.js'), mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    const lines: any[] = []
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs)
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      out += chunk
      let nl
      while ((nl = out.indexOf('\n')) !== -1) {
        const line = out.slice(0, nl)
        out = out.slice(nl + 1)
        let parsed: any
        try {
          parsed = JSON.parse(line)
        } catch {
          parsed = { text: line }
        }
        lines.push(parsed)
        if (stopWhen(parsed)) child.kill('SIGKILL')
      }
    })
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk: string) => (err += chunk))
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, lines, stderr: err })
    })
  })
}

for (const mode of ['iterate', 'recv'] as const) {
  test(`${mode === 'iterate' ? 'for await' : 'recvBatch()'} on an unref()'d socket referenced only by its pending promise survives gc() and gets the datagram`, async (t) => {
    // A collected socket shows as { alive: false }: stop there instead of waiting out the limit.
    const r = await runGcFixture(mode, 60_000, (l) => l.alive === false || 'error' in l)
    t.deepEqual(r.lines.find((l) => 'alive' in l), { alive: true }, `the socket must not be collected: ${JSON.stringify(r.lines)} ${r.stderr}`)
    t.deepEqual(r.lines.find((l) => 'got' in l), { got: 'after-gc' }, `the datagram must arrive: ${JSON.stringify(r.lines)} ${r.stderr}`)
    t.deepEqual([r.code, r.signal], [0, null], 'the process then exited by itself')
  })
}

for (const mode of ['listener', 'facade'] as const) {
  const what = mode === 'listener' ? "UdpSocket with a 'batch'" : "facade socket with a 'message'"
  test(`a referenced ${what} listener that no variable holds keeps receiving across gc()`, async (t) => {
    const r = await runGcFixture(mode, 60_000, (l) => 'error' in l)
    t.deepEqual(r.lines.find((l) => 'got' in l), { got: 'after-gc' }, `the datagram must arrive: ${JSON.stringify(r.lines)} ${r.stderr}`)
    t.deepEqual([r.code, r.signal], [0, null], 'the process then exited by itself')
  })
}

test("a for await over an unref()'d socket does not keep the process alive", async (t) => {
  const r = await runGcFixture('exit', 30_000)
  t.deepEqual(r.lines, [{ ready: true }], r.stderr)
  t.deepEqual([r.code, r.signal], [0, null], 'exited by itself (SIGKILL would mean it was kept alive)')
})

// ---- 12: stats() after close, and what close() discards ------------------------------------

test('stats() after close() keeps the final counters', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  const seqs = await (async () => {
    await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 20)))
    return (await pull(rx, 20, 10_000)).map((m) => checkPayload(m.data))
  })()
  t.deepEqual(seqs, range(0, 20))
  const before = { rx: rx.stats(), tx: tx.stats() }
  rx.close()
  tx.close()
  const after = { rx: rx.stats(), tx: tx.stats() }
  t.is(after.tx.datagramsSent, 20)
  t.is(after.tx.datagramsSent, before.tx.datagramsSent)
  t.is(after.tx.sendSyscalls, before.tx.sendSyscalls)
  t.is(after.rx.datagramsReceived, 20)
  t.is(after.rx.bytesReceived, before.rx.bytesReceived)
  t.is(after.rx.batchesReceived, before.rx.batchesReceived)
  t.is(after.rx.recvSyscalls, before.rx.recvSyscalls)
  t.is(after.rx.datagramsDiscarded, 0, 'everything received was consumed')
  t.is(after.rx.queuedBatches, 0)
})

test('close() with batches queued for an iterator: datagramsReceived === delivered + datagramsDiscarded', async (t) => {
  const sent = 400
  const rx = openLo(t, 4, { batchSize: 16, recvBufferSize: 1 << 20 })
  const tx = openLo(t, 4)
  const delivered = new Set<number>()
  const it = rx[Symbol.asyncIterator]()
  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, sent)))
  const first = await it.next()
  t.false(first.done)
  for (const s of seqsOf(first.value)) delivered.add(s)
  t.true(await waitUntil(() => rx.stats().queuedBatches >= 2, 10_000), 'batches wait for the iterator')
  const before = rx.stats()
  rx.close()
  const check = (when: string) => {
    const s = rx.stats()
    t.is(s.datagramsReceived, delivered.size + s.datagramsDiscarded, `${when}: ${JSON.stringify(s)}`)
    t.true(s.datagramsReceived >= before.datagramsReceived, `${when}: counters survive close`)
    t.true(s.datagramsDiscarded > 0, `${when}: the batches queued at close are counted`)
  }
  check('at close')
  t.deepEqual(await it.next(), { value: undefined, done: true })
  // Batches still on their way to JS at close arrive later: counted, exactly, as discarded.
  await ticks(20)
  await sleep(20)
  check('after in-flight batches arrived')
})

test('close() from a listener in mid-stream: datagramsReceived === delivered + datagramsDiscarded', async (t) => {
  const sent = 3000
  const rx = openLo(t, 4, { batchSize: 8, recvBufferSize: 1 << 20 })
  const tx = openLo(t, 4)
  const delivered = new Set<number>()
  let batches = 0
  rx.onBatch((b) => {
    for (const s of seqsOf(b)) delivered.add(s)
    if (++batches === 3) rx.close() // more batches are on their way to JS by now, likely
  })
  const sending = tx.sendBatch(messagesTo(V4, portOf(rx), range(0, sent)))
  t.true(await waitUntil(() => rx.closed, 20_000), 'the listener closed the socket')
  await sending
  const check = (when: string) => {
    const s = rx.stats()
    t.is(s.datagramsReceived, delivered.size + s.datagramsDiscarded, `${when}: ${JSON.stringify(s)}`)
    t.true(s.datagramsReceived >= delivered.size && delivered.size > 0, when)
  }
  check('once closed')
  await ticks(20)
  await sleep(20)
  check('after in-flight batches arrived')
})

test('close() with a listener and an unread iterator: batches the listener saw are not discarded', async (t) => {
  const rx = openLo(t, 4, { batchSize: 4 })
  const tx = openLo(t, 4)
  const heard = new Set<number>()
  rx.onBatch((b) => {
    for (const s of seqsOf(b)) heard.add(s)
  })
  const it = rx[Symbol.asyncIterator]()
  await tx.sendBatch(messagesTo(V4, portOf(rx), range(0, 12)))
  t.true(await waitUntil(() => heard.size >= 12, 10_000))
  t.true(rx.stats().queuedBatches > 0, 'the iterator has batches unread')
  rx.close()
  const s = rx.stats()
  t.is(s.datagramsReceived, 12)
  t.is(s.datagramsDiscarded, 0, 'the listener consumed them')
  t.deepEqual(await it.next(), { value: undefined, done: true })
})
