// The node:dgram fallback backend (lib/fallback): its batch layout and event kinds match the
// binding's, a copy of the package without any .node file works (one warning), the
// UDP_MMSG_BACKEND variable forces a backend, and on the fallback every feature it cannot
// give is refused with ERR_UDP_MMSG_UNSUPPORTED, never ignored. `npm test` runs this file on
// both backends; the tests of one backend skip on the other.
import test from 'ava'
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { EVENT_BATCH, EVENT_ERROR, EVENT_WRITABLE, FALLBACK_LAYOUT } from '../lib/fallback/layout.js'
import { DGRAM_REUSE_PORT } from '../lib/fallback/socket.js'
import { UdpSocket } from '../lib/index.js'
import { BACKEND } from './backend.js'
import { V4, caught, openLo, portOf, runNode } from './helpers.js'

const ROOT = path.join(__dirname, '..')
const onFallback = BACKEND === 'fallback' ? test : test.skip

function loadBinding(): typeof import('../index.js') | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../index.js') as typeof import('../index.js')
  } catch {
    return null
  }
}
const binding = loadBinding()
const withBinary = binding ? test : test.skip

withBinary("the fallback's batch layout and event kinds are the binding's (src/batch.rs, src/native/dispatch.rs)", (t) => {
  t.deepEqual({ ...FALLBACK_LAYOUT }, binding!.batchLayout())
  t.deepEqual([EVENT_BATCH, EVENT_ERROR, EVENT_WRITABLE], [binding!.EVENT_BATCH, binding!.EVENT_ERROR, binding!.EVENT_WRITABLE])
})

/** Runs `node script` in `cwd` with `env` changes (undefined deletes); resolves after 'close'. */
function run(cwd: string, script: string, env: Record<string, string | undefined>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env }
  for (const k of ['UDP_MMSG_BACKEND', 'NAPI_RS_NATIVE_LIBRARY_PATH', 'NODE_OPTIONS']) delete childEnv[k]
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k]
    else childEnv[k] = v
  }
  return runNode([script], { cwd, env: childEnv })
}

const ROUND_TRIP = `
const { UdpSocket } = require('./dist/index.js')
;(async () => {
  await import('./dist/index.mjs')
  const rx = UdpSocket.bindSync({ address: '127.0.0.1' })
  const tx = UdpSocket.bindSync({ address: '127.0.0.1' })
  const got = rx.recvBatch({ timeoutMs: 20000 })
  await tx.sendBatch([{ data: 'ping', address: '127.0.0.1', port: rx.localAddress().port }, { data: ['po', 'ng'], address: '127.0.0.1', port: rx.localAddress().port }])
  const texts = []
  for (let b = await got; ; b = await rx.recvBatch({ timeoutMs: 20000 })) {
    if (b.count === 0) break
    for (const m of b) texts.push(m.data.toString() + '@' + m.address + ':' + (m.port === tx.localAddress().port))
    if (texts.length >= 2) break
  }
  console.log(JSON.stringify({ backend: rx.capabilities().backend, portable: rx.portable, texts }))
  rx.close()
  tx.close()
})().catch((e) => { console.error('FAILED', e); process.exitCode = 1 })
`

