// Lifetime: close semantics, process exit (child processes), ref/unref, worker threads.
import test from 'ava'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'
import { UdpSocket } from '../lib/index.js'
import { needs } from './backend.js'
import { Collector, FIXTURES, V4, caught, exitWithin, openLo, owned, ownedBaseline, portOf, range, runFixture, settleOwned, sleep, ticks, waitUntil } from './helpers.js'

// ---- close -------------------------------------------------------------------------------

test('close while a recvBatch is pending rejects it with ERR_SOCKET_CLOSED', async (t) => {
  const s = openLo(t, 4)
  const p1 = s.recvBatch()
  const p2 = s.recvBatch({ timeoutMs: 60_000 })
  await ticks()
  s.close()
  for (const p of [p1, p2]) {
    const err = await caught(() => p)
    t.is(err.code, 'ERR_SOCKET_CLOSED')
    t.true(err instanceof Error)
  }
})

test('after close: sends reject/throw ERR_SOCKET_CLOSED, recvBatch rejects, addresses throw', async (t) => {
  const s = openLo(t, 4)
  const peer = openLo(t, 4)
  s.close()
  t.true(s.closed)
  const err = await caught(() => s.sendBatch([{ data: 'x', address: V4, port: portOf(peer) }]))
  t.is(err.code, 'ERR_SOCKET_CLOSED')
  t.is(err.sent, 0)
  t.throws(() => s.trySendBatch([{ data: 'x', address: V4, port: portOf(peer) }]), { code: 'ERR_SOCKET_CLOSED' })
  t.is((await caught(() => s.recvBatch())).code, 'ERR_SOCKET_CLOSED')
  t.is((await caught(() => s.recvBatch({ timeoutMs: 10 }))).code, 'ERR_SOCKET_CLOSED')
  t.throws(() => s.localAddress(), { code: 'ERR_SOCKET_CLOSED' })
  t.throws(() => s.connect(V4, portOf(peer)), { code: 'ERR_SOCKET_CLOSED' })
  // An iterator started after close ends at once.
  const it = s[Symbol.asyncIterator]()
  t.deepEqual(await it.next(), { value: undefined, done: true })
})

test("double close is a no-op and 'close' is emitted once", async (t) => {
  const s = openLo(t, 4)
  let closes = 0
  s.on('close', () => closes++)
  s.close()
  t.notThrows(() => s.close())
  await ticks(10)
  s.close()
  await ticks(10)
  t.is(closes, 1)
  t.true(s.closed)
})

test('close ends a waiting for-await loop', async (t) => {
  const s = openLo(t, 4)
  const tx = openLo(t, 4)
  const batches: number[] = []
  const loop = (async () => {
    for await (const b of s) batches.push(b.count)
    return 'done'
  })()
  await tx.sendBatch([{ data: 'one', address: V4, port: portOf(s) }])
  t.true(await waitUntil(() => batches.length >= 1))
  s.close()
  t.is(await loop, 'done')
  t.deepEqual(batches, [1])
})

test('closing a socket with a listener, an iterator and a pending recvBatch under traffic settles everything', async (t) => {
  const s = openLo(t, 4, { recvBufferSize: 1 << 20 })
  const tx = openLo(t, 4)
  const c = new Collector(s)
  const pending = s.recvBatch().then(
    () => 'resolved',
    (e) => e.code,
  )
  const loop = (async () => {
    for await (const _ of s) {
      /* drain */
    }
    return 'ended'
  })()
  for (let k = 0; k < 5; k++) await tx.sendBatch(range(0, 200).map((i) => ({ data: `d${i}`, address: V4, port: portOf(s) })))
  t.true(await c.waitFor(1))
  s.close()
  t.is(await loop, 'ended')
  t.true(['resolved', 'ERR_SOCKET_CLOSED'].includes(await pending))
  const n = c.count
  await sleep(50)
  t.is(c.count, n, 'no batch is delivered after close')
})

// ---- process lifetime --------------------------------------------------------------------

async function sendNumbered(port: number, n: number) {
  const tx = UdpSocket.bindSync({ address: V4 })
  try {
    await tx.sendBatch(range(0, n).map((i) => ({ data: `datagram ${i}`, address: V4, port })))
  } finally {
    tx.close()
  }
}

