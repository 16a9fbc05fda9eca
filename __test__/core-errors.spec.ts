// Errors: bad arguments (Node-style TypeError/RangeError with codes), kernel errors with
// errno/syscall (EMSGSIZE with how many went before, EADDRINUSE, ECONNREFUSED).
import test from 'ava'
import { CAPS, needs } from './backend.js'
import type { BindOptions, ErrnoError, OutgoingMessage } from '../lib/index.js'
import { UdpSocket, Collector, V4, V6, caught, open, openLo, portOf, pull, ticks, waitUntil } from './helpers.js'

/** Asserts that bind (async and sync) refuses `options` with this error class, code and argument name. */
async function refusesBind(t: any, options: unknown, type: typeof TypeError | typeof RangeError, code: string, name: string) {
  const what = JSON.stringify(options)
  const err = await caught(() => UdpSocket.bind(options as BindOptions))
  t.true(err instanceof type, `${what}: ${err}`)
  t.is(err.code, code, what)
  t.true(err.message.includes(name), `${what}: the message names ${name}: ${err.message}`)
  for (const make of [() => UdpSocket.bindSync(options as BindOptions), () => new UdpSocket(options as BindOptions)]) {
    let e: any
    try {
      make().close() // (never left open if it unexpectedly succeeds)
    } catch (x) {
      e = x
    }
    t.true(e instanceof type, `${what} (sync): ${e}`)
    t.is(e && e.code, code, `${what} (sync)`)
  }
}

test('bind refuses bad IP strings with ERR_INVALID_ARG_VALUE naming options.address', async (t) => {
  for (const address of ['256.1.1.1', 'localhost', '', '1.2.3', '::g', '127.0.0.1 ', 'fe80::1%']) {
    await refusesBind(t, { address }, TypeError, 'ERR_INVALID_ARG_VALUE', 'options.address')
  }
  await refusesBind(t, { address: 127 }, TypeError, 'ERR_INVALID_ARG_TYPE', 'options.address')
})

test('bind refuses bad ports: RangeError ERR_SOCKET_BAD_PORT, or TypeError for a non-number', async (t) => {
  for (const port of [-1, 65536, 1.5, NaN, Infinity]) {
    await refusesBind(t, { address: V4, port }, RangeError, 'ERR_SOCKET_BAD_PORT', 'options.port')
  }
  for (const port of ['80', null, {}]) {
    await refusesBind(t, { address: V4, port }, TypeError, 'ERR_INVALID_ARG_TYPE', 'options.port')
  }
})

