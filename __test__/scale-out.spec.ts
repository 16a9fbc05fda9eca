// Scale-out over a SO_REUSEPORT group: steering ('hash', 'cpu', 'random'), SO_INCOMING_CPU and
// the runWorkers helper. Real sockets on 127.0.0.1; every wait is bounded; no timing asserts.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import * as path from 'node:path'
import { runWorkers, UdpSocket } from '../lib/index.js'
import type { Steering, WorkerReport } from '../lib/index.js'
import { FIXTURES, V4, waitUntil } from './helpers.js'

const HANDLER = path.join(FIXTURES, 'scale-handler.js')
const linux = process.platform === 'linux'
const native = UdpSocket.bindSync({ address: V4 })
const steerable = native.capabilities().reusePortSteering
native.close()
const steeringTest = steerable ? test : test.skip
// `taskset` pins the sender to one CPU; loopback then processes its datagrams on that CPU.
const cpus = (() => {
  if (!steerable) return []
  const r = spawnSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8' })
  if (r.status !== 0) return []
  const list = /:\s*([\d,-]+)\s*$/.exec(r.stdout)?.[1] ?? ''
  return list.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number)
    return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, i) => a + i)
  })
})()
const cpuTest = cpus.length >= 2 && cpus.includes(0) && cpus.includes(1) ? test : test.skip
if (cpus.length < 2) console.log('scale-out: taskset missing or fewer than 2 CPUs allowed: the \'cpu\' steering test is skipped')

/** `n` sockets in one reuseport group on a free port, in join order, counting what they get. */
function group(t: ExecutionContext, n: number, steering?: Steering, groupSize?: number) {
  const sockets: UdpSocket[] = []
  const counts: number[] = []
  for (let i = 0; i < n; i++) {
    const port = i === 0 ? 0 : sockets[0].localAddress().port
    const s = UdpSocket.bindSync({ address: V4, port, reusePort: true, steering, groupSize, recvBufferSize: 1 << 20 })
    t.teardown(() => s.close())
    counts.push(0)
    s.onBatch((b) => (counts[i] += b.count))
    sockets.push(s)
  }
  const drops = () => sockets.reduce((d, s) => d + s.stats().kernelDrops, 0)
  return { sockets, counts, port: sockets[0].localAddress().port, drops, total: () => counts.reduce((a, b) => a + b, 0) + drops() }
}

test('steering and groupSize are validated, naming the option', (t) => {
  const bad = (o: object) => () => UdpSocket.bindSync({ address: V4, ...o })
  t.throws(bad({ reusePort: true, steering: 'round-robin' }), { instanceOf: TypeError, message: /options\.steering/ })
  t.throws(bad({ reusePort: true, steering: 7 }), { instanceOf: TypeError, message: /options\.steering/ })
  t.throws(bad({ steering: 'hash' }), { instanceOf: TypeError, message: /options\.steering.*reusePort/ })
  t.throws(bad({ reusePort: true, steering: 'random' }), { instanceOf: TypeError, message: /options\.groupSize.*required/ })
  t.throws(bad({ reusePort: true, steering: 'random', groupSize: 0 }), { instanceOf: RangeError, message: /options\.groupSize/ })
  t.throws(bad({ reusePort: true, steering: 'random', groupSize: 1.5 }), { instanceOf: RangeError, message: /options\.groupSize/ })
  t.throws(bad({ reusePort: true, steering: 'cpu', groupSize: '2' }), { instanceOf: TypeError, message: /options\.groupSize/ })
  t.throws(bad({ reusePort: true, steering: 'hash', groupSize: 2 }), { instanceOf: TypeError, message: /options\.groupSize/ })
  t.throws(bad({ reusePort: true, groupSize: 2 }), { instanceOf: TypeError, message: /options\.groupSize.*steering/ })
  const s = UdpSocket.bindSync({ address: V4, reusePort: true })
  t.teardown(() => s.close())
  t.throws(() => s.setSteering('rr' as Steering), { instanceOf: TypeError, message: /steering/ })
  t.throws(() => s.setSteering('random'), { instanceOf: TypeError, message: /groupSize/ })
  t.throws(() => s.setSteering('random', 70000), { instanceOf: RangeError, message: /groupSize/ })
  t.throws(() => s.setIncomingCpu(-1), { instanceOf: RangeError, message: /cpu/ })
  t.throws(() => s.setIncomingCpu('1' as unknown as number), { instanceOf: TypeError, message: /cpu/ })
})

