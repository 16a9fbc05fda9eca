// node:dgram behaviours the facade once got wrong (issue 14), each run against node:dgram and
// against udp-mmsg/dgram: the two runs must observe the same thing. Loopback only; every wait
// is bounded and "nothing happened" is asserted after an event that must come later.
import test, { type ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { networkInterfaces } from 'node:os'
import { inspect } from 'node:util'
import { IMPLS, type DgramLike, type Socket, callback, messages, sockets, thrown, waitEvent } from './dgram-harness.js'

const ROOT = join(__dirname, '..')
/** node:dns as CommonJS sees it (its `lookup` can be replaced, as Node's own tests do). */
const dns = createRequire(__filename)('node:dns') as { lookup: (...a: any[]) => void }
type Sockets = ReturnType<typeof sockets>

function compat(title: string, scenario: (d: DgramLike, S: Sockets, t: ExecutionContext) => Promise<unknown>) {
  test(`${title} [same as node:dgram]`, async (t) => {
    const results: Record<string, unknown> = {}
    for (const [name, d] of IMPLS) results[name] = await scenario(d, sockets(t), t)
    t.deepEqual(results['udp-mmsg/dgram'], results['node:dgram'])
  })
}

compat("createSocket({ lookup: 1 }) names 'lookup'; a bigint is shown as util.inspect shows it (0n)", async (d, S) => {
  const s = S.add(d.createSocket('udp4'))
  return {
    lookup: thrown(() => d.createSocket({ type: 'udp4', lookup: 1 as never })),
    bigintPort: thrown(() => s.send('x', 0n as never, '127.0.0.1')),
    longString: thrown(() => s.send('x', 'a'.repeat(40) as never, '127.0.0.1')),
    symbol: thrown(() => s.send('x', 1, Symbol('s') as never)),
  }
})

compat('dns.lookup replaced before createSocket() is called even to bind an IP literal', async (d, S) => {
  const calls: unknown[] = []
  const original = dns.lookup
  dns.lookup = (host: string, family: number, cb: (e: null, a: string, f: number) => void) => {
    calls.push([host, family])
    original(host, family, cb)
  }
  let s: Socket
  try {
    s = S.add(d.createSocket('udp4'))
  } finally {
    dns.lookup = original
  }
  const listening = waitEvent(s, 'listening')
  s.bind(0, '127.0.0.1')
  await listening
  return calls
})

compat('unbound socket: membership calls check the address first (EINVAL), then bind implicitly', async (d, S) => {
  const s = S.add(d.createSocket({ type: 'udp4', reuseAddr: true }))
  return {
    badGroup: thrown(() => s.addMembership('256.256.256.256')),
    badDrop: thrown(() => s.dropMembership('256.256.256.256')),
    badSource: thrown(() => s.addSourceSpecificMembership('0', '232.1.1.1')),
    join: thrown(() => s.addMembership('224.0.0.114')),
    leave: thrown(() => s.dropMembership('224.0.0.114')),
    leaveAgain: thrown(() => s.dropMembership('224.0.0.114')),
  }
})

compat('sendto(): validates like Node, then sends', async (d, S) => {
  const rx = await S.bound(d)
  const tx = S.add(d.createSocket('udp4')) as Socket & { sendto: (...a: unknown[]) => void }
  const bad = [thrown(() => tx.sendto('x', '0', 1, 1, 'a')), thrown(() => tx.sendto('x', 0, 1, 1, 2))]
  const got = messages(rx, 1)
  const sent = callback<[Error | null, number]>('sendto')
  tx.sendto(Buffer.from('hello'), 1, 3, rx.address().port, '127.0.0.1', sent.cb)
  return { bad, sent: await sent.done, got: (await got).map((m) => m.text) }
})

compat('sends then close() in one tick on an unbound socket: dropped without a callback', async (d, S) => {
  const rx = await S.bound(d)
  const port = rx.address().port
  const s = d.createSocket('udp4')
  let calls = 0
  for (let i = 0; i < 3; i++) s.send('dropped', port, '127.0.0.1', () => calls++)
  const closed = waitEvent(s, 'close')
  s.close()
  await closed
  // A datagram sent afterwards arrives; the dropped ones would have arrived before it.
  const marker = await S.bound(d)
  const got = messages(rx, 1)
  marker.send('marker', port, '127.0.0.1')
  return { calls, got: (await got).map((m) => m.text) }
})

compat('sends then close() in one tick on a bound socket: dropped without a callback', async (d, S) => {
  const rx = await S.bound(d)
  const port = rx.address().port
  const tx = await S.bound(d)
  let calls = 0
  tx.send('dropped', port, '127.0.0.1', () => calls++)
  const closed = waitEvent(tx, 'close')
  tx.close()
  await closed
  const marker = await S.bound(d)
  const got = messages(rx, 1)
  marker.send('marker', port, '127.0.0.1')
  return { calls, got: (await got).map((m) => m.text) }
})

compat('sends waiting for a bind that fails are dropped without a callback', async (d, S) => {
  const rx = await S.bound(d)
  const s = S.add(d.createSocket('udp4'))
  let calls = 0
  const failed = waitEvent(s, 'error')
  s.bind(rx.address().port, '127.0.0.1')
  s.send('never', rx.address().port, '127.0.0.1', () => calls++)
  const [err] = (await failed) as [NodeJS.ErrnoException]
  await new Promise((r) => setImmediate(r))
  return { code: err.code, calls }
})

compat("udp6 setMulticastInterface('::%<no such interface>') falls back to the default interface", async (d, S) => {
  const s = await S.bound(d, 'udp6')
  return { unknown: thrown(() => s.setMulticastInterface('::%nosuchif0')), bad: thrown(() => s.setMulticastInterface('nonsense')) }
})

compat('errors print under util.inspect as Node’s (SystemError, errno errors)', async (d, S) => {
  const s = S.add(d.createSocket('udp4'))
  const show = (fn: () => unknown) => {
    try {
      fn()
    } catch (e) {
      return inspect(e)
        .split('\n')
        .filter((l) => !/^\s+at /.test(l))
        .join('\n')
    }
    return 'no throw'
  }
  return { buffer: show(() => s.getRecvBufferSize()), ttl: show(() => s.setTTL(1)), toString: show(() => s.setBroadcast(true)) }
})

compat('the DEP0112 members exist and read the socket state', async (d, S) => {
  const s = (await S.bound(d)) as Socket & Record<string, unknown>
  process.noDeprecation = true
  try {
    return {
      bindState: s._bindState,
      receiving: s._receiving,
      queue: s._queue,
      reuseAddr: s._reuseAddr,
      handle: s._handle !== null && typeof s._handle === 'object',
      health: thrown(() => (s._healthCheck as () => void)()),
      stop: thrown(() => (s._stopReceiving as () => void)()),
      receivingAfter: s._receiving,
    }
  } finally {
    process.noDeprecation = false
  }
})

// Deprecation warnings print once per code per process: each case runs in its own process.
for (const [member, call] of [
  ['_handle', 's._handle'],
  ['_bindState', 's._bindState = null'],
  ['_stopReceiving()', 's._stopReceiving()'],
] as const) {
  test(`${member} warns DEP0112 as node:dgram does`, (t) => {
    const out: Record<string, string> = {}
    for (const mod of ['node:dgram', './dist/dgram.js']) {
      const script = `
        process.on('warning', (w) => console.log(JSON.stringify([w.name, w.code, w.message])))
        const s = require(${JSON.stringify(mod)}).createSocket('udp4')
        ${call}
        s.close()`
      out[mod] = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60000 }).stdout.trim()
    }
    t.is(out['./dist/dgram.js'], out['node:dgram'])
    t.regex(out['node:dgram'], /DEP0112/)
  })
}

/** An IPv6 link-local address of this machine and its interface, if any. */
function linkLocal(): { address: string; ifname: string } | undefined {
  for (const [ifname, entries] of Object.entries(networkInterfaces())) {
    for (const e of entries ?? []) if (e.family === 'IPv6' && e.address.startsWith('fe80:')) return { address: e.address, ifname }
  }
  return undefined
}

const ll = linkLocal()
if (ll === undefined) {
  test.skip('rinfo.address of a link-local sender names its interface (%eth0) [needs an IPv6 link-local address]', () => {})
} else {
  compat('rinfo.address of a link-local sender names its interface (%eth0)', async (d, S) => {
    const address = `${ll.address}%${ll.ifname}`
    const rx = S.add(d.createSocket('udp6'))
    const listening = waitEvent(rx, 'listening')
    rx.bind({ address, port: 0 })
    await listening
    const tx = S.add(d.createSocket('udp6'))
    const got = messages(rx, 1)
    tx.send('hello', rx.address().port, address)
    return (await got)[0].rinfo.address
  })
}
