// Sockets the facade and UdpSocket do not open themselves: an adopted fd (`bind({ fd })`,
// `new UdpSocket({ fd })`), bad fds, and cluster workers sharing the primary's socket.
// Loopback only; waits are bounded; child processes are awaited on 'close'.
import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import * as nodeDgram from 'node:dgram'
import * as fs from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import { UdpSocket } from '../lib/index.js'
import { createSocket } from '../lib/dgram.js'
import { callback, messages, sockets, waitEvent } from './dgram-harness.js'

const ROOT = join(__dirname, '..')

/** The fd of a node:dgram socket (read through its deprecated `_handle`, without the warning). */
function fdOf(s: nodeDgram.Socket | net.Server): number {
  const was = process.noDeprecation
  process.noDeprecation = true
  try {
    return (s as unknown as { _handle: { fd: number } })._handle.fd
  } finally {
    process.noDeprecation = was
  }
}

/** Stops a node:dgram socket's reading (its deprecated `_stopReceiving()`, without the warning). */
function stopReading(s: nodeDgram.Socket): void {
  const was = process.noDeprecation
  process.noDeprecation = true
  try {
    ;(s as unknown as { _stopReceiving: () => void })._stopReceiving()
  } finally {
    process.noDeprecation = was
  }
}

async function boundNode(type: 'udp4' | 'udp6' = 'udp4'): Promise<nodeDgram.Socket> {
  const s = nodeDgram.createSocket(type)
  const listening = waitEvent(s, 'listening')
  s.bind(0, type === 'udp4' ? '127.0.0.1' : '::1')
  await listening
  return s
}

test('new UdpSocket({ fd }) takes a duplicate of a bound UDP socket: its type, address, receives and sends', async (t) => {
  for (const type of ['udp4', 'udp6'] as const) {
    const owner = await boundNode(type)
    t.teardown(() => owner.close())
    const s = new UdpSocket({ fd: fdOf(owner) })
    t.teardown(() => s.close())
    t.is(s.type, type)
    t.deepEqual(s.localAddress(), { address: owner.address().address, port: owner.address().port, family: owner.address().family })
    // The owner stops reading, so every datagram goes to the adopted socket.
    stopReading(owner)
    const peer = await boundNode(type)
    t.teardown(() => peer.close())
    const host = type === 'udp4' ? '127.0.0.1' : '::1'
    const got = s.recvBatch()
    peer.send('to the adopted socket', owner.address().port, host)
    const batch = await got
    t.true(batch.count >= 1)
    t.is(Buffer.from(batch.data(0)).toString(), 'to the adopted socket')
    const back = waitEvent(peer, 'message')
    await s.sendBatch([{ data: Buffer.from('from it'), address: host, port: peer.address().port }])
    const [msg, rinfo] = (await back) as [Buffer, nodeDgram.RemoteInfo]
    t.is(msg.toString(), 'from it')
    t.is(rinfo.port, owner.address().port)
  }
})

test("the facade's bind({ fd }): 'listening' at once, address() of the fd, buffer sizes applied, send and receive", async (t) => {
  const S = sockets(t)
  const owner = await boundNode()
  t.teardown(() => owner.close())
  stopReading(owner)
  const peer = await S.bound(nodeDgram)
  const s = S.add(createSocket({ type: 'udp4', recvBufferSize: 4096 }))
  let listened = false
  s.bind({ fd: fdOf(owner), port: 1, address: 'ignored with fd' }, () => (listened = true))
  t.true(listened)
  t.deepEqual(s.address(), owner.address())
  t.is(s.getRecvBufferSize(), 8192)
  const back = messages(peer, 1)
  const sent = callback<[Error | null, number]>('send')
  s.send('hello', peer.address().port, '127.0.0.1', sent.cb)
  t.deepEqual(await sent.done, [null, 5])
  t.is((await back)[0].rinfo.port, owner.address().port)
  const got = messages(s, 1)
  peer.send('to the adopted socket', owner.address().port, '127.0.0.1')
  t.is((await got)[0].text, 'to the adopted socket')
})