steeringTest('capabilities report steering; a socket outside a reuseport group refuses a program with EINVAL', (t) => {
  const s = UdpSocket.bindSync({ address: V4 })
  t.teardown(() => s.close())
  t.true(s.capabilities().reusePortSteering)
  t.throws(() => s.setSteering('random', 2), { code: 'EINVAL' })
  t.throws(() => s.setSteering('hash'), { code: 'EINVAL' })
})

test('steering off Linux or on the fallback is a clear error', (t) => {
  if (steerable) return t.pass('this platform steers (covered above)')
  t.throws(() => UdpSocket.bindSync({ address: V4, reusePort: true, steering: 'random', groupSize: 2 }), { code: 'ERR_UDP_MMSG_UNSUPPORTED' })
})

for (const n of [2, 4]) {
  steeringTest(`'random' spreads ONE flow over all ${n} sockets of a group; received + kernel drops = sent`, async (t) => {
    const g = group(t, n, 'random', n)
    // gso: false: every datagram its own packet (a GSO super-datagram is steered whole).
    const sender = UdpSocket.bindSync({ address: V4, gso: false })
    t.teardown(() => sender.close())
    const SENT = 100 * n
    let sent = 0
    for (let i = 0; i < SENT; i += 50) {
      sent += await sender.sendBatch(Array.from({ length: 50 }, (_, k) => ({ data: `r${i + k}`, address: V4, port: g.port })))
      await waitUntil(() => g.total() >= sent)
    }
    t.is(sent, SENT)
    t.true(await waitUntil(() => g.total() >= SENT))
    t.log(`one flow over ${n} sockets: [${g.counts.join(', ')}], drops ${g.drops()}`)
    t.is(g.total(), SENT, 'received + kernel drops = sent, exactly')
    for (const [i, c] of g.counts.entries()) t.true(c > 0, `socket ${i} got some of the one flow`)
  })
}

steeringTest("'hash' (the default) keeps one flow on one socket; setSteering('hash') detaches a program", async (t) => {
  const g = group(t, 2, 'random', 2)
  g.sockets[1].setSteering('hash')
  const sender = UdpSocket.bindSync({ address: V4 })
  t.teardown(() => sender.close())
  const sent = await sender.sendBatch(Array.from({ length: 100 }, (_, k) => ({ data: `h${k}`, address: V4, port: g.port })))
  t.true(await waitUntil(() => g.total() >= sent))
  t.log(`one flow, hash: [${g.counts.join(', ')}]`)
  t.is(g.total(), 100)
  t.true(g.counts.includes(100), 'the whole flow went to one socket')
})

cpuTest("'cpu' puts what CPU K processed on socket K (sender pinned with taskset); nothing elsewhere", async (t) => {
  const g = group(t, 2, 'cpu', 2)
  let expected = [0, 0]
  for (const k of [0, 1]) {
    const child = spawn('taskset', ['-c', String(k), process.execPath, path.join(FIXTURES, 'scale-sender.js'), String(g.port), '50'], { stdio: 'inherit' })
    const code = await new Promise((res) => child.on('close', res))
    t.is(code, 0)
    expected = expected.map((e, i) => (i === k ? e + 50 : e))
    t.true(await waitUntil(() => g.total() >= 50 * (k + 1)))
    t.deepEqual(g.counts, expected, `every datagram sent from CPU ${k} went to socket ${k}`)
  }
  t.is(g.drops(), 0)
})

steeringTest('SO_INCOMING_CPU: -1 on a fresh socket, then what was set; a connected socket records the processing CPU', async (t) => {
  const s = UdpSocket.bindSync({ address: V4 })
  t.teardown(() => s.close())
  t.is(s.getIncomingCpu(), -1)
  s.setIncomingCpu(1)
  t.is(s.getIncomingCpu(), 1)
  s.setIncomingCpu(0)
  t.is(s.getIncomingCpu(), 0)
  const tx = UdpSocket.bindSync({ address: V4 })
  t.teardown(() => tx.close())
  s.connect(V4, tx.localAddress().port)
  s.setIncomingCpu(1_000_000)
  await tx.sendBatch([{ data: 'x', address: V4, port: s.localAddress().port }])
  const b = await s.recvBatch({ timeoutMs: 20_000 })
  t.is(b.count, 1)
  const cpu = s.getIncomingCpu()
  t.true(cpu >= 0 && cpu < availableParallelism(), `a CPU of this machine: ${cpu}`)
})

