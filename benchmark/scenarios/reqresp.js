'use strict'
// Scenario `reqresp`: request/response throughput of a small DNS-like server under a load
// generator with 1 and with 64 concurrent clients, each in its own process; and of a client
// that opens a new socket per query against a node:dgram server (see README.md).

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
const perQueryKey = (kind) => `${NAMES[kind]} client, a socket per query`

/** Untimed warm-up of a per-query run: long enough for some thousand sockets, so each
 * implementation's JS is optimized by then. */
const perQueryWarmup = (cfg) => (cfg.quick ? 100 : 1000)

/** One run of a `kind` client opening a socket per query, against a node:dgram DNS-like server. */
async function oncePerQuery(cfg, kind) {
  const durationMs = Math.round(cfg.reqrespDuration * 1000)
  const warmupMs = perQueryWarmup(cfg)
  const limit = durationMs + warmupMs + 30_000
  const srv = await startServer('dns', 'dgram', limit)
  try {
    const opts = { port: srv.port, durationMs, warmupMs, limitMs: limit }
    const p = node(PEER, ['perquery', kind, JSON.stringify(opts)], { name: `${NAMES[kind]} per-query client`, limitMs: limit + 5000 })
    const r = await resultOf(p, limit)
    return { ...r, brief: `${fmtNum(r.qps)} queries/s${r.timeouts ? `, ${r.timeouts} timeouts` : ''}` }
  } finally {
    await stopServer(srv)
  }
}

async function run(cfg) {
  console.error(
    `reqresp: DNS-like server, ${CLIENTS.join(' and ')} clients with one query in flight each, ${cfg.reqrespDuration} s per run`,
  )
  const impls = []
  for (const clients of CLIENTS) for (const kind of KINDS) impls.push([key(kind, clients), () => once(cfg, kind, clients)])
  for (const kind of KINDS) impls.push([perQueryKey(kind), () => oncePerQuery(cfg, kind)])
  // At least 7 rounds: with one query in flight, a run's rate moves ±20 % with the VM's
  // scheduling (each query is two wake-ups of two processes), more than the servers differ;
  // benchmark/pingpong.js measures their CPU per query without that noise.
  const nRounds = cfg.quick ? cfg.reps : Math.max(cfg.reps, 7)
  const rows = await interleave('reqresp', nRounds, impls)
  const runs = []
  for (const clients of CLIENTS) for (const kind of KINDS) runs.push({ server: kind, clients, rows: rows[key(kind, clients)] })
  const perQuery = KINDS.map((kind) => ({ client: kind, rows: rows[perQueryKey(kind)] }))
  return { duration: cfg.reqrespDuration, rounds: nRounds, runs, perQuery, perQueryWarmupMs: perQueryWarmup(cfg) }
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
  const pq = perQueryTables(s)
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
      ...pq.sections,
    ],
    summary: [...summary, ...pq.summary],
    ratios: [...ratios, ...pq.ratios],
    targets,
  }
}

/** The socket-per-query client runs: measured beside node:dgram, not one of issue 13's targets. */
function perQueryTables(s) {
  const runs = s.perQuery || []
  const base = runs.find((r) => r.client === 'dgram')
  const bq = base && base.rows ? stats(base.rows, 'qps') : null
  const rows = []
  const summary = []
  const ratios = []
  for (const one of runs) {
    const impl = NAMES[one.client]
    const q = one.rows ? stats(one.rows, 'qps') : null
    if (!q) {
      const why = (one.rows || []).find((r) => r.failed)
      rows.push([impl, `failed: ${why ? why.failed.slice(0, 80) : 'no runs'}`, '–', '–'])
      continue
    }
    const isBase = one.client === 'dgram'
    const f = isBase ? null : factor(q, bq)
    const timeouts = one.rows.reduce((a, r) => a + (r.timeouts || 0), 0)
    rows.push([impl, cell(q), String(timeouts), isBase ? 'baseline' : f === null ? '–' : `${f.toFixed(2)}×`])
    summary.push({ scenario: 'reqresp', impl, metric: 'queries/s, a socket per query', unit: 'queries/s', better: 'higher', ...q })
    if (!isBase && f)
      ratios.push({
        scenario: 'reqresp',
        metric: 'queries/s',
        label: `${impl} client vs node:dgram, a socket per query`,
        short: `Socket per query: ${SHORT[one.client]} vs dgram`,
        vs: 'node:dgram',
        value: f,
      })
  }
  return {
    sections: [
      {
        id: 'reqresp-perquery',
        title: `Request/response: a new client socket per query, ${s.duration} s per run`,
        intro:
          'One client opens a socket for every query (create, send, wait for the answer, close; as DNS clients such as dns2 do), against a node:dgram DNS-like server in its own process; the client is node:dgram, UdpSocket or the facade. ' +
          `Answers per second after a ${(s.perQueryWarmupMs || 1000) / 1000} s untimed warm-up; median [min–max] of ${rounds(s.rounds)}. Shown beside node:dgram; not one of issue 13's targets.`,
        header: ['Client', 'Queries/s', 'Timeouts', '÷ node:dgram'],
        rows,
      },
    ],
    summary,
    ratios,
  }
}

module.exports = { id: 'reqresp', title: 'Request/response', run, tables }
