#!/usr/bin/env node
'use strict'
// One sendBatch to many distinct destinations: total time, time spent packing (the part of the
// call that runs before sendBatch returns), and the longest event-loop block, for several
// batch sizes. Loopback only (::1): each destination is a different spelling of ::1 (groups
// written with 1..4 digits) at one of 8 ports, so every message has a destination of its own
// while every datagram still goes to ::1. The receivers never read: the kernel drops what does
// not fit their buffers, which costs the sender nothing.
//
//   node benchmark/send-many-dests.js [--sizes 65536,262144,524288] [--reps 1]
//
// Each size runs in a child process of its own (fresh heap), one at a time. Prints a table and
// one JSON line per run. `syncMs` is the sendBatch call itself (validating and packing every
// message, then the first slice), `longestAfterCallMs` the longest event-loop block while the
// rest of the batch goes. Timings are only meaningful on an otherwise idle machine.

const { spawnSync } = require('node:child_process')
const path = require('node:path')

const RECEIVERS = 8

/** A distinct spelling of ::1 for each k < 65,536. */
function spellingOfLoopback(k) {
  const groups = []
  for (let g = 0; g < 8; g++) groups.push((g === 7 ? '1' : '0').padStart(1 + ((k >> (2 * g)) & 3), '0'))
  return groups.join(':')
}

/** Runs one measurement in this process: `count` messages, all to distinct destinations. */
async function child(count) {
  const { UdpSocket } = require('udp-mmsg')
  const rxs = Array.from({ length: RECEIVERS }, () => UdpSocket.bindSync({ type: 'udp6', address: '::1', port: 0 }))
  const tx = UdpSocket.bindSync({ type: 'udp6', address: '::1', port: 0 })
  const ports = rxs.map((r) => r.localAddress().port)
  const data = Buffer.alloc(32, 7)
  const messages = new Array(count)
  for (let i = 0; i < count; i++) {
    messages[i] = { data, address: spellingOfLoopback(i & 0xffff), port: ports[(i >>> 16) % RECEIVERS] }
  }
  // The longest gap between two turns of a setImmediate chain is the longest time the event
  // loop was held (sendBatch's own synchronous part included).
  let longest = 0
  let last = performance.now()
  let ticking = true
  const tick = () => {
    const now = performance.now()
    if (now - last > longest) longest = now - last
    last = now
    if (ticking) setImmediate(tick)
  }
  setImmediate(tick)
  await new Promise((resolve) => setImmediate(resolve))
  const t0 = performance.now()
  const p = tx.sendBatch(messages)
  const packed = performance.now() - t0
  // From here on: only the slices (the call's own block is counted in `longest` above).
  const longestCall = longest
  longest = 0
  last = performance.now()
  const sent = await p
  const total = performance.now() - t0
  ticking = false
  const s = tx.stats()
  for (const r of rxs) r.close()
  tx.close()
  process.stdout.write(
    `${JSON.stringify({ count, sent, totalMs: +total.toFixed(1), syncMs: +packed.toFixed(1), longestBlockMs: +Math.max(longest, longestCall, packed).toFixed(1), longestAfterCallMs: +longest.toFixed(1), sendSyscalls: s.sendSyscalls })}\n`,
  )
}

function main() {
  const args = process.argv.slice(2)
  const opt = (name, dflt) => {
    const i = args.indexOf(name)
    return i === -1 ? dflt : args[i + 1]
  }
  if (args[0] === '--child') return child(Number(args[1]))
  const sizes = opt('--sizes', '65536,262144,524288').split(',').map(Number)
  const reps = Number(opt('--reps', '1'))
  const rows = []
  for (const n of sizes) {
    for (let r = 0; r < reps; r++) {
      const out = spawnSync(process.execPath, [__filename, '--child', String(n)], { encoding: 'utf8', timeout: 300_000 })
      if (out.status !== 0) {
        process.stderr.write(`size ${n}: child failed (${out.status ?? out.signal})\n${out.stderr}`)
        process.exitCode = 1
        continue
      }
      const row = JSON.parse(out.stdout.trim().split('\n').pop())
      process.stdout.write(`${JSON.stringify(row)}\n`)
      rows.push(row)
    }
  }
  process.stdout.write(
    '\n| messages | total ms | sendBatch call (sync) ms | longest event-loop block ms | longest block after the call ms |\n|---:|---:|---:|---:|---:|\n',
  )
  for (const r of rows) process.stdout.write(`| ${r.count} | ${r.totalMs} | ${r.syncMs} | ${r.longestBlockMs} | ${r.longestAfterCallMs} |\n`)
}

const ran = main()
if (ran && typeof ran.catch === 'function') {
  ran.catch((e) => {
    process.stderr.write(`${e.stack}\n`)
    process.exit(1)
  })
}
