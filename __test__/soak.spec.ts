// Reliability: the quick soak (`node scripts/soak.js --quick`, ~12 s of a native sender at up to
// 200 k datagrams/s into one udp-mmsg socket with per-datagram checksums), run as a child
// process; its JSON line is asserted here. Nothing timed is asserted except the generous
// event-loop bound; the accounting must be exact whatever rate the machine reaches.
import test from 'ava'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

const ROOT = path.join(__dirname, '..')
const CEILING = path.join(ROOT, 'benchmark', 'ceiling', 'target', 'release', 'ceiling')

interface SoakResult {
  ok: boolean
  sent: number
  received: number
  kernelDrops: number
  missing: number
  duplicates: number
  badChecksum: number
  badLength: number
  truncated: number
  recvErrors: number
  rss: { start: number; middle: number; end: number; growthPct: number }
  fds: { baseline: number; start: number; middle: number; end: number; afterClose: number }
  threads: { baseline: number; start: number; middle: number; end: number; afterClose: number }
  loopDelayMs: { p50: number; p99: number; max: number }
  checks: Record<string, boolean>
  problems: string[]
}

function runSoak(args: string[], limitMs: number): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'soak.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

test('quick soak: exact accounting, intact payloads, no fd/thread/RSS growth, responsive event loop', async (t) => {
  t.timeout(180_000)
  if (!fs.existsSync(CEILING)) t.log('benchmark/ceiling is not built: the soak builds it first (cargo build --release)')
  const r = await runSoak(['--quick', '--json-only'], 170_000)
  const line = r.stdout.trim().split('\n').pop() || ''
  let j: SoakResult
  try {
    j = JSON.parse(line)
  } catch {
    t.fail(`no JSON line from the soak (exit ${r.code}, signal ${r.signal}); stderr: ${r.stderr.slice(-2000)}`)
    return
  }
  t.log(
    `sent ${j.sent}, received ${j.received}, kernelDrops ${j.kernelDrops}; RSS ${(j.rss.middle / 1048576).toFixed(1)} -> ${(j.rss.end / 1048576).toFixed(1)} MiB; ` +
      `fds ${j.fds.baseline}/${j.fds.end}/${j.fds.afterClose}; p99 ${j.loopDelayMs.p99} ms`,
  )
  t.true(j.sent > 0, 'the sender sent something')
  t.is(j.received + j.kernelDrops, j.sent, 'received + kernelDrops === sent, exactly')
  t.is(j.missing, j.kernelDrops, 'the missing sequence numbers are exactly the kernel drops')
  t.is(j.duplicates, 0)
  t.is(j.badChecksum, 0)
  t.is(j.badLength, 0)
  t.is(j.truncated, 0)
  t.is(j.recvErrors, 0)
  t.deepEqual(j.problems, [])
  t.is(j.fds.middle, j.fds.end, 'no fd growth while receiving (from the middle: the shared coalescing timerfd appears with the first backlog)')
  t.is(j.fds.afterClose, j.fds.baseline, 'fds back to the baseline after close')
  t.is(j.threads.afterClose, j.threads.baseline, 'no thread is left after close')
  const grownMiB = (j.rss.end - j.rss.middle) / 1048576
  t.true(j.rss.growthPct < 5 || grownMiB < 24, `RSS growth middle -> end ${j.rss.growthPct} % (${grownMiB.toFixed(1)} MiB): < 5 % or < 24 MiB`)
  t.true(j.loopDelayMs.p99 < 200, `event-loop delay p99 ${j.loopDelayMs.p99} ms < 200 ms`)
  t.true(j.ok, `every soak check passes: ${JSON.stringify(j.checks)}`)
  t.is(r.code, 0, 'the soak exits with 0')
})

test('the soak exits non-zero when a check fails (an impossible event-loop bound)', async (t) => {
  t.timeout(120_000)
  // A 1 ms p99 bound cannot be met (the 5 ms sampling interval is part of every figure): the
  // script must report ok: false and exit 1. Guards against a soak that always passes.
  const r = await runSoak(['--duration', '3', '--rate', '20000', '--p99-limit', '1', '--json-only'], 110_000)
  const j = JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as SoakResult
  t.false(j.ok)
  t.false(j.checks.loopDelayP99, 'a 1 ms p99 bound fails (the 5 ms sampling interval alone exceeds it)')
  t.is(j.received + j.kernelDrops, j.sent, 'the accounting is still exact')
  t.is(r.code, 1)
})
