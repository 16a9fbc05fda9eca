'use strict'
// Child processes of the benchmark (every participant runs in its own) and the round driver.
// Every child is bounded in time and killed when the benchmark exits (also on SIGINT/SIGTERM).

const path = require('node:path')
const { spawn } = require('node:child_process')
const { fmtNum } = require('./format.js')

const WORKER = path.join(__dirname, 'worker.js')

const children = new Set()

function killAll() {
  for (const c of children) {
    try {
      c.kill('SIGKILL')
    } catch {}
  }
  children.clear()
}
process.on('exit', killAll)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAll()
    process.exit(130)
  })
}

/**
 * Starts a child; its stdout JSON lines are queued for `next()`. It is killed after
 * `limitMs` whatever happens.
 */
function start(cmd, args, { name, limitMs, nodeArgs = [] }) {
  const isWorker = cmd === 'worker'
  const file = isWorker ? process.execPath : cmd
  const argv = isWorker ? [...nodeArgs, WORKER, ...args] : args
  const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] })
  children.add(child)
  const p = { name, child, lines: [], waiters: [], stderr: '', exited: false, code: null }
  let buf = ''
  const deliver = () => {
    while (p.waiters.length > 0 && (p.lines.length > 0 || p.exited)) {
      const w = p.waiters.shift()
      clearTimeout(w.timer)
      if (p.lines.length > 0) w.resolve(p.lines.shift())
      else w.reject(new Error(`${name} exited (code ${p.code}) without output: ${p.stderr.slice(-800)}`))
    }
  }
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, i).trim()
      buf = buf.slice(i + 1)
      if (!line.startsWith('{')) continue
      let obj
      try {
        obj = JSON.parse(line)
      } catch {
        continue
      }
      p.lines.push(obj)
    }
    deliver()
  })
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d) => {
    p.stderr = (p.stderr + d).slice(-4000)
  })
  child.stdin.on('error', () => {}) // the child may exit before reading everything
  const killer = setTimeout(() => {
    p.stderr += `\n[killed after ${limitMs} ms]`
    child.kill('SIGKILL')
  }, limitMs)
  p.done = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      children.delete(child)
      p.exited = true
      p.code = code ?? signal
      deliver()
      resolve(p.code)
    })
    child.on('error', (e) => {
      p.stderr += String(e)
    })
  })
  /** Next JSON line from the child (rejects on timeout, exit, or an {"error"} line). */
  p.next = (timeoutMs = limitMs) =>
    new Promise((resolve, reject) => {
      const w = {
        resolve: (obj) => (obj.error ? reject(new Error(`${name}: ${obj.error}`)) : resolve(obj)),
        reject,
        timer: setTimeout(() => {
          const i = p.waiters.indexOf(w)
          if (i !== -1) p.waiters.splice(i, 1)
          reject(new Error(`${name}: no output within ${timeoutMs} ms; stderr: ${p.stderr.slice(-800)}`))
        }, timeoutMs),
      }
      p.waiters.push(w)
      deliver()
    })
  p.write = (line) => {
    if (!p.exited) child.stdin.write(line + '\n')
  }
  p.end = () => {
    if (!p.exited) child.stdin.end()
  }
  p.kill = () => {
    if (!p.exited) child.kill('SIGKILL')
  }
  return p
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// ---- rounds -------------------------------------------------------------------------------

async function repeat(label, reps, fn) {
  const rows = []
  for (let i = 0; i < reps; i++) {
    process.stderr.write(`  ${label} (${i + 1}/${reps})...`)
    const t = Date.now()
    try {
      const r = await fn()
      rows.push(r)
      const what = typeof r.brief === 'string' ? r.brief : `${fmtNum(r.pps)} pps`
      process.stderr.write(` ${what}, ${Date.now() - t} ms\n`)
    } catch (e) {
      process.stderr.write(` FAILED: ${e.message.split('\n')[0]}\n`)
      rows.push({ failed: e.message.split('\n')[0].slice(0, 300) })
    }
  }
  return rows
}

/**
 * Runs several implementations in rounds (A B C D, A B C D, ...) instead of blocks, so slow
 * drift in the machine's load hits every implementation alike. Returns { name: rows }.
 */
async function interleave(prefix, reps, impls) {
  const out = {}
  for (const [name] of impls) out[name] = []
  for (let i = 0; i < reps; i++) {
    for (const [name, fn] of impls) out[name].push(...(await repeat(`${prefix} ${name} [round ${i + 1}/${reps}]`, 1, fn)))
  }
  return out
}

module.exports = { start, killAll, sleep, repeat, interleave }
