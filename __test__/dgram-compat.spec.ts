// Node's documented dgram behaviours, each run against node:dgram and against the
// udp-mmsg/dgram facade: the two runs must produce the same observations (ephemeral ports are
// replaced by placeholders). Loopback only; every wait is bounded; sockets closed in teardown.
import test, { type ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import {
  IMPLS,
  type DgramLike,
  type Socket,
  callback,
  messages,
  normalizePorts,
  sockets,
  thrown,
  waitEvent,
} from './dgram-harness.js'

const ROOT = join(__dirname, '..')

type Sockets = ReturnType<typeof sockets>
type Scenario = (d: DgramLike, S: Sockets, t: ExecutionContext) => Promise<unknown>

/** Runs `scenario` on node:dgram, then on the facade; their results must be deep-equal. */
function compat(title: string, scenario: Scenario, check?: (t: ExecutionContext, nodeResult: any) => void) {
  test(`${title} [same as node:dgram]`, async (t) => {
    const results: Record<string, unknown> = {}
    for (const [name, d] of IMPLS) results[name] = await scenario(d, sockets(t), t)
    t.deepEqual(results['udp-mmsg/dgram'], results['node:dgram'])
    if (check) check(t, results['node:dgram'])
  })
}

const portsOf = (named: Record<string, Socket>) => {
  const out: Record<number, string> = {}
  for (const [name, s] of Object.entries(named)) out[s.address().port] = name
  return out
}

compat(
  "bind(0, address, cb): 'listening', the callback, address(); bind again throws ERR_SOCKET_ALREADY_BOUND",
  async (d, S) => {
    const s = S.add(d.createSocket('udp4'))
    const log: unknown[] = []
    s.on('listening', () => log.push('listening event'))
    const { cb, done } = callback('bind callback')
    const ret = s.bind(0, '127.0.0.1', () => {
      log.push('bind callback')
      cb()
    })
    log.push(ret === s ? 'bind returns this' : 'bind returns something else')
    log.push(thrown(() => s.bind(0)))
    await done
    log.push(thrown(() => s.bind(0, '127.0.0.1')))
    const a = s.address()
    return { log, address: a.address, family: a.family, portOk: Number.isInteger(a.port) && a.port > 0, keys: Object.keys(a).sort() }
  },
  (t, r) => {
    t.is(r.log[1].code, 'ERR_SOCKET_ALREADY_BOUND')
    t.deepEqual(r.log.slice(2), ['listening event', 'bind callback', { name: 'Error', code: 'ERR_SOCKET_ALREADY_BOUND', message: 'Socket is already bound' }])
    t.is(r.address, '127.0.0.1')
    t.true(r.portOk)
  },
)

compat('bind({ port, address }) and udp6 on ::1', async (d, S) => {
  const s = S.add(d.createSocket('udp6'))
  const { cb, done } = callback('bind callback')
  s.bind({ port: 0, address: '::1' }, cb)
  await done
  const { address, family } = s.address()
  return { address, family }
})

compat(
  "send/receive: 'message' gets a Buffer and rinfo { address, family, port, size }; the callback gets the byte count",
  async (d, S) => {
    const rx = await S.bound(d)
    const tx = await S.bound(d)
    const got = messages(rx, 1)
    const { cb, done } = callback<[Error | null, number]>('send callback')
    tx.send('hello', rx.address().port, '127.0.0.1', cb)
    const [err, bytes] = await done
    const [m] = await got
    return normalizePorts({ err, bytes, m }, portsOf({ rx, tx }))
  },
  (t, r) => {
    t.deepEqual(r.m.rinfo, { address: '127.0.0.1', family: 'IPv4', port: 'tx', size: 5 })
    t.is(r.bytes, 5)
  },
)

compat(
  'payload forms: string, Buffer, TypedArray, DataView, arrays of them, offset/length, empty',
  async (d, S) => {
    const rx = await S.bound(d)
    const tx = await S.bound(d)
    const port = rx.address().port
    const payloads: Array<[string, (cb: (err: Error | null, bytes?: number) => void) => void]> = [
      ['string', (cb) => tx.send('text', port, '127.0.0.1', cb)],
      ['Buffer', (cb) => tx.send(Buffer.from('buffer'), port, '127.0.0.1', cb)],
      ['Uint8Array', (cb) => tx.send(new Uint8Array([0x75, 0x38]), port, '127.0.0.1', cb)],
      ['Uint16Array', (cb) => tx.send(new Uint16Array([0x4241]), port, '127.0.0.1', cb)],
      ['DataView', (cb) => tx.send(new DataView(new Uint8Array([0x64, 0x76, 0x21]).buffer, 1, 2), port, '127.0.0.1', cb)],
      ['array', (cb) => tx.send(['a', Buffer.from('b'), new Uint8Array([0x63])], port, '127.0.0.1', cb)],
      ['Buffer offset/length', (cb) => tx.send(Buffer.from('abcdef'), 1, 3, port, '127.0.0.1', cb)],
      ['string offset/length', (cb) => tx.send('abcdef', 2, 2, port, '127.0.0.1', cb)],
      ['empty Buffer', (cb) => tx.send(Buffer.alloc(0), port, '127.0.0.1', cb)],
      ['empty array', (cb) => tx.send([], port, '127.0.0.1', cb)],
    ]
    const got = messages(rx, payloads.length)
    // All in the same tick: the facade sends them as one batch.
    const results = payloads.map(([name, send]) => {
      const { cb, done } = callback<[Error | null, number?]>(name)
      send(cb)
      return done.then(([err, bytes]) => ({ name, err, bytes }))
    })
    const callbacks = await Promise.all(results)
    const msgs = (await got).map((m) => ({ text: m.text, size: m.rinfo.size, isBuffer: m.isBuffer }))
    return { callbacks, msgs }
  },
  (t, r) => {
    t.deepEqual(
      r.msgs.map((m: any) => m.text),
      ['text', 'buffer', 'u8', 'AB', 'v!', 'abc', 'bcd', 'cd', '', ''],
    )
    t.deepEqual(
      r.callbacks.map((c: any) => c.bytes),
      [4, 6, 2, 2, 2, 3, 3, 2, 0, 0],
    )
  },
)

compat('many sends in one tick: every callback, every datagram, in order', async (d, S) => {
  const rx = await S.bound(d)
  const tx = await S.bound(d)
  const N = 48
  const got = messages(rx, N)
  const dones = []
  for (let i = 0; i < N; i++) {
    const { cb, done } = callback<[Error | null, number]>(`send ${i}`)
    tx.send(`datagram ${i}`, rx.address().port, '127.0.0.1', cb)
    dones.push(done)
  }
  const cbs = await Promise.all(dones)
  return { cbs, texts: (await got).map((m) => m.text) }
})

compat('send without an address goes to 127.0.0.1 (udp4) / ::1 (udp6)', async (d, S) => {
  const out: unknown[] = []
  for (const type of ['udp4', 'udp6'] as const) {
    const rx = await S.bound(d, type)
    const tx = await S.bound(d, type)
    const got = messages(rx, 2)
    const a = callback<[Error | null, number]>('send a')
    const b = callback<[Error | null, number]>('send b')
    tx.send('a', rx.address().port, a.cb)
    tx.send('b', rx.address().port, undefined, b.cb)
    out.push(await a.done, await b.done, normalizePorts(await got, portsOf({ rx, tx })))
  }
  return out
})

compat(
  "connect: 'connect' event and callback, remoteAddress(), sends without a destination; disconnect()",
  async (d, S) => {
    const rx = await S.bound(d)
    const c = await S.bound(d)
    // (Taken now: Linux forgets a port-0 binding on disconnect and picks a new one later.)
    const ports = portsOf({ rx, c })
    const log: unknown[] = []
    log.push(thrown(() => c.remoteAddress()))
    log.push(thrown(() => c.disconnect()))
    const event = waitEvent(c, 'connect')
    const { cb, done } = callback<[Error?]>('connect callback')
    log.push(c.connect(rx.address().port, '127.0.0.1', cb))
    log.push(thrown(() => c.connect(rx.address().port)))
    log.push(await done, (await event).length)
    log.push(c.remoteAddress())
    log.push(thrown(() => c.connect(rx.address().port)))
    log.push(thrown(() => c.send('x', 0, 1, rx.address().port, '127.0.0.1')))
    log.push(thrown(() => c.send('x', 0, 1, 1234)))
    const got = messages(rx, 3)
    const s1 = callback<[Error | null, number]>('send 1')
    const s2 = callback<[Error | null, number]>('send 2')
    const s3 = callback<[Error | null, number]>('send 3')
    c.send('one', s1.cb)
    c.send(Buffer.from('abcdef'), 1, 3, s2.cb)
    c.send(['t', 'w', 'o'], s3.cb)
    log.push(await s1.done, await s2.done, await s3.done, await got)
    c.disconnect()
    log.push(thrown(() => c.remoteAddress()))
    log.push(thrown(() => c.disconnect()))
    log.push(thrown(() => c.send('x')))
    // Unconnected again: sends need a destination, and work.
    const again = messages(rx, 1)
    const s4 = callback<[Error | null, number]>('send 4')
    c.send('again', rx.address().port, '127.0.0.1', s4.cb)
    log.push(await s4.done, (await again).map((m) => m.text))
    return normalizePorts(log, ports)
  },
  (t, r) => {
    t.is(r[0].code, 'ERR_SOCKET_DGRAM_NOT_CONNECTED')
    t.deepEqual(r[6], { address: '127.0.0.1', family: 'IPv4', port: 'rx' })
    t.is(r[7].code, 'ERR_SOCKET_DGRAM_IS_CONNECTED')
    t.is(r[8].code, 'ERR_SOCKET_DGRAM_IS_CONNECTED')
    t.deepEqual(
      r[13].map((m: any) => m.text),
      ['one', 'bcd', 'two'],
    )
    t.is(r[16].code, 'ERR_SOCKET_BAD_PORT')
  },
)

compat(
  "close(cb): returns this, 'close' event then callback; afterwards everything throws ERR_SOCKET_DGRAM_NOT_RUNNING",
  async (d, S) => {
    const log: unknown[] = []
    for (const bind of [true, false]) {
      const s = bind ? await S.bound(d) : S.add(d.createSocket('udp4'))
      s.on('close', () => log.push('close event'))
      const { cb, done } = callback('close callback')
      const ret = s.close(() => {
        log.push('close callback')
        cb()
      })
      log.push(ret === s)
      log.push(thrown(() => s.close()))
      log.push(thrown(() => s.send('x', 1234, '127.0.0.1')))
      log.push(thrown(() => s.address()))
      log.push(thrown(() => s.bind(0)))
      log.push('end of tick')
      await done
    }
    return log
  },
  (t, r) => {
    t.is(r[1].code, 'ERR_SOCKET_DGRAM_NOT_RUNNING')
    t.is(r[2].code, 'ERR_SOCKET_DGRAM_NOT_RUNNING')
    t.deepEqual(r.slice(6, 8), ['close event', 'close callback'])
  },
)

compat(
  'argument errors: bad type, bad ports, bad buffers, unbound socket calls',
  async (d, S) => {
    const u = S.add(d.createSocket('udp4'))
    const s = await S.bound(d)
    return {
      badType: thrown(() => S.add(d.createSocket('udp5' as 'udp4'))),
      badTypeOptions: thrown(() => S.add(d.createSocket({ type: 'tcp' as 'udp4' }))),
      // createSocket checks the buffer-size options itself (a truthy value must be a uint32).
      recvSizeString: thrown(() => S.add(d.createSocket({ type: 'udp4', recvBufferSize: 'big' as unknown as number }))),
      sendSizeNegative: thrown(() => S.add(d.createSocket({ type: 'udp4', sendBufferSize: -1 }))),
      recvSizeFraction: thrown(() => S.add(d.createSocket({ type: 'udp4', recvBufferSize: 1.5 }))),
      sendSizeHuge: thrown(() => S.add(d.createSocket({ type: 'udp4', sendBufferSize: 2 ** 33 }))),
      sizeZeroAndNaN: thrown(() => S.add(d.createSocket({ type: 'udp4', recvBufferSize: 0, sendBufferSize: NaN }))),
      sizeCheckedBeforeType: thrown(() => S.add(d.createSocket({ type: 'tcp' as 'udp4', recvBufferSize: 'x' as unknown as number }))),
      sendPort0: thrown(() => s.send('x', 0, '127.0.0.1')),
      sendPort70000: thrown(() => s.send('x', 70000, '127.0.0.1')),
      sendPortStr: thrown(() => s.send('x', 'abc' as unknown as number, '127.0.0.1')),
      sendNoPort: thrown(() => (s as any).send('x')),
      sendNumber: thrown(() => s.send(5 as unknown as string, 1234, '127.0.0.1')),
      sendBadList: thrown(() => s.send([1, 2] as unknown as string[], 1234, '127.0.0.1')),
      sendBadAddress: thrown(() => s.send('x', 1234, 42 as unknown as string)),
      sendOffset: thrown(() => s.send(Buffer.alloc(3), 5, 1, 1234, '127.0.0.1')),
      sendLength: thrown(() => s.send(Buffer.alloc(3), 1, 5, 1234, '127.0.0.1')),
      connectPort0: thrown(() => s.connect(0)),
      connectPort70000: thrown(() => s.connect(70000, '127.0.0.1')),
      setRecvNegative: thrown(() => s.setRecvBufferSize(-1)),
      setSendFraction: thrown(() => s.setSendBufferSize(1.5)),
      unboundAddress: thrown(() => u.address()),
      unboundRemote: thrown(() => u.remoteAddress()),
      unboundGetRecv: thrown(() => u.getRecvBufferSize()),
      unboundGetSend: thrown(() => u.getSendBufferSize()),
      unboundDisconnect: thrown(() => u.disconnect()),
      setTTLType: thrown(() => s.setTTL('x' as unknown as number)),
      setTTL0: thrown(() => s.setTTL(0)),
    }
  },
  (t, r) => {
    t.is(r.badType.code, 'ERR_SOCKET_BAD_TYPE')
    t.is(r.recvSizeString.code, 'ERR_INVALID_ARG_TYPE')
    t.is(r.sendSizeNegative.code, 'ERR_OUT_OF_RANGE')
    t.is(r.sizeZeroAndNaN, 'no throw')
    t.is(r.sendPort70000.code, 'ERR_SOCKET_BAD_PORT')
    t.is(r.unboundGetRecv.code, 'ERR_SOCKET_BUFFER_SIZE')
    t.is(r.setRecvNegative.code, 'ERR_SOCKET_BAD_BUFFER_SIZE')
  },
)

compat(
  'buffer sizes: get returns the kernel value (twice what was set), also for createSocket options',
  async (d, S) => {
    const s = await S.bound(d)
    s.setRecvBufferSize(65536)
    s.setSendBufferSize(32768)
    const o = S.add(d.createSocket({ type: 'udp4', recvBufferSize: 49152, sendBufferSize: 40960 }))
    const listening = waitEvent(o, 'listening')
    o.bind(0, '127.0.0.1')
    await listening
    return {
      recv: s.getRecvBufferSize(),
      send: s.getSendBufferSize(),
      optRecv: o.getRecvBufferSize(),
      optSend: o.getSendBufferSize(),
      set0: s.setRecvBufferSize(0),
      afterSet0: s.getRecvBufferSize(),
    }
  },
  (t, r) => {
    t.is(r.recv, 131072)
    t.is(r.send, 65536)
    t.is(r.optRecv, 98304)
    t.is(r.optSend, 81920)
  },
)

compat(
  'a send error (EMSGSIZE) goes to the callback as `send EMSGSIZE host:port`; without a callback it is dropped',
  async (d, S) => {
    const rx = await S.bound(d)
    const tx = await S.bound(d)
    const errors: unknown[] = []
    tx.on('error', (e) => errors.push(e.message))
    const { cb, done } = callback<[NodeJS.ErrnoException | null, number?]>('send callback')
    tx.send(Buffer.alloc(70000), rx.address().port, '127.0.0.1', cb)
    const [err, bytes] = await done
    tx.send(Buffer.alloc(70000), rx.address().port, '127.0.0.1')
    // A datagram sent after the failing ones arrives: the socket keeps working.
    const got = messages(rx, 1)
    tx.send('after', rx.address().port, '127.0.0.1')
    const [m] = await got
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number }
    return normalizePorts(
      {
        err: { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, address: e.address, port: e.port, keys: Object.keys(e).sort() },
        bytes,
        errors,
        after: m.text,
      },
      portsOf({ rx, tx }),
    )
  },
  (t, r) => {
    t.is(r.err.code, 'EMSGSIZE')
    t.is(r.err.message, 'send EMSGSIZE 127.0.0.1:rx')
    t.deepEqual(r.errors, [])
  },
)

