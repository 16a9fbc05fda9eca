// The node:dgram StatsD snippet of docs/migrating-from-dgram.md runs unchanged on udp-mmsg/dgram except for its import
// line: the test loads the snippet from a fixture, swaps only that line, runs both versions
// (and the original on node:dgram) and checks their counters against the load it sends.
import test from 'ava'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { UdpSocket } from '../lib/index.js'
import { withTimeout } from './dgram-harness.js'

const ROOT = join(__dirname, '..')
const SNIPPETS = join(__dirname, 'fixtures', 'esm-cjs-snippets')
const DOC = join(ROOT, 'docs', 'migrating-from-dgram.md')

const VARIANTS = {
  cjs: { file: 'statsd-dgram.cjs', from: "const dgram = require('node:dgram')", to: "const dgram = require('udp-mmsg/dgram')" },
  esm: { file: 'statsd-dgram.mjs', from: "import dgram from 'node:dgram'", to: "import dgram from 'udp-mmsg/dgram'" },
} as const

const DATAGRAMS = 200
const EXPECTED = { requests: DATAGRAMS, sampled: 2 * DATAGRAMS, bytes: 10 * DATAGRAMS }

async function freePort(): Promise<number> {
  const s = await UdpSocket.bind({ address: '127.0.0.1' })
  const { port } = s.localAddress()
  s.close()
  return port
}

/** Runs `code` with `node`, sends the load once it listens, sums what it prints until the totals are in. */
async function runSnippet(code: string, esm: boolean): Promise<Record<string, number>> {
  const port = await freePort()
  const args = esm ? ['--input-type=module', '-e', code] : ['-e', code]
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] })
  const totals: Record<string, number> = {}
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const tx = await UdpSocket.bind({ address: '127.0.0.1' })
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        let buf = ''
        // 'close', not 'exit': only then are stdout (maybe the last totals) and stderr read to the end.
        child.on('close', (c) => reject(new Error(`snippet exited (${c}): ${stderr}`)))
        child.stdout.on('data', (d) => {
          buf += d
          let nl
          while ((nl = buf.indexOf('\n')) !== -1) {
            const line = buf.slice(0, nl)
            buf = buf.slice(nl + 1)
            if (line === `statsd listening on 127.0.0.1:${port}`) {
              const msgs = Array.from({ length: DATAGRAMS }, () => ({
                data: 'requests:1|c\nsampled:1|c|@0.5\nbytes:10|c',
                address: '127.0.0.1',
                port,
              }))
              // In small slices: nothing is dropped even on a slow machine.
              ;(async () => {
                for (let i = 0; i < msgs.length; i += 20) {
                  await tx.sendBatch(msgs.slice(i, i + 20))
                  await new Promise((r) => setTimeout(r, 5))
                }
              })().catch(reject)
              continue
            }
            const m = /^(\S+) (\S+)$/.exec(line)
            if (m) totals[m[1]] = (totals[m[1]] || 0) + Number(m[2])
            if (Object.entries(EXPECTED).every(([k, v]) => (totals[k] || 0) >= v)) resolve()
          }
        })
      }),
      'snippet output',
      60_000,
    )
  } finally {
    tx.close()
    child.kill()
  }
  return totals
}

for (const [name, v] of Object.entries(VARIANTS)) {
  test(`the ${name} dgram StatsD snippet runs on udp-mmsg/dgram with only its import line changed`, async (t) => {
    const original = readFileSync(join(SNIPPETS, v.file), 'utf8')
    t.true(original.startsWith(`${v.from}\n`))
    const migrated = original.replace(v.from, v.to)
    // Exactly one line differs.
    const a = original.split('\n')
    const b = migrated.split('\n')
    t.is(a.length, b.length)
    t.is(a.filter((line, i) => line !== b[i]).length, 1)

    t.deepEqual(await runSnippet(migrated, name === 'esm'), EXPECTED, 'udp-mmsg/dgram')
    t.deepEqual(await runSnippet(original, name === 'esm'), EXPECTED, 'node:dgram')
  })
}

test('docs/migrating-from-dgram.md shows the same snippet', (t) => {
  const doc = readFileSync(DOC, 'utf8')
  const body = readFileSync(join(SNIPPETS, VARIANTS.cjs.file), 'utf8').trim()
  t.true(doc.includes(body), 'docs/migrating-from-dgram.md contains __test__/fixtures/esm-cjs-snippets/statsd-dgram.cjs verbatim')
})
