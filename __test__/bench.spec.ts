// The benchmark suite runs and produces well-formed output. `node benchmark/run.js --quick`
// (tiny loads, one repetition) writes into a temporary directory, never over the committed
// benchmark/results.md and chart.svg. Nothing here asserts timings or ratios: only that
// every scenario produced rows whose numbers parse and that the files are well-formed.
import test from 'ava'
import { execFile, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const ROOT = path.join(__dirname, '..')
const RUN = path.join(ROOT, 'benchmark', 'run.js')
const CEILING_MANIFEST = path.join(ROOT, 'benchmark', 'ceiling', 'Cargo.toml')
const CEILING = path.join(ROOT, 'benchmark', 'ceiling', 'target', 'release', 'ceiling')
const SCENARIOS = ['drain', 'live', 'max', 'send', 'memory', 'rtt', 'create', 'sockets', 'reqresp']
// Scenario titles of the ratio rows in results.md (one chart bar each).
const RATIO_ROW = /^\| (Drain|Live receive|Max live receive|Send|Round-trip latency|Create \+ bind \+ close|Request\/response) \|/

interface Run {
  code: number | null
  stdout: string
  stderr: string
  dir: string
}

let run: Run | null = null
let setupError = ''

test.before(async () => {
  // The ceiling binary is the load generator of every scenario: build it (cargo does
  // nothing when it is up to date; a fresh build takes seconds).
  const b = spawnSync('cargo', ['build', '--release', '--manifest-path', CEILING_MANIFEST], {
    encoding: 'utf8',
    timeout: 10 * 60_000,
  })
  if (b.status !== 0 || !fs.existsSync(CEILING)) {
    setupError = `cargo build of the ceiling failed (${b.status}): ${String(b.stderr).slice(-2000)}`
    return
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udp-mmsg-bench-'))
  run = await new Promise<Run>((resolve) => {
    execFile(
      process.execPath,
      [RUN, '--quick', '--out', dir, '--no-ceiling-build'],
      { cwd: ROOT, timeout: 100_000, maxBuffer: 16 << 20, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0
        resolve({ code, stdout: String(stdout), stderr: String(stderr), dir })
      },
    )
  })
})

test.after.always(() => {
  if (run) fs.rmSync(run.dir, { recursive: true, force: true })
})

function ran(t: { fail: (m: string) => void }): Run | null {
  if (setupError) {
    t.fail(setupError)
    return null
  }
  if (!run) {
    t.fail('the benchmark did not run')
    return null
  }
  return run
}

test('the quick benchmark exits 0 and prints a table for every scenario', (t) => {
  const r = ran(t)
  if (!r) return
  t.is(r.code, 0, `exit code; stderr:\n${r.stderr.slice(-3000)}`)
  for (const title of ['Drain', 'Live receive', 'Max live receive', 'Send', 'Memory', 'Round-trip latency', 'Create + bind + close', 'Idle sockets', 'Many sockets', 'Request/response', 'Targets', 'Ratios']) {
    t.true(r.stdout.includes(`== ${title}`), `stdout has the ${title} table`)
  }
  for (const impl of ['udp-mmsg batch', 'udp-mmsg per-message', 'node:dgram', 'ceiling', 'udp-mmsg sendBatch', 'udp-mmsg UdpSocket', 'udp-mmsg/dgram facade']) {
    t.true(r.stdout.includes(impl), `stdout mentions ${impl}`)
  }
})

test('results.md has the machine block and summary rows for every scenario with numbers that parse', (t) => {
  const r = ran(t)
  if (!r) return
  const md = fs.readFileSync(path.join(r.dir, 'results.md'), 'utf8')
  for (const item of ['CPU', 'Cores', 'Kernel', 'Node', 'Date', 'net.core.rmem_max', 'Receive buffers']) {
    t.regex(md, new RegExp(`^\\| ${item.replace(/\./g, '\\.')} \\|`, 'm'), `machine block has ${item}`)
  }
  const start = md.indexOf('## Summary (machine-readable)')
  t.true(start !== -1, 'summary section present')
  const rows = md
    .slice(start)
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| Scenario') && !l.startsWith('| ---'))
    .map((l) => l.slice(2, -2).split(' | '))
  const seen = new Set<string>()
  for (const cells of rows) {
    t.is(cells.length, 9, `summary row has 9 cells: ${cells.join(' | ')}`)
    const [scenario, , , , better, median, min, max, n] = cells
    seen.add(scenario)
    t.true(SCENARIOS.includes(scenario), `known scenario ${scenario}`)
    t.true(better === 'higher' || better === 'lower')
    for (const v of [median, min, max, n]) t.false(Number.isNaN(Number(v)), `number parses: ${v}`)
    t.true(Number(min) <= Number(median) && Number(median) <= Number(max), `min <= median <= max in ${cells.join(' | ')}`)
  }
  for (const s of SCENARIOS) t.true(seen.has(s), `summary has rows for ${s}`)
  const ratios = md.slice(md.indexOf('## Ratios'), start).split('\n').filter((l) => RATIO_ROW.test(l))
  t.true(ratios.length >= 4 + 8 + 2 + 4, 'ratio rows present (rtt: 8, create: 2, reqresp: 4)')
  for (const l of ratios) {
    const v = Number(l.slice(2, -2).split(' | ')[3])
    t.true(Number.isFinite(v) && v > 0, `ratio parses: ${l}`)
  }
})

test('results.json parses and holds every scenario', (t) => {
  const r = ran(t)
  if (!r) return
  const res = JSON.parse(fs.readFileSync(path.join(r.dir, 'results.json'), 'utf8'))
  t.is(typeof res.machine.cpu, 'string')
  t.true(res.config.quick)
  for (const s of SCENARIOS) t.truthy(res.scenarios[s], `scenario ${s} present`)
  for (const s of ['drain', 'live', 'max', 'send']) {
    for (const [impl, rows] of Object.entries(res.scenarios[s].impls as Record<string, Array<Record<string, unknown>>>)) {
      t.true(rows.length >= 1, `${s}/${impl} has a run`)
      for (const row of rows) t.is(row.failed, undefined, `${s}/${impl} did not fail: ${String(row.failed)}`)
    }
  }
  type Rows = Array<Record<string, unknown>>
  const runs: Array<[string, Rows]> = [
    ...res.scenarios.rtt.pairs.map((p: { client: string; server: string; rows: Rows }) => [`rtt ${p.client} → ${p.server}`, p.rows]),
    ...Object.entries(res.scenarios.create.impls as Record<string, Rows>).map(([k, v]) => [`create ${k}`, v]),
    ...Object.entries(res.scenarios.sockets.idle as Record<string, Rows>).map(([k, v]) => [`sockets idle ${k}`, v]),
    ...res.scenarios.reqresp.runs.map((r: { server: string; clients: number; rows: Rows }) => [`reqresp ${r.server} × ${r.clients}`, r.rows]),
  ]
  t.is(runs.length, 6 + 3 + 3 + 6, 'every rtt pair, create, idle-sockets and reqresp participant ran')
  for (const [name, rows] of runs) {
    t.true(rows.length >= 1, `${name} has a run`)
    for (const row of rows) t.is(row.failed, undefined, `${name} did not fail: ${String(row.failed)}`)
  }
  // The checks of the sockets scenario ran in processes that reported (no crash of the
  // harness); node:dgram's results validate the harness itself (the ulimit took effect, EMFILE
  // was reached, fds were counted). udp-mmsg's outcomes are what the scenario reports, not
  // asserted here.
  const dg = 'node:dgram'
  for (const check of ['many', 'emfile']) {
    for (const [impl, r] of Object.entries(res.scenarios.sockets[check] as Record<string, Record<string, unknown>>)) {
      if (impl === dg) t.is(r.crashed, undefined, `sockets ${check} ${impl} reported: ${String(r.crashed)}`)
    }
  }
  const emfile = res.scenarios.sockets.emfile[dg]
  t.is(emfile.code, 'EMFILE', 'node:dgram ran out of fds under the lowered limit')
  t.is(emfile.limit.soft, String(res.config.emfileFiles), 'the lowered RLIMIT_NOFILE reached the child')
  t.is(emfile.fdEnd, emfile.fdStart)
  t.is(res.scenarios.sockets.many[dg].received, res.config.socketsMany)
})

test('results.md has a Targets table whose rows are well-formed', (t) => {
  const r = ran(t)
  if (!r) return
  const md = fs.readFileSync(path.join(r.dir, 'results.md'), 'utf8')
  const at = md.indexOf('## Targets')
  t.true(at !== -1, 'Targets section present')
  const rows = md
    .slice(at, md.indexOf('## Ratios'))
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| Scenario') && !l.startsWith('| ---'))
    .map((l) => l.slice(2, -2).split(' | '))
  const seen = new Set<string>()
  for (const cells of rows) {
    t.is(cells.length, 5, `target row has 5 cells: ${cells.join(' | ')}`)
    seen.add(cells[0])
    t.true(['PASS', 'FAIL', '–'].includes(cells[4]), `result is PASS, FAIL or –: ${cells[4]}`)
  }
  for (const title of ['Round-trip latency', 'Create + bind + close', 'Sockets', 'Request/response']) t.true(seen.has(title), `targets of ${title}`)
  t.true(rows.length >= 8 + 2 + 14 + 4, 'rtt 8, create 2, sockets 14, reqresp 4 target rows')
})

test('chart.svg is well-formed SVG with one bar per ratio', (t) => {
  const r = ran(t)
  if (!r) return
  const svg = fs.readFileSync(path.join(r.dir, 'chart.svg'), 'utf8').trim()
  t.true(svg.startsWith('<svg '), 'root element is <svg')
  t.true(svg.endsWith('</svg>'))
  t.regex(svg, /xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  // XML-ish check: tags balance, attributes are quoted, text has no bare '<' or '&'.
  const stack: string[] = []
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g
  let last = 0
  let m: RegExpExecArray | null
  while ((m = tag.exec(svg)) !== null) {
    const text = svg.slice(last, m.index)
    t.false(/[<>]|&(?!(amp|lt|gt|quot|apos);)/.test(text), `clean text: ${text.slice(0, 80)}`)
    last = tag.lastIndex
    const [, close, name, , self] = m
    if (close) t.is(stack.pop(), name, `closing </${name}> matches`)
    else if (!self) stack.push(name)
  }
  t.is(svg.slice(last).trim(), '', 'nothing after the root element')
  t.deepEqual(stack, [], 'every tag is closed')
  const bars = (svg.match(/<rect /g) || []).length - 1 // minus the background
  const md = fs.readFileSync(path.join(r.dir, 'results.md'), 'utf8')
  const ratioRows = md.slice(md.indexOf('## Ratios')).split('\n').filter((l) => RATIO_ROW.test(l)).length
  t.is(bars, ratioRows, 'one bar per ratio row')
})
