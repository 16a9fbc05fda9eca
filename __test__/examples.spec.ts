// The ingestion examples: each runs briefly through its npm script with its built-in loopback
// generator, and its output must match the load it generated. No timing assertions: rates are
// only checked to be printed, and counts are checked against what was actually sent.
import test from 'ava'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

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

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
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

test('reuseport-ingester: workers on one port each get datagrams, and their totals add up', async (t) => {
  const r = await runScript('example:reuseport', ['--port', '0', '--workers', '2', '--duration', '2', '--generate', '4000', '--json'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stderr, /reuseport: 2 workers on 127\.0\.0\.1:\d+/)
  t.regex(r.stderr, /\[\s*\d+ s\]\s+[\d,]+ datagrams\/s\s+total [\d,]+\s+\| w0 [\d,]+\/s\s+w1 [\d,]+\/s/, 'live rate line')
  const out = jsonLines(r.stdout)
  const summary = out.find((o) => o.type === 'summary')
  t.truthy(summary)
  t.log(`generated ${summary.generated}, per worker ${summary.workers.map((w: any) => w.datagrams).join(' + ')} = ${summary.total}, drops ${summary.kernelDrops}`)
  t.is(summary.workers.length, 2)
  for (const w of summary.workers) t.true(w.datagrams > 0, `worker ${w.id} got datagrams (32 flows over 2 sockets)`)
  t.is(
    summary.workers.reduce((a: number, w: any) => a + w.datagrams, 0),
    summary.total,
  )
  t.is(
    summary.workers.reduce((a: number, w: any) => (a + w.checksum) % 0x100000000, 0),
    summary.checksum,
  )
  t.true(summary.total > 0 && summary.total <= summary.generated)
  if (summary.total === summary.generated) t.is(summary.checksum, summary.generatedChecksum, 'every datagram counted once')
  t.true(out.filter((o) => o.type === 'stats').length >= 1)
})
