// The ingestion examples: each runs briefly (its npm script's command) either with its built-in
// loopback generator, or listening while the test sends a load of its own, in which case every
// count, sum and checksum is compared with what the test sent (not with totals the example
// derives from the same numbers). No timing assertions: rates are only checked to be printed.
import test from 'ava'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { UdpSocket } from '../lib/index.js'
import { range, runNode } from './helpers.js'

const ROOT = join(__dirname, '..')
const { Aggregator } = require('../examples/statsd-server.js')
const { parseSyslog } = require('../examples/syslog-collector.js')

/** Runs `npm run <script> -- ...args`; kills its process group if it overstays (a hang, not slowness). */
function runScript(script: string, args: string[], timeoutMs = 90_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', script, '--', ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // gone
      }
      reject(new Error(`${script} did not exit within ${timeoutMs} ms\n${stderr}`))
    }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** A running example: its output so far, a bounded wait for a stdout line, and its end. */
interface Live {
  stdoutLines: () => any[]
  stderr: () => string
  /** Waits (bounded) until a JSON stdout line satisfies `pred`; returns it or undefined. */
  waitJson: (pred: (o: any) => boolean, timeoutMs?: number) => Promise<any>
  /** Waits (bounded) until stderr matches `re`; returns the match or null. */
  waitStderr: (re: RegExp, timeoutMs?: number) => Promise<RegExpExecArray | null>
  /** SIGTERM (the examples stop cleanly on it), then the exit code once all output was read ('close'). */
  stop: () => Promise<{ code: number | null; stdout: string; stderr: string }>
}

/**
 * Starts the command of the npm script `script` (which must be `node <file>`: run directly, so
 * SIGTERM reaches the example itself, not npm) in its own process group, killed at teardown if
 * still running.
 */
function startScript(t: any, script: string, args: string[]): Live {
  const command = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts[script] as string
  const file = /^node (\S+)$/.exec(command)
  if (!file) throw new Error(`npm script ${script} is not "node <file>": ${command}`)
  const child = spawn(process.execPath, [file[1], ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let closed = false
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => {
      closed = true
      resolve({ code, stdout, stderr })
    }),
  )
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal)
    } catch {
      // gone
    }
  }
  t.teardown(() => {
    if (!closed) group('SIGKILL')
  })
  const waitFor = async <T>(probe: () => T | undefined, timeoutMs: number): Promise<T | undefined> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const v = probe()
      if (v !== undefined || closed || Date.now() > deadline) return v
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  return {
    stdoutLines: () => jsonLines(stdout),
    stderr: () => stderr,
    waitJson: (pred, timeoutMs = 30_000) => waitFor(() => jsonLines(stdout).find(pred), timeoutMs),
    waitStderr: async (re, timeoutMs = 30_000) => (await waitFor(() => re.exec(stderr) ?? undefined, timeoutMs)) ?? null,
    stop: async () => {
      child.kill('SIGTERM')
      let timer: NodeJS.Timeout | undefined
      const r = await Promise.race([done, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), 30_000)))])
      clearTimeout(timer)
      if (r) return r
      group('SIGKILL')
      return done
    },
  }
}

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{') && l.endsWith('}'))
    .map((l) => JSON.parse(l))