test('runWorkers validates its options, naming them', async (t) => {
  await t.throwsAsync(runWorkers({ workers: 0, handler: HANDLER }), { instanceOf: RangeError, message: /options\.workers/ })
  await t.throwsAsync(runWorkers({ workers: 2 } as never), { instanceOf: TypeError, message: /options\.handler/ })
  await t.throwsAsync(runWorkers({ workers: 2, handler: HANDLER, steering: 'rr' as Steering }), { instanceOf: TypeError, message: /options\.steering/ })
  await t.throwsAsync(runWorkers({ workers: 2, handler: HANDLER, port: 70000 }), { instanceOf: RangeError, message: /options\.port/ })
  await t.throwsAsync(runWorkers({ workers: 2, handler: HANDLER, bind: { port: 1 } }), { instanceOf: TypeError, message: /options\.bind\.port/ })
  await t.throwsAsync(runWorkers({ workers: 2, handler: HANDLER, bind: { batchSize: 0 } }), { instanceOf: RangeError, message: /options\.batchSize/ })
  await t.throwsAsync(runWorkers({ workers: 1, handler: path.join(FIXTURES, 'no-such-handler.js') }), { any: true, message: /no-such-handler/ })
})

function fds(): number {
  return readdirSync('/proc/self/fd').length
}
function threads(): number {
  return readdirSync('/proc/self/task').length
}
const got = (r: WorkerReport, kind: string) => ((r.report as { got: Record<string, number> } | undefined)?.got[kind] ?? 0)

const helperTest = steerable && linux ? test : test.skip
helperTest('runWorkers: N workers on one port, stats gathered, a worker that dies leaves the others receiving, close leaves no fds or threads', async (t) => {
  // A first run makes the threads Node keeps for worker support; the second is measured.
  const warm = await runWorkers({ workers: 1, handler: HANDLER, address: V4 })
  await warm.close()
  const fds0 = fds()
  const threads0 = threads()
  const workers = await runWorkers({ workers: 3, handler: HANDLER, address: V4, steering: 'random', workerData: { dieIndex: 1 }, bind: { recvBufferSize: 1 << 20 } })
  const errors: unknown[] = []
  const exits: number[] = []
  workers.on('workerError', (err, i) => errors.push([i, err]))
  workers.on('workerExit', (i) => exits.push(i))
  t.is(workers.alive, 3)
  t.true(workers.port > 0)
  const sender = UdpSocket.bindSync({ address: V4, gso: false })
  t.teardown(() => sender.close())
  const send = (kind: string, n: number) => sender.sendBatch(Array.from({ length: n }, () => ({ data: kind, address: V4, port: workers.port })))
  const sum = (rs: WorkerReport[], kind: string) => rs.reduce((a, r) => a + got(r, kind) + (kind === 'x' ? (r.stats?.kernelDrops ?? 0) : 0), 0)

  t.is(await send('x', 300), 300)
  let reports: WorkerReport[] = []
  for (let i = 0; i < 200 && sum(reports, 'x') < 300; i++) reports = await workers.stats()
  t.log(`3 workers, one flow, random: [${reports.map((r) => got(r, 'x')).join(', ')}]`)
  t.is(sum(reports, 'x'), 300, 'received + kernel drops = sent, over the workers')
  for (const r of reports) t.true(got(r, 'x') > 0, `worker ${r.index} got some`)

  // 'die' datagrams until worker 1 (spread at random) gets one and throws.
  for (let i = 0; i < 50 && exits.length === 0; i++) {
    await send('die', 10)
    await waitUntil(() => exits.length > 0, 200)
  }
  t.deepEqual(exits, [1], 'worker 1 died')
  t.is(errors.length, 1, 'its error was surfaced')
  t.regex(String((errors[0] as [number, Error])[1]), /worker 1 was told to die/)
  t.is(workers.alive, 2)

  // The survivors get everything sent now (the group was re-spread over the 2 left).
  const before = (await workers.stats()).filter((r) => r.alive)
  t.is(await send('y', 200), 200)
  let after: WorkerReport[] = []
  for (let i = 0; i < 200 && sum(after, 'y') - sum(before, 'y') < 200; i++) after = (await workers.stats()).filter((r) => r.alive)
  t.is(sum(after, 'y') - sum(before, 'y'), 200, 'the survivors received all of it')
  t.is(after.reduce((d, r) => d + (r.stats?.kernelDrops ?? 0), 0), 0)
  for (const r of after) t.true(got(r, 'y') - got(before.find((b) => b.index === r.index)!, 'y') > 0, `survivor ${r.index} got some`)

  const final = await workers.close()
  t.is(final.length, 3)
  t.deepEqual(final.map((r) => r.alive), [false, false, false])
  t.is(await workers.close(), final, 'close is idempotent')
  sender.close()
  t.true(await waitUntil(() => fds() <= fds0 && threads() <= threads0, 5000), `fds ${fds()} (before ${fds0}), threads ${threads()} (before ${threads0})`)
})