for (const mode of ['recv-close', 'iterate-close']) {
  test(`a process exits by itself after close (${mode})`, async (t) => {
    const child = runFixture(t, 'child.js', [mode, '5'])
    const hello = await child.waitLine((l) => typeof l.port === 'number')
    t.truthy(hello, `the child reports its port (stderr: ${child.stderr()})`)
    await sendNumbered(hello.port, 5)
    const r = await exitWithin(child, 20_000)
    t.deepEqual(r, { code: 0, signal: null }, `the child exits with 0 by itself (stderr: ${child.stderr()})`)
    const done = child.lines.find((l) => 'received' in l)
    t.is(done && done.received, 5)
    if (mode === 'iterate-close') t.is(done.viaListener, 5)
    t.deepEqual(
      child.lines.filter((l) => 'error' in l),
      [],
    )
  })
}

test('a process exits by itself when close rejects a pending recvBatch', async (t) => {
  const child = runFixture(t, 'child.js', ['close-pending'])
  const r = await exitWithin(child, 20_000)
  t.deepEqual(r, { code: 0, signal: null }, child.stderr())
  t.truthy(child.lines.find((l) => l.rejected === 'ERR_SOCKET_CLOSED'), JSON.stringify(child.lines))
})

test("an unref()'d open socket (reading, with a pending recvBatch) lets the process exit", async (t) => {
  const child = runFixture(t, 'child.js', ['unref'])
  const r = await exitWithin(child, 20_000)
  t.deepEqual(r, { code: 0, signal: null }, child.stderr())
  t.truthy(child.lines.find((l) => l.ready), JSON.stringify(child.lines))
})

for (const mode of ['ref', 'unref-ref']) {
  test(`an open referenced socket keeps the process alive (${mode})`, async (t) => {
    const child = runFixture(t, 'child.js', [mode])
    const ready = await child.waitLine((l) => l.ready === true)
    t.truthy(ready, `the child got ready (stderr: ${child.stderr()})`)
    await sleep(1000)
    t.is(child.proc.exitCode, null, 'still running after 1 s')
    t.is(child.proc.signalCode, null)
    child.proc.kill('SIGKILL')
    const r = await child.exited
    t.is(r.signal, 'SIGKILL', 'it ended only because it was killed')
  })
}

test('an exception thrown by a batch listener reaches uncaughtException and receiving goes on', async (t) => {
  const child = runFixture(t, 'child.js', ['throwing-listener', '6'])
  const hello = await child.waitLine((l) => typeof l.port === 'number')
  t.truthy(hello, child.stderr())
  const tx = openLo(t, 4)
  const send = (from: number, to: number) => tx.sendBatch(range(from, to).map((i) => ({ data: `datagram ${i}`, address: V4, port: hello.port })))
  await send(0, 3)
  // The listener threw on its first batch; the rest is sent only after that.
  const first = await child.waitLine((l) => 'first' in l)
  t.truthy(first, `${JSON.stringify(child.lines)} ${child.stderr()}`)
  await send(3, 6)
  const r = await exitWithin(child, 20_000)
  t.deepEqual(r, { code: 0, signal: null }, child.stderr())
  const done = child.lines.find((l) => 'received' in l)
  t.truthy(done, JSON.stringify(child.lines))
  t.is(done.received, 6)
  t.true(done.calls >= 2, 'batches were delivered after the throw')
  t.deepEqual(done.uncaught, ['thrown by a batch listener'])
})

test('an unreachable unref()\'d socket is garbage-collected (its port freed); a referenced one is kept', async (t) => {
  const child = runFixture(t, 'child.js', ['gc'], ['--expose-gc'])
  const r = await exitWithin(child, 30_000)
  t.deepEqual(r, { code: 0, signal: null }, child.stderr())
  const res = child.lines.find((l) => 'unrefFreed' in l)
  t.truthy(res, JSON.stringify(child.lines))
  t.true(res.unrefFreed, 'the unref()\'d socket was collected and closed')
  t.false(res.refFreed, 'the referenced socket stays open')
})

// ---- worker threads ----------------------------------------------------------------------