test('bind refuses bad options: batchSize, maxDatagramSize, type, family mismatches', async (t) => {
  await refusesBind(t, { address: V4, batchSize: 0 }, RangeError, 'ERR_OUT_OF_RANGE', 'options.batchSize')
  await refusesBind(t, { address: V4, batchSize: 2000 }, RangeError, 'ERR_OUT_OF_RANGE', 'options.batchSize')
  await refusesBind(t, { address: V4, batchSize: 1025 }, RangeError, 'ERR_OUT_OF_RANGE', 'options.batchSize')
  await refusesBind(t, { address: V4, batchSize: 2.5 }, RangeError, 'ERR_OUT_OF_RANGE', 'options.batchSize')
  await refusesBind(t, { address: V4, batchSize: '64' }, TypeError, 'ERR_INVALID_ARG_TYPE', 'options.batchSize')
  await refusesBind(t, { address: V4, maxDatagramSize: 70000 }, RangeError, 'ERR_OUT_OF_RANGE', 'options.maxDatagramSize')
  await refusesBind(t, { address: V4, maxDatagramSize: 0 }, RangeError, 'ERR_OUT_OF_RANGE', 'options.maxDatagramSize')
  await refusesBind(t, { address: V4, maxPendingBatches: 0 }, RangeError, 'ERR_OUT_OF_RANGE', 'options.maxPendingBatches')
  await refusesBind(t, { address: V4, recvBufferSize: -5 }, RangeError, 'ERR_OUT_OF_RANGE', 'options.recvBufferSize')
  await refusesBind(t, { address: V4, ttl: 256 }, RangeError, 'ERR_OUT_OF_RANGE', 'options.ttl')
  await refusesBind(t, { type: 'udp5' }, TypeError, 'ERR_INVALID_ARG_VALUE', 'options.type')
  await refusesBind(t, { address: V6, type: 'udp4' }, TypeError, 'ERR_INVALID_ARG_VALUE', 'options.address')
  await refusesBind(t, { address: V4, ipv6Only: true }, TypeError, 'ERR_INVALID_ARG_VALUE', 'options.ipv6Only')
  await refusesBind(t, { address: V4, reuseAddr: 'yes' }, TypeError, 'ERR_INVALID_ARG_TYPE', 'options.reuseAddr')
  await refusesBind(t, { address: V4, portable: 1 }, TypeError, 'ERR_INVALID_ARG_TYPE', 'options.portable')
  await refusesBind(t, { address: V4, connect: { address: V6, port: 9 } }, TypeError, 'ERR_INVALID_ARG_VALUE', 'options.connect.address')
  await refusesBind(t, { address: V4, connect: { address: V4, port: 0 } }, RangeError, 'ERR_SOCKET_BAD_PORT', 'options.connect.port')
  await refusesBind(t, { address: V4, connect: 'x' }, TypeError, 'ERR_INVALID_ARG_TYPE', 'options.connect')
  await refusesBind(t, 42, TypeError, 'ERR_INVALID_ARG_TYPE', 'options')
})

test('bind with an aborted signal rejects with an AbortError', async (t) => {
  const err = await caught(() => UdpSocket.bind({ address: V4, signal: AbortSignal.abort() }))
  t.is(err.name, 'AbortError')
  t.is(err.code, 'ABORT_ERR')
})

test('EADDRINUSE when binding a port already in use (without reuseAddr); reuseAddr on both allows it', async (t) => {
  const a = openLo(t, 4)
  const port = portOf(a)
  const err = await caught(() => UdpSocket.bind({ address: V4, port }))
  t.is(err.code, 'EADDRINUSE')
  t.is(err.syscall, 'bind')
  t.is(typeof err.errno, 'number')
  t.true(err.errno < 0, 'errno is negative, as in Node')
  t.throws(() => UdpSocket.bindSync({ address: V4, port }), { code: 'EADDRINUSE' })
  const a6 = openLo(t, 6)
  t.is((await caught(() => UdpSocket.bind({ address: V6, port: portOf(a6) }))).code, 'EADDRINUSE')

  const r1 = open(t, { address: V4, reuseAddr: true })
  const r2 = open(t, { address: V4, port: portOf(r1), reuseAddr: true })
  t.is(portOf(r2), portOf(r1))
})