compat(
  "the sends after a failing one go out in the same turn: other sockets' callbacks come after theirs",
  async (d, S) => {
    const rx = await S.bound(d)
    const a = await S.bound(d)
    const b = await S.bound(d)
    const port = rx.address().port
    const order: string[] = []
    const all = new Promise<void>((resolve) => {
      const note = (what: string) => (e: NodeJS.ErrnoException | null) => {
        order.push(`${what}:${e ? e.code : 'ok'}`)
        if (order.length === 4) resolve()
      }
      a.send(Buffer.alloc(70000), port, '127.0.0.1', note('a1'))
      a.send('a2', port, '127.0.0.1', note('a2'))
      a.send('a3', port, '127.0.0.1', note('a3'))
      b.send('b1', port, '127.0.0.1', note('b1'))
    })
    const got = messages(rx, 3)
    await all
    return { order, received: (await got).map((m) => m.text).sort() }
  },
  (t, r) => t.deepEqual(r.order, ['a1:EMSGSIZE', 'a2:ok', 'a3:ok', 'b1:ok']),
)

compat(
  "ICMP port unreachable on a connected socket: 'error' event `recvmsg ECONNREFUSED`",
  async (d, S) => {
    // A port nobody listens on: bind one, note it, close it.
    const gone = await S.bound(d)
    const port = gone.address().port
    gone.close()
    const c = await S.bound(d)
    const connected = callback('connect')
    c.connect(port, '127.0.0.1', connected.cb)
    await connected.done
    const error = waitEvent(c, 'error')
    c.send('anyone?')
    const [err] = (await error) as [NodeJS.ErrnoException]
    return { code: err.code, syscall: err.syscall, message: err.message }
  },
  (t, r) => t.is(r.code, 'ECONNREFUSED'),
)

