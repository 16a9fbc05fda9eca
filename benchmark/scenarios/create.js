'use strict'
// Scenario `create`: the cost of create + bind(127.0.0.1, 0) + close of one socket, in a
// sequential loop, each implementation in its own process (see README.md).

const { stats, cell, rounds, fmtNum } = require('../format.js')
const { interleave } = require('../proc.js')
const { RESOURCES, NAMES, SHORT, KINDS, node, resultOf, verdict, factor, factorCell } = require('./parent.js')

const TARGET = 2

async function once(cfg, kind) {
  const limit = cfg.quick ? 30_000 : 120_000
  const p = node(RESOURCES, ['create', kind, JSON.stringify({ count: cfg.createCount, warmup: cfg.createWarmup, limitMs: limit })], {
    name: `${NAMES[kind]} create`,
    limitMs: limit + 5000,
  })
  const r = await resultOf(p, limit)
  return { ...r, brief: `${fmtNum(r.medianUs)} µs per op (median)` }
}

async function run(cfg) {
  console.error(`create: ${cfg.createCount} × create + bind + close, sequential (after ${cfg.createWarmup} untimed)`)
  const rounds = cfg.quick ? cfg.reps : Math.max(cfg.reps, 5)
  const impls = await interleave(
    'create',
    rounds,
    KINDS.map((k) => [NAMES[k], () => once(cfg, k)]),
  )
  return { count: cfg.createCount, warmup: cfg.createWarmup, rounds, impls }
}

function tables(s) {
  const header = [
    'Implementation',
    'Per op, median (µs)',
    'Per op, mean (µs)',
    'Per op, p99 (µs)',
    `Median ÷ node:dgram (target ≤ ${TARGET}×)`,
  ]
  const rows = []
  const summary = []
  const ratios = []
  const targets = []
  const base = stats(s.impls[NAMES.dgram] || [], 'medianUs')
  for (const kind of KINDS) {
    const impl = NAMES[kind]
    const rs = s.impls[impl]
    if (!rs) continue
    const med = stats(rs, 'medianUs')
    if (!med) {
      const why = rs.find((r) => r.failed)
      rows.push([impl, `failed: ${why ? why.failed.slice(0, 80) : 'no runs'}`, '–', '–', '–'])
      continue
    }
    const isBase = impl === NAMES.dgram
    const f = isBase ? null : factor(med, base)
    rows.push([
      impl,
      cell(med),
      cell(stats(rs, 'meanUs')),
      cell(stats(rs, 'p99Us')),
      isBase ? 'baseline' : factorCell(f, (x) => x <= TARGET),
    ])
    summary.push({ scenario: 'create', impl, metric: 'create + bind + close', unit: 'µs', better: 'lower', ...med })
    if (isBase) continue
    if (f)
      ratios.push({
        scenario: 'create',
        metric: 'create + bind + close',
        label: `${impl} vs node:dgram`,
        short: `Create+bind+close: ${SHORT[kind]} vs dgram`,
        vs: 'node:dgram',
        value: 1 / f,
      })
    targets.push({
      scenario: 'create',
      measure: `${impl}: create + bind + close`,
      target: `≤ ${TARGET}× node:dgram`,
      measured: f === null ? '–' : `${f.toFixed(2)}× (${fmtNum(med.median)} vs ${fmtNum(base.median)} µs)`,
      result: verdict(f === null ? null : f <= TARGET),
    })
  }
  return {
    sections: [
      {
        id: 'create',
        title: `Create + bind + close: ${s.count} sockets one after the other`,
        intro:
          'Each operation is finished as its API defines it: node:dgram and the facade wait for the bind callback and the close callback, UdpSocket awaits bind() and its close event. ' +
          `Per-operation times of one run (after ${s.warmup} untimed), then the median [min–max] of ${rounds(s.rounds)}.`,
        header,
        rows,
      },
    ],
    summary,
    ratios,
    targets,
  }
}

module.exports = { id: 'create', title: 'Create + bind + close', run, tables }