test('bad fds: TypeError/RangeError for non-integers and negatives, errno errors for a closed fd, a TCP socket, a file', async (t) => {
  const file = fs.openSync(__filename, 'r')
  t.teardown(() => fs.closeSync(file))
  const tcp = net.createServer().listen(0, '127.0.0.1')
  await waitEvent(tcp, 'listening')
  t.teardown(() => tcp.close())
  t.like(
    t.throws(() => new UdpSocket({ fd: '3' as never })),
    { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' },
  )
  t.like(
    t.throws(() => new UdpSocket({ fd: 3.5 })),
    { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' },
  )
  t.like(
    t.throws(() => new UdpSocket({ fd: -1 })),
    { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' },
  )
  t.like(
    t.throws(() => new UdpSocket({ fd: 1 << 30 })),
    { code: 'EBADF' },
  )
  t.like(
    t.throws(() => new UdpSocket({ fd: fdOf(tcp) })),
    { code: 'EINVAL' },
  )
  t.like(
    t.throws(() => new UdpSocket({ fd: file })),
    { code: 'ENOTSOCK' },
  )
  t.like(
    t.throws(() => new UdpSocket({ fd: file, port: 1 })),
    { code: 'ERR_INVALID_ARG_VALUE' },
  )
  const owner = await boundNode('udp6')
  t.teardown(() => owner.close())
  t.like(
    t.throws(() => new UdpSocket({ fd: fdOf(owner), type: 'udp4' })),
    { code: 'ERR_INVALID_ARG_VALUE' },
  )
  // The facade: what is not a UDP socket throws from bind() as in Node, and a second bind()
  // then throws ERR_SOCKET_ALREADY_BOUND, as in Node.
  const shape = (e: Error | undefined) => e && { name: e.name, code: (e as NodeJS.ErrnoException).code, message: e.message }
  const attempts = (d: typeof nodeDgram | { createSocket: typeof createSocket }, fd: number) => {
    const s = d.createSocket('udp4')
    const out = [shape(t.throws(() => s.bind({ fd }))), shape(t.throws(() => s.bind(0)))]
    s.close()
    return out
  }
  for (const fd of [file, fdOf(tcp), 1 << 30]) t.deepEqual(attempts({ createSocket }, fd), attempts(nodeDgram, fd))
})

test('refused fds leak nothing: the process has the same open fds after 200 refusals', (t) => {
  const script = `
    const fs = require('fs'), net = require('net'), { UdpSocket } = require('./dist/index.js')
    const file = fs.openSync(__filename === '[eval]' ? '/dev/null' : __filename, 'r')
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      process.noDeprecation = true
      const bad = [file, srv._handle.fd, 1 << 30]
      const count = () => fs.readdirSync('/proc/self/fd').length
      const before = count()
      for (let i = 0; i < 200; i++) for (const fd of bad) { try { new UdpSocket({ fd }) } catch {} }
      console.log(JSON.stringify({ before, after: count() }))
      srv.close()
    })`
  if (process.platform !== 'linux') return t.pass('counts /proc/self/fd: Linux only')
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60000 })
  const { before, after } = JSON.parse(r.stdout.trim())
  t.is(after, before)
})

test('a cluster of 2 workers on the facade receives every datagram sent to one port, no worker restarts [same as node:dgram]', async (t) => {
  const run = (mod: string) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [join(__dirname, 'fixtures', 'dgram-cluster.js'), mod, '300'], { cwd: ROOT })
      let out = ''
      child.stdout.on('data', (d: Buffer) => (out += d))
      child.stderr.pipe(process.stderr)
      child.on('error', reject)
      // A hang (a lost datagram) fails the test instead of stalling the suite.
      const timer = setTimeout(() => child.kill(), 60_000)
      child.on('close', () => {
        clearTimeout(timer)
        resolve(out.trim())
      })
    })
  const facade = JSON.parse(await run('udp-mmsg/dgram'))
  const node = JSON.parse(await run('node:dgram'))
  t.deepEqual(facade, { received: 300, exclusive: ['EADDRINUSE', 'EADDRINUSE'], implicitDistinct: true, earlyExits: 0 })
  t.deepEqual(facade, node)
})

test('examples/socket-activation.js adopts fd 3 when LISTEN_PID/LISTEN_FDS name it, as systemd passes it', async (t) => {
  const owner = await boundNode()
  t.teardown(() => owner.close())
  stopReading(owner)
  const port = owner.address().port
  // `exec` keeps the shell's pid, so LISTEN_PID=$$ is the example's own pid, as systemd sets it.
  const example = join(ROOT, 'examples', 'socket-activation.js')
  const child = spawn('sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec "${process.execPath}" "${example}"`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit', fdOf(owner)],
  })
  const closed = waitEvent(child, 'close')
  let out = ''
  const lines = (n: number) =>
    new Promise<string[]>((resolve) => {
      const check = () => {
        const l = out.split('\n').filter(Boolean)
        if (l.length >= n) resolve(l)
      }
      child.stdout!.on('data', (d: Buffer) => {
        out += d
        check()
      })
      check()
    })
  t.is((await lines(1))[0], `listening on 127.0.0.1:${port} (socket from systemd)`)
  const peer = await boundNode()
  t.teardown(() => peer.close())
  peer.send('hello', port, '127.0.0.1')
  t.is((await lines(2))[1], `127.0.0.1:${peer.address().port} 5`)
  child.kill('SIGTERM')
  await closed
})