compat("host names are resolved with dns.lookup: 'localhost'", async (d, S) => {
  const rx = S.add(d.createSocket('udp4'))
  const { cb, done } = callback('bind')
  rx.bind(0, 'localhost', cb)
  await done
  const tx = await S.bound(d)
  const got = messages(rx, 1)
  const sent = callback<[Error | null, number]>('send')
  tx.send('via localhost', rx.address().port, 'localhost', sent.cb)
  return normalizePorts({ address: rx.address().address, sent: await sent.done, got: await got }, portsOf({ rx, tx }))
})

compat("createSocket({ lookup }): a custom resolver, its errors go to the callback or 'error'", async (d, S) => {
  const asked: unknown[] = []
  const lookup = (host: string, family: unknown, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void) => {
    asked.push([host, family])
    if (host === 'rx.test') cb(null, '127.0.0.1', 4)
    else cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }), '', 0)
  }
  const rx = await S.bound(d)
  const tx = S.add(d.createSocket({ type: 'udp4', lookup: lookup as any }))
  const { cb, done } = callback('bind')
  tx.bind(0, 'rx.test', cb)
  await done
  const got = messages(rx, 1)
  const ok = callback<[Error | null, number]>('send ok')
  tx.send('resolved', rx.address().port, 'rx.test', ok.cb)
  const bad = callback<[NodeJS.ErrnoException | null]>('send bad')
  tx.send('lost', rx.address().port, 'bad.test', bad.cb)
  const errorEvent = waitEvent(tx, 'error')
  tx.send('lost too', rx.address().port, 'bad.test')
  const [err] = await bad.done
  const [evErr] = (await errorEvent) as [Error]
  return normalizePorts({ asked, ok: await ok.done, got: await got, err: err && err.message, evErr: evErr.message }, portsOf({ rx, tx }))
})

