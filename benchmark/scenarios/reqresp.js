'use strict'
// Scenario `reqresp`: request/response throughput of a small DNS-like server under a load
// generator with 1 and with 64 concurrent clients, each in its own process (see README.md).

const { stats, cell, rounds, fmtNum } = require('../format.js')
const { interleave } = require('../proc.js')
const { PEER, NAMES, SHORT, KINDS, node, resultOf, startServer, stopServer, verdict, factor, factorCell } = require('./parent.js')

const TARGET = 1
const CLIENTS = [1, 64]

async function once(cfg, kind, clients) {
  const durationMs = Math.round(cfg.reqrespDuration * 1000)
  const warmupMs = cfg.quick ? 100 : 500
  const limit = durationMs + warmupMs + 30_000
  const srv = await startServer('dns', kind, limit)
  try {
    const opts = { port: srv.port, clients, durationMs, warmupMs, limitMs: limit }
    const p = node(PEER, ['load', JSON.stringify(opts)], { name: `load generator (${clients} clients)`, limitMs: limit + 5000 })
    const r = await resultOf(p, limit)
    return { ...r, brief: `${fmtNum(r.qps)} queries/s${r.timeouts ? `, ${r.timeouts} timeouts` : ''}` }
  } finally {
    await stopServer(srv)
  }
}

const key = (kind, clients) => `${NAMES[kind]}, ${clients} client${clients > 1 ? 's' : ''}`

async function run(cfg) {
  console.error(
    `reqresp: DNS-like server, ${CLIENTS.join(' and ')} clients with one query in flight each, ${cfg.reqrespDuration} s per run`,
  )
  const impls = []
  for (const clients of CLIENTS) for (const kind of KINDS) impls.push([key(kind, clients), () => once(cfg, kind, clients)])
  const rows = await interleave('reqresp', cfg.reps, impls)
  const runs = []
  for (const clients of CLIENTS) for (const kind of KINDS) runs.push({ server: kind, clients, rows: rows[key(kind, clients)] })
  return { duration: cfg.reqrespDuration, rounds: cfg.reps, runs }
}

function tables(s) {
  const header = ['Server', 'Clients', 'Queries/s', 'Timeouts', `÷ node:dgram (target ≥ ${TARGET}×)`]
  const rows = []
  const summary = []
  const ratios = []
  const targets = []
  for (const clients of CLIENTS) {
    const base = s.runs.find((r) => r.clients === clients && r.server === 'dgram')
    const bq = base ? stats(base.rows, 'qps') : null
    for (const run of s.runs.filter((r) => r.clients === clients)) {
      const q = stats(run.rows, 'qps')
      const impl = NAMES[run.server]
      if (!q) {
        const why = run.rows.find((r) => r.failed)
        rows.push([impl, String(clients), `failed: ${why ? why.failed.slice(0, 80) : 'no runs'}`, '–', '–'])
        continue
      }
      const isBase = run.server === 'dgram'
      const f = isBase ? null : factor(q, bq)
      const timeouts = run.rows.reduce((a, r) => a + (r.timeouts || 0), 0)
      rows.push([impl, String(clients), cell(q), String(timeouts), isBase ? 'baseline' : factorCell(f, (x) => x >= TARGET)])
      summary.push({
        scenario: 'reqresp',
        impl,
        metric: `queries/s, ${clients} client${clients > 1 ? 's' : ''}`,
        unit: 'queries/s',
        better: 'higher',
        ...q,
      })
      if (isBase) continue
      if (f)
        ratios.push({
          scenario: 'reqresp',
          metric: 'queries/s',
          label: `${impl} server vs node:dgram, ${clients} client${clients > 1 ? 's' : ''}`,
          short: `Req/resp: ${SHORT[run.server]} vs dgram, ${clients} client${clients > 1 ? 's' : ''}`,
          vs: 'node:dgram',
          value: f,
        })
      targets.push({
        scenario: 'reqresp',
        measure: `${impl} server, ${clients} client${clients > 1 ? 's' : ''}: queries/s`,
        target: `≥ ${TARGET}× node:dgram`,
        measured: f === null ? '–' : `${f.toFixed(2)}× (${fmtNum(q.median)} vs ${fmtNum(bq.median)})`,
        result: verdict(f === null ? null : f >= TARGET),
      })
    }
  }
  return {
    sections: [
      {
        id: 'reqresp',
        title: `Request/response: DNS-like server, ${s.duration} s per run`,
        intro:
          'The server reads the 12-byte header and answers with the same id plus 4 bytes; the load generator (its own process) runs 1 or 64 clients, each a node:dgram socket with one query in flight. ' +
          `Answers per second over the run (after an untimed warm-up); median [min–max] of ${rounds(s.rounds)}.`,
        header,
        rows,
      },
    ],
    summary,
    ratios,
    targets,
  }
}

module.exports = { id: 'reqresp', title: 'Request/response', run, tables }