/** A copy of the package as installed (dist/, index.js, package.json) without any .node file. */
function packageCopy(t: import('ava').ExecutionContext): string | null {
  if (!existsSync(path.join(ROOT, 'dist', 'index.js'))) return null
  const dir = mkdtempSync(path.join(tmpdir(), 'udp-mmsg-nobinary-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true })
  cpSync(path.join(ROOT, 'index.js'), path.join(dir, 'index.js'))
  cpSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'))
  writeFileSync(path.join(dir, 'round-trip.js'), ROUND_TRIP)
  const nodeFiles = readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.node'))
  t.deepEqual(nodeFiles, [], 'the copy holds no .node file')
  return dir
}

test('a copy of the package without any .node file does a round trip on the fallback, with one warning', async (t) => {
  const dir = packageCopy(t)
  if (dir === null) return t.fail('dist/ is missing: run npm run build:ts first')
  const r = await run(dir, 'round-trip.js', {})
  t.is(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout.trim())
  t.deepEqual(out, { backend: 'fallback', portable: true, texts: ['ping@127.0.0.1:true', 'pong@127.0.0.1:true'] })
  const warnings = r.stderr.split('[UDP_MMSG_FALLBACK]').length - 1
  t.is(warnings, 1, `one warning (stderr: ${r.stderr})`)
  t.regex(r.stderr, /node:dgram fallback/)
  t.regex(r.stderr, /cannot load its native binary for this platform/, 'it names the reason')
  t.regex(r.stderr, /UDP_MMSG_BACKEND=native/, 'and how to insist on the native path')
})

test('UDP_MMSG_BACKEND=native in a copy without a binary throws ERR_UDP_MMSG_NATIVE_LOAD as before', async (t) => {
  const dir = packageCopy(t)
  if (dir === null) return t.fail('dist/ is missing: run npm run build:ts first')
  const r = await run(dir, 'round-trip.js', { UDP_MMSG_BACKEND: 'native' })
  t.not(r.code, 0)
  t.regex(r.stderr, /ERR_UDP_MMSG_NATIVE_LOAD/)
  t.notRegex(r.stderr, /UDP_MMSG_FALLBACK/)
  t.is(r.stdout, '')
})

test('UDP_MMSG_BACKEND=fallback serves every socket with node:dgram, without a warning; a bad value is refused', async (t) => {
  if (!existsSync(path.join(ROOT, 'dist', 'index.js'))) return t.fail('dist/ is missing: run npm run build:ts first')
  const dir = mkdtempSync(path.join(tmpdir(), 'udp-mmsg-forced-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(path.join(dir, 'round-trip.js'), ROUND_TRIP.replaceAll('./dist/', `${ROOT}/dist/`))
  const r = await run(dir, 'round-trip.js', { UDP_MMSG_BACKEND: 'fallback' })
  t.is(r.code, 0, r.stderr)
  t.is(JSON.parse(r.stdout.trim()).backend, 'fallback')
  t.notRegex(r.stderr, /UDP_MMSG_FALLBACK/)
  const bad = await run(dir, 'round-trip.js', { UDP_MMSG_BACKEND: 'dgram' })
  t.not(bad.code, 0)
  t.regex(bad.stderr, /ERR_INVALID_ARG_VALUE/)
  t.regex(bad.stderr, /UDP_MMSG_BACKEND/)
})

test('capabilities().backend names the backend serving the socket', (t) => {
  const s = openLo(t, 4)
  t.is(s.capabilities().backend, BACKEND)
  if (BACKEND === 'fallback') {
    const c = s.capabilities()
    t.deepEqual([c.batched, c.gsoSupported, c.gso, c.gro, c.dropCounter, c.pktinfo, c.timestamps, c.recvTos], Array(8).fill(false))
    t.is(c.reusePort, DGRAM_REUSE_PORT)
  }
})

const UNSUPPORTED_BIND = [{ gso: true }, { gro: true }, { pktinfo: true }, { timestamps: true }, { recvTos: true }, { tos: 0x10 }, { forceBufferSize: true }] as const

onFallback('bind options the fallback cannot honour are refused with ERR_UDP_MMSG_UNSUPPORTED naming them', (t) => {
  for (const o of UNSUPPORTED_BIND) {
    const name = Object.keys(o)[0]
    const err = t.throws(() => UdpSocket.bindSync({ address: V4, ...o }), { code: 'ERR_UDP_MMSG_UNSUPPORTED' }, name)
    t.true(err!.message.includes(name), err!.message)
    t.is((err as unknown as { backend: string }).backend, 'fallback (node:dgram)')
  }
  // gso: 'auto' (the default) and false are not requests for GSO.
  t.notThrows(() => UdpSocket.bindSync({ address: V4, gso: 'auto' }).close())
})

onFallback('reusePort: honoured where node:dgram has it, refused where it does not (Node 20)', (t) => {
  if (DGRAM_REUSE_PORT) {
    const a = openLo(t, 4, { reusePort: true })
    const b = openLo(t, 4, { reusePort: true, port: portOf(a) })
    t.is(portOf(a), portOf(b))
  } else {
    t.throws(() => UdpSocket.bindSync({ address: V4, reusePort: true }), { code: 'ERR_UDP_MMSG_UNSUPPORTED', message: /reusePort/ })
  }
})

onFallback('socket options and per-datagram send features the fallback lacks are refused, nothing is sent', async (t) => {
  const rx = openLo(t, 4)
  const tx = openLo(t, 4)
  t.throws(() => tx.setTOS(0x10), { code: 'ERR_UDP_MMSG_UNSUPPORTED', message: /setTOS/ })
  t.throws(() => tx.setSocketOption(1, 12, 6), { code: 'ERR_UDP_MMSG_UNSUPPORTED', message: /setSocketOption/ })
  t.throws(() => tx.getSocketOption(1, 8), { code: 'ERR_UDP_MMSG_UNSUPPORTED', message: /getSocketOption/ })
  const port = portOf(rx)
  const e1 = await caught(() => tx.sendBatch([{ data: 'a', address: V4, port, sourceAddress: V4 }]))
  t.is(e1.code, 'ERR_UDP_MMSG_UNSUPPORTED')
  const e2 = await caught(() => tx.sendBatch([{ data: 'a', address: V4, port, tos: 4 }]))
  t.is(e2.code, 'ERR_UDP_MMSG_UNSUPPORTED')
  t.is(tx.stats().datagramsSent, 0)
  // What it has works: TTL, broadcast, multicast settings, buffer sizes.
  tx.setTTL(9)
  tx.setBroadcast(true)
  t.true(tx.getBroadcast())
  tx.setMulticastLoopback(false)
  t.false(tx.getMulticastLoopback())
  tx.setRecvBufferSize(1 << 16)
  t.true(tx.bufferSizes().recvBufferSize >= 1 << 16)
  t.false(tx.bufferSizes().recvForced)
})

onFallback('after close the fallback socket throws ERR_SOCKET_CLOSED like the native one', (t) => {
  const s = UdpSocket.bindSync({ address: V4 })
  s.close()
  t.throws(() => s.localAddress(), { code: 'ERR_SOCKET_CLOSED' })
  t.throws(() => s.capabilities(), { code: 'ERR_SOCKET_CLOSED' })
  t.throws(() => s.setTTL(3), { code: 'ERR_SOCKET_CLOSED' })
  t.false(s.portable)
  t.is(s.stats().datagramsReceived, 0)
})

const onLinux = process.platform === 'linux' ? test : test.skip

onLinux('a refused connect throws its errno at once on either backend (EACCES: broadcast without SO_BROADCAST)', (t) => {
  const s = openLo(t, 4, { address: '0.0.0.0' })
  let events = 0
  s.on('error', () => events++)
  t.throws(() => s.connect('255.255.255.255', 9), { code: 'EACCES' })
  t.is(s.remoteAddress(), null)
  // Nothing more arrives later for it (node:dgram reports it on the next tick: not twice).
  return new Promise<void>((resolve) => setImmediate(resolve)).then(() => t.is(events, 0))
})