compat("createSocket({ signal }): aborting closes the socket ('close' event)", async (d, S) => {
  const ac = new AbortController()
  const s = S.add(d.createSocket({ type: 'udp4', signal: ac.signal }))
  const listening = waitEvent(s, 'listening')
  s.bind(0, '127.0.0.1')
  await listening
  const closed = waitEvent(s, 'close')
  ac.abort()
  await closed
  return thrown(() => s.address())
})

compat('ref()/unref() return the socket; an unref()ed socket lets the process exit', async (d, S) => {
  const s = await S.bound(d)
  const same = s.unref() === s && s.ref() === s
  const mod = d === IMPLS[0][1] ? 'node:dgram' : 'udp-mmsg/dgram'
  const script = (ref: boolean) => `
    const dgram = require(${JSON.stringify(mod)})
    const s = dgram.createSocket('udp4')
    s.bind(0, '127.0.0.1', () => {
      ${ref ? 's.unref(); s.ref()' : 's.unref()'}
      console.log('bound')
      // Fires only while something keeps the process alive.
      setTimeout(() => { console.log('still alive'); s.close() }, 300).unref()
    })
    process.on('exit', () => console.log('exit'))
  `
  const run = (ref: boolean) => {
    const r = spawnSync(process.execPath, ['-e', script(ref)], { cwd: ROOT, encoding: 'utf8', timeout: 60000 })
    return { status: r.status, stdout: r.stdout.trim().split('\n') }
  }
  return { same, unref: run(false), ref: run(true) }
}, (t, r) => {
  t.deepEqual(r.unref.stdout, ['bound', 'exit'])
  t.deepEqual(r.ref.stdout, ['bound', 'still alive', 'exit'])
})