test('statsd-server: --generate load is aggregated exactly (counters, sample rates, timers, gauges)', async (t) => {
  const r = await runScript('example:statsd', ['--port', '0', '--duration', '2', '--generate', '2000', '--json'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stderr, /statsd: listening on 127\.0\.0\.1:\d+/)
  t.regex(r.stderr, /\[\s*\d+ s\]\s+[\d,]+ datagrams\/s\s+[\d,]+ lines\/s/, 'live rate line')
  const out = jsonLines(r.stdout)
  const flushes = out.filter((o) => o.type === 'flush')
  const summary = out.find((o) => o.type === 'summary')
  t.truthy(summary)
  t.true(flushes.length >= 1)
  const n = summary.datagrams
  t.log(`generated ${summary.generated}, received ${n}, kernel drops ${summary.kernelDrops}`)
  t.true(n > 0)
  t.true(n <= summary.generated)
  t.is(summary.lines, 5 * n)
  t.is(summary.badLines, 0)
  t.is(summary.counters['gen.requests'], n)
  t.is(summary.counters['gen.sampled'], 2 * n, '|@0.5 counts double')
  t.is(summary.timerCounts['gen.latency'], n)
  // The flushes add up to the summary.
  const sum = (f: (o: any) => number) => flushes.reduce((a, o) => a + f(o), 0)
  t.is(
    sum((o) => o.datagrams),
    n,
  )
  t.is(
    sum((o) => (o.counters['gen.requests'] ? o.counters['gen.requests'].value : 0)),
    n,
  )
  for (const f of flushes) {
    if (!f.timers['gen.latency']) continue
    const tm = f.timers['gen.latency']
    t.true(tm.min >= 0 && tm.max <= 99 && tm.min <= tm.p50 && tm.p50 <= tm.p99 && tm.p99 <= tm.max)
    if (tm.count >= 10) t.is(f.sets['gen.users'], 10)
  }
  if (n === summary.generated) t.is(summary.gauges['gen.queue'], (n - 1) % 50, 'the last gauge value wins')
})

test('statsd-server: a load the test sends itself is aggregated exactly (counters, sample rates, timers, gauges, sets, bad lines)', async (t) => {
  const app = startScript(t, 'example:statsd', ['--port', '0', '--interval', '200', '--json'])
  const m = await app.waitStderr(/statsd: listening on 127\.0\.0\.1:(\d+)/)
  t.truthy(m, `the server listens (stderr: ${app.stderr()})`)
  if (!m) return
  const port = Number(m[1])
  const tx = await UdpSocket.bind({ address: '127.0.0.1' })
  t.teardown(() => tx.close())
  // D datagrams; datagram i carries 5 lines (one of them bad when i % 10 === 0).
  const D = 600
  const datagram = (i: number) =>
    [`t.hits:${i % 7}|c`, `t.half:1|c|@0.5`, `t.lat:${i % 100}|ms`, `t.level:${i}|g`, i % 10 === 0 ? 'not a metric' : `t.users:u${i % 13}|s`].join('\n')
  let sent = 0
  for (let i = 0; i < D; i += 50) {
    sent += await tx.sendBatch(range(i, i + 50).map((k) => ({ data: datagram(k), address: '127.0.0.1', port })))
    // Flow control: wait until the server's flushes account for what was sent (bounded).
    await app.waitJson(() => app.stdoutLines().filter((o) => o.type === 'flush').reduce((a, o) => a + o.datagrams, 0) >= sent, 20_000)
  }
  t.is(sent, D)
  const r = await app.stop()
  t.is(r.code, 0, r.stderr)
  const summary = jsonLines(r.stdout).find((o) => o.type === 'summary')
  t.truthy(summary, r.stdout)
  // Everything below is computed from what the test sent.
  let hits = 0
  for (let i = 0; i < D; i++) hits += i % 7
  const bad = range(0, D).filter((i) => i % 10 === 0).length
  t.is(summary.kernelDrops, 0)
  t.is(summary.datagrams, D)
  t.is(summary.truncated, 0)
  t.is(summary.lines, 5 * D)
  t.is(summary.badLines, bad)
  t.is(summary.counters['t.hits'], hits)
  t.is(summary.counters['t.half'], 2 * D, '|@0.5 counts double')
  t.is(summary.timerCounts['t.lat'], D)
  t.is(summary.gauges['t.level'], D - 1, 'the last gauge value sent wins')
  const flushes = jsonLines(r.stdout).filter((o) => o.type === 'flush')
  const sets = flushes.filter((f) => f.sets['t.users'] !== undefined).map((f) => f.sets['t.users'])
  t.true(sets.length >= 1 && sets.every((n) => n >= 1 && n <= 13), `set sizes per flush ${sets}`)
})

test('statsd-server: the line parser (unit)', (t) => {
  const agg = new Aggregator()
  const text = [
    'a.count:3|c',
    'a.count:1|c|@0.25',
    'a.count:2|c|#tag:x',
    'g:10|g',
    'g:+5|g',
    'g:-3|g',
    't:12.5|ms',
    't:7|h|@0.5',
    'u:alice|s',
    'u:bob|s',
    'u:alice|s',
    'crlf:1|c\r',
    'bad line',
    'bad:x|c',
    'bad:1|zz',
    'bad:1|c|@2',
    '',
  ].join('\n')
  const buf = Buffer.from(`xx${text}yy`)
  agg.datagram(buf, 2, buf.length - 2)
  const f = agg.flush(1)
  t.deepEqual(f.counters, { 'a.count': { value: 9, perSecond: 9 }, crlf: { value: 1, perSecond: 1 } })
  t.deepEqual(f.gauges, { g: 12 })
  t.like(f.timers.t, { count: 2, sampledCount: 3, min: 7, max: 12.5, mean: 9.75 })
  t.deepEqual(f.sets, { u: 2 })
  t.is(f.lines, 16)
  t.is(f.badLines, 4)
  // Gauges persist across flushes; counters reset.
  const g = agg.flush(1)
  t.deepEqual(g.counters, {})
  t.deepEqual(g.gauges, { g: 12 })
})

test('statsd-server and syslog-collector can be required from a script run with its own arguments (they read argv only when run as main)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'udp-mmsg-require-example-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const script = join(dir, 'uses-aggregator.js')
  writeFileSync(
    script,
    `const { Aggregator } = require(${JSON.stringify(join(ROOT, 'examples', 'statsd-server.js'))})
const { parseSyslog } = require(${JSON.stringify(join(ROOT, 'examples', 'syslog-collector.js'))})
const agg = new Aggregator()
const buf = Buffer.from('hits:2|c\\nhits:3|c')
agg.datagram(buf, 0, buf.length)
const rec = parseSyslog('<13>Jan  1 00:00:00 host app: hello', '127.0.0.1:1', new Date(0))
console.log(JSON.stringify({ hits: agg.flush(1).counters.hits.value, argv: process.argv.slice(2), msg: rec && rec.message }))
`,
  )
  // A positional and an option neither example knows: parsing them would throw
  // ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL / ERR_PARSE_ARGS_UNKNOWN_OPTION.
  const r = await runNode([script, 'input.txt', '--verbose'], { cwd: dir })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout.trim()), { hits: 5, argv: ['input.txt', '--verbose'], msg: 'hello' })
})