test('sendBatch refuses bad destinations with Node-style errors naming the argument', async (t) => {
  const tx = openLo(t, 4)
  const cases: Array<[OutgoingMessage, typeof TypeError | typeof RangeError, string, string]> = [
    [{ data: 'x', address: '256.1.1.1', port: 9 }, TypeError, 'ERR_INVALID_ARG_VALUE', 'messages[0].address'],
    [{ data: 'x', address: 'localhost', port: 9 }, TypeError, 'ERR_INVALID_ARG_VALUE', 'messages[0].address'],
    [{ data: 'x', address: '', port: 9 }, TypeError, 'ERR_INVALID_ARG_VALUE', 'messages[0].address'],
    [{ data: 'x', address: V6, port: 9 }, TypeError, 'ERR_INVALID_ARG_VALUE', 'messages[0].address'],
    [{ data: 'x', address: 7 as any, port: 9 }, TypeError, 'ERR_INVALID_ARG_TYPE', 'messages[0].address'],
    [{ data: 'x', address: V4, port: -1 }, RangeError, 'ERR_SOCKET_BAD_PORT', 'messages[0].port'],
    [{ data: 'x', address: V4, port: 65536 }, RangeError, 'ERR_SOCKET_BAD_PORT', 'messages[0].port'],
    [{ data: 'x', address: V4, port: 1.5 }, RangeError, 'ERR_SOCKET_BAD_PORT', 'messages[0].port'],
    [{ data: 'x', address: V4, port: 0 }, RangeError, 'ERR_SOCKET_BAD_PORT', 'messages[0].port'],
    [{ data: 'x', address: V4, port: '80' as any }, TypeError, 'ERR_INVALID_ARG_TYPE', 'messages[0].port'],
    [{ data: 'x', address: V4 }, TypeError, 'ERR_INVALID_ARG_TYPE', 'messages[0].port'],
  ]
  for (const [m, type, code, name] of cases) {
    const what = JSON.stringify(m)
    const err = await caught(() => tx.sendBatch([m]))
    t.true(err instanceof type, `${what}: ${err}`)
    t.is(err.code, code, what)
    t.true(err.message.includes(name), `${what}: ${err.message}`)
    t.throws(() => tx.trySendBatch([m]), { instanceOf: type, code }, what)
  }
  // The index in the name points at the bad message.
  const err = await caught(() =>
    tx.sendBatch([
      { data: 'ok', address: V4, port: 9 },
      { data: 'ok', address: V4, port: 9 },
      { data: 'bad', address: V4, port: 70000 },
    ]),
  )
  t.true(err.message.includes('messages[2].port'), err.message)
  t.is(tx.stats().datagramsSent, 0, 'a batch with a bad message sends nothing')
})