compat("send() right after bind() waits for the bind; a failed bind emits 'error' `bind EADDRINUSE host:port`", async (d, S) => {
  const rx = await S.bound(d)
  const tx = S.add(d.createSocket('udp4'))
  tx.bind(0, '127.0.0.1')
  const got = messages(rx, 1)
  const sent = callback<[Error | null, number]>('send')
  tx.send('early', rx.address().port, '127.0.0.1', sent.cb)
  const taken = S.add(d.createSocket('udp4'))
  const error = waitEvent(taken, 'error')
  taken.bind(rx.address().port, '127.0.0.1')
  const [err] = (await error) as [NodeJS.ErrnoException & { address?: string; port?: number }]
  return normalizePorts(
    {
      sent: await sent.done,
      got: await got,
      err: { message: err.message, code: err.code, syscall: err.syscall, address: err.address, port: err.port },
    },
    portsOf({ rx, tx }),
  )
})

compat('socket options: setBroadcast, setTTL, multicast setters and memberships (results and errors)', async (d, S) => {
  const u = S.add(d.createSocket('udp4'))
  const s = await S.bound(d)
  const unbound = ['setBroadcast', 'setTTL', 'setMulticastTTL', 'setMulticastLoopback', 'setMulticastInterface'].map((m) =>
    thrown(() => (u as any)[m](m === 'setMulticastInterface' ? '127.0.0.1' : 1)),
  )
  const r = (fn: () => unknown) => {
    const e = thrown(fn)
    return e === 'no throw' ? { returned: fn() } : e
  }
  return {
    unbound,
    broadcast: r(() => s.setBroadcast(true)),
    ttl: r(() => s.setTTL(5)),
    ttl0: r(() => s.setTTL(0)),
    ttl256: r(() => s.setTTL(256)),
    ttlType: r(() => s.setTTL('5' as unknown as number)),
    mttl: r(() => s.setMulticastTTL(2)),
    mttl0: r(() => s.setMulticastTTL(0)),
    mttl256: r(() => s.setMulticastTTL(256)),
    mloop: r(() => s.setMulticastLoopback(false)),
    mIface: r(() => s.setMulticastInterface('127.0.0.1')),
    mIfaceBad: r(() => s.setMulticastInterface('nope')),
    mIfaceType: r(() => s.setMulticastInterface(5 as unknown as string)),
    addMissing: r(() => s.addMembership('')),
    addNotIp: r(() => s.addMembership('not-an-ip')),
    addUnicast: r(() => s.addMembership('127.0.0.1')),
    dropNotJoined: r(() => s.dropMembership('239.255.0.1', '127.0.0.1')),
    ssmSourceType: r(() => s.addSourceSpecificMembership(5 as unknown as string, '232.1.1.1')),
    ssmGroupType: r(() => s.addSourceSpecificMembership('127.0.0.1', 5 as unknown as string)),
    ssmDropNotJoined: r(() => s.dropSourceSpecificMembership('127.0.0.1', '232.1.1.1', '127.0.0.1')),
  }
}, (t, r) => {
  t.is(r.unbound[0].code, 'EBADF')
  t.deepEqual(r.ttl, { returned: 5 })
  t.is(r.ttl0.code, 'EINVAL')
  t.is(r.dropNotJoined.code, 'EADDRNOTAVAIL')
})