test('syslog-collector: --generate load becomes NDJSON records with the right fields (--out FILE)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'udp-mmsg-syslog-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'out.ndjson')
  const r = await runScript('example:syslog', ['--port', '0', '--duration', '2', '--generate', '1000', '--out', file])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stderr, /\[\s*\d+ s\]\s+[\d,]+ msgs\/s/, 'live rate line')
  const summary = jsonLines(r.stderr).find((o) => o.type === 'summary')
  t.truthy(summary)
  const records = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
  t.log(`generated ${summary.generated}, received ${summary.received}, written ${records.length}`)
  t.true(records.length > 0)
  t.is(records.length, summary.written)
  t.is(summary.received, summary.written)
  t.true(summary.received <= summary.generated)
  t.is(summary.invalid, 0)
  const seqs = new Set<number>()
  for (const rec of records) {
    t.regex(rec.source, /^127\.0\.0\.1:\d+$/)
    t.false(Number.isNaN(Date.parse(rec.received)))
    const seq = Number(/^message (\d+)$/.exec(rec.message)![1])
    seqs.add(seq)
    if (seq % 2 === 0) {
      t.like(rec, { protocol: 'rfc5424', facility: 16, severity: 6, facilityName: 'local0', severityName: 'info', hostname: 'gen-host', appName: 'genapp', procId: '1234', msgId: 'ID47' })
      t.deepEqual(rec.structuredData, { 'exampleSDID@32473': { iut: '3', seq: String(seq) } })
    } else {
      t.like(rec, { protocol: 'rfc3164', facility: 1, severity: 5, facilityName: 'user', severityName: 'notice', hostname: 'gen-host', appName: 'gentag', procId: '99', structuredData: null })
    }
    t.false(Number.isNaN(Date.parse(rec.timestamp)))
  }
  t.is(seqs.size, records.length, 'no duplicates')
  for (const s of seqs) t.true(s >= 0 && s < summary.generated)
})

