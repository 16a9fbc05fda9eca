// The one-datagram send path (src/native/send_fast.rs): `sendOneFast(key, ...)` finds its
// socket by a per-thread key. A key of a closed socket is refused, even when a new socket has
// taken its place in the table (no datagram leaves from the wrong socket); a wrong key or
// wrong arguments throw, never crash; and sends through the facade and UdpSocket still reach
// the right peer from the right port, for IPv4, IPv6 and a connected socket.
import test from 'ava'
import { createSocket } from '../lib/dgram.js'
import { UdpSocket } from '../lib/index.js'
import { NATIVE, needs } from './backend.js'
import { V4, V6, sleep, waitUntil } from './helpers.js'

type SendOneFast = (key: number, data: Uint8Array, address: string | null, port: number) => number
// The binary's export (the fallback backend has none: its sends go through node:dgram).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fast = NATIVE ? (require('../index.js') as { sendOneFast?: SendOneFast }).sendOneFast : undefined

/** Collects what `rx` receives as "text from port". */
function collect(rx: UdpSocket): string[] {
  const got: string[] = []
  rx.onBatch((b) => {
    for (let i = 0; i < b.count; i++) got.push(`${b.data(i)} from ${b.port(i)}`)
  })
  return got
}

needs('native')('the binary exports sendOneFast, and sockets hand out keys for it', (t) => {
  t.is(typeof fast, 'function')
  const s = UdpSocket.bindSync({ address: V4, port: 0 })
  const key = s._native.sendKey()
  t.true(key >= 0)
  t.is(s._native.sendKey(), key, 'the same key on every call')
  t.is(s._sendKey, key, 'the constructor handed the same key to JS')
  s.close()
  t.is(s._native.sendKey(), -1, 'none once closed')
})

needs('native')("a closed socket's key is refused, even after a new socket takes its place: nothing leaves from the wrong socket", async (t) => {
  const rx = UdpSocket.bindSync({ address: V4, port: 0 })
  const got = collect(rx)
  const a = UdpSocket.bindSync({ address: V4, port: 0 })
  const keyA = a._native.sendKey()
  a.close()
  const b = UdpSocket.bindSync({ address: V4, port: 0 })
  const keyB = b._native.sendKey()
  try {
    t.not(keyA, keyB)
    const err = t.throws(() => fast!(keyA, Buffer.from('stale'), V4, rx.localAddress().port)) as NodeJS.ErrnoException
    t.is(err.code, 'UDP_MMSG_CLOSED')
    t.is(fast!(keyB, Buffer.from('fresh'), V4, rx.localAddress().port), 1)
    t.true(await waitUntil(() => got.length >= 1))
    await sleep(30)
    t.deepEqual(got, [`fresh from ${b.localAddress().port}`])
  } finally {
    b.close()
    rx.close()
  }
})

needs('native')('sendOneFast with a wrong key or wrong arguments throws and the process goes on', (t) => {
  const s = UdpSocket.bindSync({ address: V4, port: 0 })
  const key = s._native.sendKey()
  try {
    // Index 2^20 - 1 of the table (never reached here), and -1 (read as 2^32 - 1, the same index).
    for (const bad of [0xfffff, -1]) {
      const e = t.throws(() => fast!(bad, Buffer.from('x'), V4, 9)) as NodeJS.ErrnoException
      t.truthy(e instanceof Error)
    }
    t.throws(() => fast!('1' as unknown as number, Buffer.from('x'), V4, 9))
    t.throws(() => fast!(key, 'not bytes' as unknown as Uint8Array, V4, 9))
    t.throws(() => fast!(key, Buffer.from('x'), 42 as unknown as string, 9))
    t.throws(() => fast!(key, Buffer.from('x'), 'not an address', 9))
    t.throws(() => fast!(key, Buffer.from('x'), 'x'.repeat(300), 9), undefined, 'an address longer than its stack buffer')
    t.throws(() => fast!(key, Buffer.from('x'), null, 9), undefined, 'no address on an unconnected socket')
    t.throws(() => (fast as unknown as () => number)())
  } finally {
    s.close()
  }
})

for (const [family, host] of [
  [4, V4],
  [6, V6],
] as const) {
  test(`one-datagram sends reach the peer from the right port (IPv${family}): facade, UdpSocket, connected`, async (t) => {
    const rx = UdpSocket.bindSync({ address: host, port: 0 })
    const got = collect(rx)
    const port = rx.localAddress().port
    const u = UdpSocket.bindSync({ address: host, port: 0 })
    const c = UdpSocket.bindSync({ address: host, port: 0 })
    const f = createSocket(family === 4 ? 'udp4' : 'udp6')
    try {
      await new Promise<void>((r) => f.bind(0, host, r))
      f.send('facade', port, host)
      t.is(u.trySendBatch([{ data: Buffer.from('udpsocket'), address: host, port }]), 1)
      c.connect(host, port)
      t.is(c.trySendBatch([{ data: Buffer.from('connected') }]), 1)
      t.true(await waitUntil(() => got.length >= 3))
      t.deepEqual(
        got.sort(),
        [`connected from ${c.localAddress().port}`, `facade from ${f.address().port}`, `udpsocket from ${u.localAddress().port}`].sort(),
      )
    } finally {
      f.close()
      u.close()
      c.close()
      rx.close()
    }
  })
}