compat("a 'message' listener that throws: an uncaught exception, and the next datagrams still arrive", async (d) => {
  const mod = d === IMPLS[0][1] ? 'node:dgram' : 'udp-mmsg/dgram'
  const script = `
    const dgram = require(${JSON.stringify(mod)})
    const s = dgram.createSocket('udp4')
    const got = []
    let uncaught = 0
    process.on('uncaughtException', (e) => { uncaught++; got.push('uncaught: ' + e.message) })
    s.on('message', (m) => { got.push(m.toString()); if (m.toString() === 'b') throw new Error('boom') })
    s.bind(0, '127.0.0.1', () => {
      const t = dgram.createSocket('udp4')
      t.bind(0, '127.0.0.1', () => {
        for (const x of ['a', 'b', 'c', 'd']) t.send(x, s.address().port, '127.0.0.1')
        const check = setInterval(() => {
          if (got.length < 5) return
          clearInterval(check)
          console.log(JSON.stringify({ got: got.filter((g) => !g.startsWith('uncaught')), uncaught }))
          s.close()
          t.close()
        }, 20)
      })
    })
  `
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60000 })
  return { status: r.status, out: r.stdout.trim() }
}, (t, r) => t.deepEqual(JSON.parse(r.out), { got: ['a', 'b', 'c', 'd'], uncaught: 1 }))

