'use strict'
// Scenario `rtt`: ping-pong round-trip latency. An echo server in one process, a client in
// another doing strictly sequential round trips of a small datagram (see README.md).

const { stats, cell, rounds, fmtNum } = require('../format.js')
const { interleave } = require('../proc.js')
const { PEER, NAMES, SHORT, node, resultOf, startServer, stopServer, verdict, factor, factorCell } = require('./parent.js')

const SERVERS = ['dgram', 'udpsocket', 'facade']
const CLIENTS = ['dgram', 'udpsocket']
const TARGET_P50 = 1.3
const TARGET_P99 = 2

/** One round trip series: a fresh server and a fresh client process. */
async function once(cfg, client, server) {
  const limit = 60_000
  const srv = await startServer('echo', server, limit)
  try {
    const opts = { port: srv.port, count: cfg.rttCount, warmup: cfg.rttWarmup, size: cfg.size, limitMs: limit }
    const c = node(PEER, ['rtt-client', client, JSON.stringify(opts)], { name: `${NAMES[client]} rtt client`, limitMs: limit + 5000 })
    const r = await resultOf(c, limit)
    if (r.error) throw new Error(r.error)
    return { ...r, brief: `p50 ${fmtNum(r.p50)} µs, p99 ${fmtNum(r.p99)} µs${r.lost ? `, ${r.lost} lost` : ''}` }
  } finally {
    await stopServer(srv)
  }
}

const key = (client, server) => `${NAMES[client]} client → ${NAMES[server]} server`

async function run(cfg) {
  console.error(
    `rtt: ${cfg.rttCount} sequential round trips of ${cfg.size} bytes (after ${cfg.rttWarmup} untimed), every client against every server`,
  )
  const impls = []
  for (const client of CLIENTS) for (const server of SERVERS) impls.push([key(client, server), () => once(cfg, client, server)])
  const rounds = cfg.quick ? cfg.reps : Math.max(cfg.reps, 5)
  const rows = await interleave('rtt', rounds, impls)
  const pairs = []
  for (const client of CLIENTS) for (const server of SERVERS) pairs.push({ client, server, rows: rows[key(client, server)] })
  return { count: cfg.rttCount, warmup: cfg.rttWarmup, size: cfg.size, rounds, pairs }
}

function tables(s) {
  const header = [
    'Client',
    'Server',
    'p50 (µs)',
    'p99 (µs)',
    'Mean (µs)',
    'Lost',
    `p50 ÷ node:dgram server (target ≤ ${TARGET_P50}×)`,
    `p99 ÷ node:dgram server (target ≤ ${TARGET_P99}×)`,
  ]
  const rows = []
  const summary = []
  const ratios = []
  const targets = []
  for (const client of CLIENTS) {
    const base = s.pairs.find((p) => p.client === client && p.server === 'dgram')
    const b50 = base ? stats(base.rows, 'p50') : null
    const b99 = base ? stats(base.rows, 'p99') : null
    for (const pair of s.pairs.filter((p) => p.client === client)) {
      const p50 = stats(pair.rows, 'p50')
      const p99 = stats(pair.rows, 'p99')
      const impl = `${NAMES[pair.server]} ← ${NAMES[client]} client`
      const failed = pair.rows.filter((r) => r.failed)
      if (!p50) {
        rows.push([
          NAMES[client],
          NAMES[pair.server],
          `failed: ${failed.length ? failed[0].failed.slice(0, 80) : 'no runs'}`,
          '–',
          '–',
          '–',
          '–',
          '–',
        ])
        continue
      }
      const isBase = pair.server === 'dgram'
      const f50 = isBase ? null : factor(p50, b50)
      const f99 = isBase ? null : factor(p99, b99)
      const lost = pair.rows.reduce((a, r) => a + (r.lost || 0), 0)
      rows.push([
        NAMES[client],
        NAMES[pair.server],
        cell(p50),
        cell(p99),
        cell(stats(pair.rows, 'mean')),
        String(lost),
        isBase ? 'baseline' : factorCell(f50, (f) => f <= TARGET_P50),
        isBase ? 'baseline' : factorCell(f99, (f) => f <= TARGET_P99),
      ])
      summary.push({ scenario: 'rtt', impl, metric: 'p50 round trip', unit: 'µs', better: 'lower', ...p50 })
      summary.push({ scenario: 'rtt', impl, metric: 'p99 round trip', unit: 'µs', better: 'lower', ...p99 })
      if (isBase) continue
      // Ratios keep the suite's convention (> 1 = udp-mmsg better): node:dgram ÷ udp-mmsg.
      for (const [what, f] of [
        ['p50', f50],
        ['p99', f99],
      ]) {
        const label = `${what}, ${NAMES[pair.server]} server vs node:dgram (${NAMES[client]} client)`
        const short = `RTT ${what}: ${SHORT[pair.server]} server vs dgram (${SHORT[client]} client)`
        if (f) ratios.push({ scenario: 'rtt', metric: `${what} round trip`, label, short, vs: 'node:dgram', value: 1 / f })
      }
      for (const [what, f, lim, own, ref] of [
        ['p50', f50, TARGET_P50, p50, b50],
        ['p99', f99, TARGET_P99, p99, b99],
      ]) {
        targets.push({
          scenario: 'rtt',
          measure: `${what}, ${NAMES[pair.server]} server, ${NAMES[client]} client`,
          target: `≤ ${lim}× node:dgram server`,
          measured: f === null ? '–' : `${f.toFixed(2)}× (${fmtNum(own.median)} vs ${fmtNum(ref.median)} µs)`,
          result: verdict(f === null ? null : f <= lim),
        })
      }
    }
  }
  return {
    sections: [
      {
        id: 'rtt',
        title: `Round-trip latency: ${s.count} sequential round trips of ${s.size} bytes`,
        intro:
          `An echo server and a client, each in its own process; the client sends the next datagram when the reply arrived (after ${s.warmup} untimed round trips) and times each with process.hrtime.bigint. ` +
          `Percentiles of one run, then the median [min–max] of ${rounds(s.rounds)}. Servers and clients run at their defaults; the factor is against the node:dgram server with the same client.`,
        header,
        rows,
        left: 2,
      },
    ],
    summary,
    ratios,
    targets,
  }
}

module.exports = { id: 'rtt', title: 'Round-trip latency', run, tables }
