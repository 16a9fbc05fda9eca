// Sockets opened by key (src/native/keyed.rs, lib/keyed-socket.ts): a socket that is only
// opened, used through its key and its dispatch callback, and closed never makes its napi-rs
// class object; its final counters still read after close; the class object, once made, owns
// the socket alone; keys of closed sockets are refused; nothing is leaked either way.
import test from 'ava'
import native from '../index.js'
import { BACKEND } from '../lib/native.js'
import { UdpSocket, V4, ownedBaseline, portOf, settleOwned, ticks, waitUntil } from './helpers.js'

const { NativeSocket } = native as any
const plain = native as unknown as {
  closeSocket?: (key: number, out: Float64Array) => number
  setReading?: (key: number, on: boolean) => number
}
const nativeOnly = BACKEND === 'native' ? test.serial : test.serial.skip

/** The class object behind a UdpSocket, or null while none was made. */
const classOf = (s: UdpSocket): unknown => (s as any)._native._cls

nativeOnly('open, send by key, receive, close: no class object is made, and the final counters read after close', async (t) => {
  const base = await ownedBaseline()
  const rx = await UdpSocket.bind({ address: V4 })
  const got: number[] = []
  rx.on('batch', (b) => {
    for (let i = 0; i < b.count; i++) got.push(b.data(i).length)
  })
  await ticks()
  t.true((rx as any)._reading, 'reading')
  t.is(classOf(rx), null, 'reading started by key, without a class object')
  const tx = await UdpSocket.bind({ address: V4 })
  for (const n of [10, 20, 30]) t.is(tx.trySendBatch([{ data: Buffer.alloc(n), address: V4, port: portOf(rx) }]), 1)
  t.true(await waitUntil(() => got.length === 3), 'three datagrams arrive')
  t.deepEqual(got, [10, 20, 30])
  tx.close()
  rx.close()
  t.is(classOf(tx), null, 'the sender needed no class object')
  const sent = tx.stats()
  t.is(sent.datagramsSent, 3)
  t.is(sent.bytesSent, 60)
  const received = rx.stats()
  t.is(received.datagramsReceived, 3)
  t.is(received.bytesReceived, 60)
  t.is(received.kernelDrops, 0)
  t.is(received.recvQueueBytes, 0)
  t.deepEqual(await settleOwned(base), base, 'both fds closed')
})

nativeOnly('a method of the class object makes it once; then close() and stats() go through it', async (t) => {
  const base = await ownedBaseline()
  const s = await UdpSocket.bind({ address: V4 })
  t.is(classOf(s), null)
  const port = s.localAddress().port
  const cls = classOf(s)
  t.truthy(cls, 'made by localAddress()')
  t.is(s.bufferSizes().recvBufferSize > 0, true)
  t.is(classOf(s), cls, 'made once')
  t.is(s.stats().datagramsSent, 0)
  s.close()
  t.is(s.stats().datagramsSent, 0, 'final counters after close')
  t.true((cls as { closed: boolean }).closed)
  t.deepEqual(await settleOwned(base), base)
  // The port is free again: a new socket binds it.
  const again = await UdpSocket.bind({ address: V4, port })
  t.is(portOf(again), port)
  again.close()
})

nativeOnly('unref() makes the class object, so an unreachable unreferenced socket is still closed by the collector', async (t) => {
  const s = await UdpSocket.bind({ address: V4 })
  t.is(classOf(s), null)
  s.unref()
  t.truthy(classOf(s))
  s.ref()
  s.close()
})

nativeOnly('keys: a claimed key or a closed one is refused by fromKey; closeSocket of an unknown key writes nothing', async (t) => {
  const s = await UdpSocket.bind({ address: V4 })
  const key = s._sendKey
  t.true(key >= 0)
  s.localAddress() // the class object claims the key
  const twice = t.throws(() => NativeSocket.fromKey(key))
  t.is((twice as any).code, 'UDP_MMSG_CLOSED')
  s.close()
  const closed = t.throws(() => NativeSocket.fromKey(key))
  t.is((closed as any).code, 'UDP_MMSG_CLOSED')
  const out = new Float64Array(32).fill(-1)
  t.is(plain.closeSocket?.(key, out), 0)
  t.is(plain.closeSocket?.(0xfffff, out), 0)
  t.true(out.every((v) => v === -1), 'nothing written')
  const reading = t.throws(() => plain.setReading?.(key, true))
  t.is((reading as any).code, 'UDP_MMSG_CLOSED', 'setReading by a closed key')
  t.throws(() => plain.closeSocket?.('x' as unknown as number, out), undefined, 'a key that is not a number')
  t.throws(() => plain.closeSocket?.(0, undefined as unknown as Float64Array), undefined, 'no array')
})

nativeOnly('a closed keyed socket: methods throw the closed error, close() again does nothing', async (t) => {
  const s = await UdpSocket.bind({ address: V4 })
  s.close()
  s.close()
  t.true(s.closed)
  t.is(s.portable, false)
  const e = t.throws(() => s.localAddress())
  t.is((e as any).code, 'ERR_SOCKET_CLOSED')
})