compat('an address of the other family: bind, connect and send fail with EINVAL', async (d, S) => {
  const a = S.add(d.createSocket('udp4'))
  const bindError = waitEvent(a, 'error')
  a.bind(0, '::1')
  const [be] = (await bindError) as [NodeJS.ErrnoException & { address?: string }]
  const b = await S.bound(d)
  const connected = callback<[NodeJS.ErrnoException?]>('connect')
  b.connect(1234, '::1', connected.cb)
  const [ce] = await connected.done
  const c = await S.bound(d, 'udp6')
  const sent = callback<[NodeJS.ErrnoException | null]>('send')
  c.send('x', 1234, '127.0.0.1', sent.cb)
  const [se] = await sent.done
  const b4 = await S.bound(d)
  const sent4 = callback<[NodeJS.ErrnoException | null]>('send v6 from udp4')
  b4.send('x', 1234, '::1', sent4.cb)
  const [se4] = await sent4.done
  const pick = (e: any) => e && { code: e.code, message: e.message, syscall: e.syscall, address: e.address, port: e.port }
  return { bind: pick(be), connect: pick(ce), sendV4FromUdp6: pick(se), sendV6FromUdp4: pick(se4) }
}, (t, r) => {
  t.is(r.bind.message, 'bind EINVAL ::1')
  t.is(r.connect.message, 'connect EINVAL ::1:1234')
})