test('sendBatch refuses non-buffer payloads and non-arrays with TypeError', async (t) => {
  const tx = openLo(t, 4)
  const port = 9
  const bad: Array<[unknown, string]> = [
    [5, 'messages[0].data'],
    [{ a: 1 }, 'messages[0].data'],
    [null, 'messages[0].data'],
    [undefined, 'messages[0].data'],
    [new ArrayBuffer(4), 'messages[0].data'],
    [['ok', 5], 'messages[0].data[1]'],
    [[{}], 'messages[0].data[0]'],
  ]
  for (const [data, name] of bad) {
    const err = await caught(() => tx.sendBatch([{ data: data as any, address: V4, port }]))
    t.true(err instanceof TypeError, String(err))
    t.is(err.code, 'ERR_INVALID_ARG_TYPE')
    t.true(err.message.includes(name), err.message)
    t.throws(() => tx.trySendBatch([{ data: data as any, address: V4, port }]), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  }
  for (const messages of [undefined, null, 'x', { data: 'x' }]) {
    const err = await caught(() => tx.sendBatch(messages as any))
    t.true(err instanceof TypeError)
    t.is(err.code, 'ERR_INVALID_ARG_TYPE')
  }
  for (const m of [null, 5, 'x']) {
    const err = await caught(() => tx.sendBatch([m as any]))
    t.is(err.code, 'ERR_INVALID_ARG_TYPE')
    t.true(err.message.includes('messages[0]'))
  }
  t.is((await caught(() => tx.sendBatch([], 5 as any))).code, 'ERR_INVALID_ARG_TYPE')
})

test('connect() refuses bad arguments synchronously', (t) => {
  const s = openLo(t, 4)
  t.throws(() => s.connect('256.1.1.1', 9), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE', message: /address/ })
  t.throws(() => s.connect('localhost', 9), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => s.connect(V6, 9), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => s.connect(V4, 0), { instanceOf: RangeError, code: 'ERR_SOCKET_BAD_PORT', message: /port/ })
  t.throws(() => s.connect(V4, 65536), { instanceOf: RangeError, code: 'ERR_SOCKET_BAD_PORT' })
  t.throws(() => s.connect(V4, '80' as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.is(s.remoteAddress(), null, 'a refused connect leaves the socket unconnected')
})

test('recvBatch refuses bad options', async (t) => {
  const s = openLo(t, 4)
  for (const [options, type, code] of [
    [{ timeoutMs: -1 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ timeoutMs: NaN }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ timeoutMs: '5' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ signal: {} }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [5, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ] as const) {
    const err = await caught(() => s.recvBatch(options as any))
    t.true(err instanceof type, String(err))
    t.is(err.code, code)
  }
  t.throws(() => s.onBatch('x' as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => s.setRecvBufferSize(0), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => s.setSendBufferSize('1' as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
})

for (const portable of [false, true]) {
  const mode = portable ? 'portable (sendmsg)' : 'batched (sendmmsg)'
  const declare = portable ? test : needs('batched')
  declare(`${mode}: a datagram over 65 507 bytes rejects with EMSGSIZE, syscall, sent and index; the 2 before it arrive`, async (t) => {
    const rx = openLo(t, 4, { portable })
    const tx = openLo(t, 4, { portable })
    const c = new Collector(rx)
    const port = portOf(rx)
    const err = (await caught(() =>
      tx.sendBatch([
        { data: 'first', address: V4, port },
        { data: 'second', address: V4, port },
        { data: Buffer.alloc(65508), address: V4, port },
        { data: 'never', address: V4, port },
      ]),
    )) as ErrnoError & { sent: number; index: number }
    t.true(err instanceof Error)
    t.is(err.code, 'EMSGSIZE')
    t.is(err.syscall, portable ? 'sendmsg' : 'sendmmsg')
    t.true(err.errno < 0)
    t.is(err.sent, 2)
    t.is(err.index, 2)
    t.is(tx.stats().datagramsSent, 2)
    t.is(tx.stats().sendErrors, 1)
    // A marker sent afterwards arrives right after the two: nothing else was sent.
    await tx.sendBatch([{ data: 'marker', address: V4, port }])
    t.true(await c.waitFor(3))
    await ticks()
    t.deepEqual(c.texts(), ['first', 'second', 'marker'])

    // trySendBatch throws the same error synchronously.
    const sync = (await caught(() =>
      tx.trySendBatch([
        { data: 'a', address: V4, port },
        { data: Buffer.alloc(70000), address: V4, port },
      ]),
    )) as ErrnoError & { sent: number; index: number }
    t.is(sync.code, 'EMSGSIZE')
    t.is(sync.sent, 1)
    t.is(sync.index, 1)
    // The socket still sends afterwards.
    t.is(await tx.sendBatch([{ data: 'still works', address: V4, port }]), 1)
    t.true(await c.waitFor(5))
    t.deepEqual(c.texts(), ['first', 'second', 'marker', 'a', 'still works'])
  })
}

test('EMSGSIZE as the first datagram of a batch: sent 0, index 0', async (t) => {
  const tx = openLo(t, 6)
  const rx = openLo(t, 6)
  const err = await caught(() => tx.sendBatch([{ data: Buffer.alloc(65528), address: V6, port: portOf(rx) }]))
  t.is(err.code, 'EMSGSIZE')
  t.is(err.sent, 0)
  t.is(err.index, 0)
})

test('ECONNREFUSED on a connected socket without a listener does not stop later receives', async (t) => {
  // A port with nothing listening: bind a throwaway socket, note its port, close it.
  const throwaway = UdpSocket.bindSync({ address: V4 })
  const deadPort = portOf(throwaway)
  throwaway.close()

  const s = openLo(t, 4, { connect: { address: V4, port: deadPort } })
  t.deepEqual(s.remoteAddress(), { address: V4, port: deadPort, family: 'IPv4' })
  const seen: Array<{ via: string; err: any }> = []
  s.on('error', (err) => seen.push({ via: 'error event', err }))
  // Keep a receive pending too, so the error can surface either way.
  const pending = s.recvBatch().then(
    (b) => ({ batch: b }),
    (err) => {
      seen.push({ via: 'recvBatch', err })
      return { err }
    },
  )
  const refused = () => seen.some((x) => x.err && x.err.code === 'ECONNREFUSED')
  for (let i = 0; i < 50 && !refused(); i++) {
    try {
      await s.sendBatch([{ data: `probe ${i}` }])
    } catch (err) {
      seen.push({ via: 'sendBatch', err })
    }
    await waitUntil(refused, 200, 5)
  }
  t.true(refused(), `ECONNREFUSED surfaced (${seen.map((x) => `${x.via}: ${x.err && x.err.code}`)})`)
  for (const x of seen) {
    t.is(x.err.code, 'ECONNREFUSED', x.via)
    t.is(typeof x.err.syscall, 'string')
  }

  // Now a live peer: point the socket at it and check datagrams still arrive.
  const peer = openLo(t, 4)
  s.connect(V4, portOf(peer))
  t.deepEqual(s.remoteAddress(), { address: V4, port: portOf(peer), family: 'IPv4' })
  await peer.sendBatch([
    { data: 'after-1', address: V4, port: portOf(s) },
    { data: 'after-2', address: V4, port: portOf(s) },
  ])
  const r = await pending
  const got: string[] = []
  if ('batch' in r && r.batch) for (const m of r.batch) got.push(m.data.toString())
  for (const m of await pull(s, 2 - got.length)) got.push(m.data.toString())
  t.deepEqual(got, ['after-1', 'after-2'], 'the socket still receives after the error')
  // And sends.
  const pc = new Collector(peer)
  await s.sendBatch([{ data: 'reply' }])
  t.true(await pc.waitFor(1))
  t.deepEqual(pc.texts(), ['reply'])
  t.true(s.stats().recvErrors + s.stats().sendErrors >= 1)
})

test('a receive error with no error listener and no pending receive is kept for the next recvBatch', async (t) => {
  const throwaway = UdpSocket.bindSync({ address: V4 })
  const deadPort = portOf(throwaway)
  throwaway.close()
  const s = openLo(t, 4, { connect: { address: V4, port: deadPort } })
  // Nobody reads and nobody listens for 'error': the I/O thread fetches the socket error
  // and keeps it. (Should a later probe's send take the error first, probe again.)
  const sendErrors: string[] = []
  for (let i = 0; i < 20 && s.stats().pendingErrors === 0; i++) {
    try {
      await s.sendBatch([{ data: 'probe' }])
    } catch (e: any) {
      sendErrors.push(e.code)
    }
    await waitUntil(() => s.stats().pendingErrors > 0, 2000, 5)
  }
  t.true(sendErrors.every((c) => c === 'ECONNREFUSED'), String(sendErrors))
  t.is(s.stats().pendingErrors, 1)
  const err = await caught(() => s.recvBatch({ timeoutMs: 10_000 }))
  t.is(err.code, 'ECONNREFUSED')
  // Batched: fetched by recvmmsg. The fallback reads nothing while nobody consumes, so its next
  // send (or, were it reading, its receive) reports the error.
  if (CAPS.batched) t.is(err.syscall, 'recvmmsg')
  else t.true(['recvmsg', 'sendmsg'].includes(err.syscall), err.syscall)
  t.is(s.stats().pendingErrors, 0)
  // The error is consumed: the next recvBatch simply times out.
  const b = await s.recvBatch({ timeoutMs: 50 })
  t.is(b.count, 0)
})

test('errors from the kernel are plain Errors with code, errno and syscall', async (t) => {
  const a = openLo(t, 4)
  const err = (await caught(() => UdpSocket.bind({ address: V4, port: portOf(a) }))) as ErrnoError
  t.is(err.constructor, Error)
  t.true(err.message.includes('EADDRINUSE'))
  t.is(err.code, 'EADDRINUSE')
  t.is(err.errno, -98)
  t.is(err.syscall, 'bind')
})