function nextMessage(w: Worker, pred: (m: any) => boolean, timeoutMs = 30_000): Promise<any> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.off('message', onMessage)
      reject(new Error('no message from the worker in time'))
    }, timeoutMs)
    const onMessage = (m: any) => {
      if (m && m.error) {
        clearTimeout(timer)
        w.off('message', onMessage)
        reject(new Error(`worker: ${m.error}`))
      } else if (pred(m)) {
        clearTimeout(timer)
        w.off('message', onMessage)
        resolve(m)
      }
    }
    w.on('message', onMessage)
  })
}

test('a worker thread binds, receives datagrams sent from the main thread, reports, closes and ends', async (t) => {
  const w = new Worker(path.join(FIXTURES, 'worker.js'), { workerData: { mode: 'count', n: 300 } })
  t.teardown(() => w.terminate())
  const errors: unknown[] = []
  w.on('error', (e) => errors.push(e))
  const exit = new Promise<number>((resolve) => w.once('exit', resolve))
  const { port } = await nextMessage(w, (m) => typeof m.port === 'number')
  const tx = openLo(t, 4)
  const report = nextMessage(w, (m) => typeof m.count === 'number')
  for (let k = 0; k < 3; k++) {
    await tx.sendBatch(range(k * 100, k * 100 + 100).map((i) => ({ data: `datagram ${i}`, address: V4, port })))
  }
  const r = await report
  t.is(r.count, 300)
  t.is(r.bad, 0, 'every datagram had the expected content, in order')
  t.is(r.stats.datagramsReceived, 300)
  // The worker closed its socket, so it ends by itself.
  let timer: NodeJS.Timeout | undefined
  const code = await Promise.race([exit, new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running'), 20_000)))])
  clearTimeout(timer)
  t.is(code, 0, 'the worker ends by itself with code 0')
  t.deepEqual(errors, [])
})

// Serial (ava runs serial tests before the concurrent ones, alone): the baselines of what the
// package owns (helpers.owned()) are not disturbed by other tests' sockets.
// Native only: on the node:dgram fallback this scenario hits a Node 20 bug — a datagram arriving
// while the worker terminates aborts the whole process in node:dgram's own receive callback
// (FATAL ERROR v8::FromJust, node::AddressToJS from node::UDPWrap::OnRecv), as it would for a
// plain node:dgram user (docs/fallback.md).
needs.serial('native')('worker.terminate() while its socket is receiving does not crash the main process and leaves nothing open', async (t) => {
  const tx = openLo(t, 4)
  await ticks(10)
  const base = await ownedBaseline()
  for (let round = 0; round < 3; round++) {
    const w = new Worker(path.join(FIXTURES, 'worker.js'), { workerData: { mode: 'forever' } })
    t.teardown(() => w.terminate())
    const errors: unknown[] = []
    w.on('error', (e) => errors.push(e))
    const { port } = await nextMessage(w, (m) => typeof m.port === 'number')
    const receiving = nextMessage(w, (m) => m.receiving === true)
    // Traffic before and during the termination.
    let stop = false
    const flood = (async () => {
      for (let k = 0; k < 200 && !stop; k++) {
        await tx.sendBatch(range(0, 100).map((i) => ({ data: `x${i}`, address: V4, port })))
        await sleep(1)
      }
    })()
    await receiving
    t.true(await waitUntil(() => owned().udpSockets === base.udpSockets + 1, 10_000), `round ${round}: the worker's socket is open`)
    t.is(owned().ioThreads, base.ioThreads, `round ${round}: no thread per socket`)
    const code = await w.terminate()
    stop = true
    await flood
    t.is(code, 1, `round ${round}: terminate() resolves with exit code 1 (terminated, not ended by itself)`)
    t.deepEqual(errors, [], `round ${round}: no worker error`)
  }
  t.deepEqual(await settleOwned(base), base, "the terminated workers' sockets and timers are gone")
  // The main process still works: a round trip on fresh sockets.
  const rx = openLo(t, 4)
  const c = new Collector(rx)
  await tx.sendBatch(range(0, 10).map((i) => ({ data: `after ${i}`, address: V4, port: portOf(rx) })))
  t.true(await c.waitFor(10))
  t.deepEqual(c.texts(), range(0, 10).map((i) => `after ${i}`))
})

test.serial('worker.terminate() with an open, idle socket in the worker ends the worker and closes the socket', async (t) => {
  await ticks(10)
  const base = await ownedBaseline()
  const w = new Worker(path.join(FIXTURES, 'worker.js'), { workerData: { mode: 'forever' } })
  t.teardown(() => w.terminate())
  let exitCode: number | undefined
  w.once('exit', (c) => (exitCode = c))
  const { port } = await nextMessage(w, (m) => typeof m.port === 'number')
  t.is(owned().udpSockets, base.udpSockets + 1, "the worker's socket is open")
  const code = await w.terminate()
  t.is(code, 1, 'terminate() resolves with exit code 1')
  t.true(await waitUntil(() => exitCode !== undefined, 10_000), "the worker emitted 'exit'")
  t.is(exitCode, 1)
  t.deepEqual(await settleOwned(base), base, "the worker's socket and timer are gone")
  // Its port is free again: the socket was really closed, not just forgotten.
  const again = openLo(t, 4, { port })
  t.is(portOf(again), port)
})

test.serial('worker.terminate() with many open sockets of both APIs, some closed before, closes them all', async (t) => {
  // One environment-cleanup hook serves all of a worker's sockets: every one still open when
  // the worker is terminated is closed, and the ones closed before are not touched again.
  await ticks(10)
  const base = await ownedBaseline()
  const w = new Worker(path.join(FIXTURES, 'worker.js'), { workerData: { mode: 'many' } })
  t.teardown(() => w.terminate())
  const errors: unknown[] = []
  w.on('error', (e) => errors.push(e))
  const { ports } = await nextMessage(w, (m) => Array.isArray(m.ports))
  t.is(ports.length, 9, 'the worker has 9 sockets open (its first, 5 UdpSockets, 3 facade sockets)')
  t.is(owned().udpSockets, base.udpSockets + 9)
  t.is(await w.terminate(), 1)
  t.deepEqual(errors, [])
  t.deepEqual(await settleOwned(base), base, "the worker's sockets are all gone")
  for (const port of ports as number[]) t.is(portOf(openLo(t, 4, { port })), port, `port ${port} is free again`)
})

test('a receive error still pending at close is dropped: recvBatch and iterators then report the close', async (t) => {
  const throwaway = UdpSocket.bindSync({ address: V4 })
  const deadPort = portOf(throwaway)
  throwaway.close()
  const s = openLo(t, 4, { connect: { address: V4, port: deadPort } })
  // Nobody reads or listens for 'error': the ICMP error is kept for the next recvBatch.
  for (let i = 0; i < 20 && s.stats().pendingErrors === 0; i++) {
    await s.sendBatch([{ data: 'probe' }]).catch(() => {})
    await waitUntil(() => s.stats().pendingErrors > 0, 2000, 5)
  }
  t.is(s.stats().pendingErrors, 1)
  s.close()
  t.is((await caught(() => s.recvBatch())).code, 'ERR_SOCKET_CLOSED')
  t.deepEqual(await s[Symbol.asyncIterator]().next(), { value: undefined, done: true })
})

test('close while a large sendBatch is still being sent (sliced over event-loop turns) rejects it with ERR_SOCKET_CLOSED and sent', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: 4 << 20 })
  const c = new Collector(rx)
  const tx = UdpSocket.bindSync({ address: V4 })
  t.teardown(() => tx.close())
  const p = tx.sendBatch(range(0, 20_000).map((i) => ({ data: `d${i}`, address: V4, port: portOf(rx) })))
  const sentBefore = tx.stats().datagramsSent
  tx.close()
  const err = await caught(() => p)
  t.is(err.code, 'ERR_SOCKET_CLOSED')
  t.true(err.sent < 20_000, `not everything went (${err.sent})`)
  t.is(err.sent, sentBefore, 'sent counts what was handed to the kernel before the close')
  t.true(await c.waitFor(err.sent))
  await ticks()
  t.deepEqual(c.texts(), range(0, err.sent).map((i) => `d${i}`))
})