test('syslog-collector: the parser on the RFC examples (unit)', (t) => {
  const now = new Date(2024, 9, 12, 10, 0, 0)
  const p = (m: string) => parseSyslog(m, '127.0.0.1:1', now)
  t.like(p("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"), {
    protocol: 'rfc3164',
    facility: 4,
    severity: 2,
    hostname: 'mymachine',
    appName: 'su',
    procId: null,
    message: "'su root' failed for lonvick on /dev/pts/8",
    timestamp: new Date(2024, 9, 11, 22, 14, 15).toISOString(),
  })
  t.like(p('<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!'), { protocol: 'rfc3164', hostname: '10.0.0.99', appName: null, message: 'Use the BFG!' })
  t.like(p("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \uFEFF'su root' failed for lonvick on /dev/pts/8"), {
    protocol: 'rfc5424',
    facility: 4,
    severity: 2,
    timestamp: '2003-10-11T22:14:15.003Z',
    hostname: 'mymachine.example.com',
    appName: 'su',
    procId: null,
    msgId: 'ID47',
    structuredData: null,
    message: "'su root' failed for lonvick on /dev/pts/8",
  })
  const sd = p(
    '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high" note="a \\"quoted\\" \\] value"]',
  )
  t.deepEqual(sd.structuredData, {
    'exampleSDID@32473': { iut: '3', eventSource: 'Application', eventID: '1011' },
    'examplePriority@32473': { class: 'high', note: 'a "quoted" ] value' },
  })
  t.is(sd.message, '')
  t.like(p('no priority'), { protocol: 'invalid', raw: 'no priority' })
  t.like(p('<999>1 x'), { protocol: 'invalid' })
})

test('reuseport-ingester: each flow the test sends lands whole on one worker; the worker counts and checksums match what was sent', async (t) => {
  const app = startScript(t, 'example:reuseport', ['--port', '0', '--workers', '2', '--json'])
  const m = await app.waitStderr(/reuseport: 2 workers on 127\.0\.0\.1:(\d+)/)
  t.truthy(m, `the workers listen (stderr: ${app.stderr()})`)
  if (!m) return
  const port = Number(m[1])
  // 32 flows (source sockets), PER datagrams each. The workers sum the u32 LE at the start of
  // each datagram: flow f's first datagram carries 2 ** f, the others 0, so a worker's checksum
  // is the bit set of the flows it received and its count must be PER times their number.
  const FLOWS = 32
  const PER = 40
  const flows: UdpSocket[] = []
  t.teardown(() => flows.forEach((s) => s.close()))
  for (let f = 0; f < FLOWS; f++) flows.push(await UdpSocket.bind({ address: '127.0.0.1' }))
  const datagram = (f: number, j: number) => {
    const b = Buffer.alloc(64, f)
    b.writeUInt32LE(j === 0 ? 2 ** f : 0, 0)
    return b
  }
  let sent = 0
  for (let j = 0; j < PER; j += 10) {
    const counts = await Promise.all(flows.map((s, f) => s.sendBatch(range(j, j + 10).map((k) => ({ data: datagram(f, k), address: '127.0.0.1', port })))))
    sent += counts.reduce((a, b) => a + b, 0)
    // Flow control: wait until the workers' reports account for what was sent (bounded).
    await app.waitJson((o) => o.type === 'stats' && o.total >= sent, 20_000)
  }
  t.is(sent, FLOWS * PER)
  const r = await app.stop()
  t.is(r.code, 0, r.stderr)
  t.regex(r.stderr, /\[\s*\d+ s\]\s+[\d,]+ datagrams\/s\s+total [\d,]+\s+\| w0 [\d,]+\/s\s+w1 [\d,]+\/s/, 'live rate line')
  const summary = jsonLines(r.stdout).find((o) => o.type === 'summary')
  t.truthy(summary, r.stdout)
  t.is(summary.port, port)
  t.is(summary.workers.length, 2)
  const popcount = (x: number) => x.toString(2).split('').filter((c) => c === '1').length
  const [w0, w1] = summary.workers
  t.log(`flows per worker: ${popcount(w0.checksum)} + ${popcount(w1.checksum)}; datagrams ${w0.datagrams} + ${w1.datagrams}; drops ${summary.kernelDrops}`)
  t.is(summary.kernelDrops, 0)
  t.is((w0.checksum | w1.checksum) >>> 0, 0xffffffff, 'every flow the test sent arrived')
  t.is((w0.checksum & w1.checksum) >>> 0, 0, 'no flow was split over both workers (SO_REUSEPORT balances by flow)')
  for (const w of [w0, w1]) {
    t.true(w.checksum !== 0, `worker ${w.id} got flows (32 flows over 2 sockets)`)
    t.is(w.datagrams, PER * popcount(w.checksum), `worker ${w.id}: every datagram of its flows, once`)
    t.is(w.bytes, 64 * w.datagrams, `worker ${w.id}: 64 bytes per datagram`)
  }
  t.is(summary.total, FLOWS * PER, 'the total is what the test sent')
})
