'use strict'
// Scenario `sockets`: what idle sockets cost (threads, RSS, virtual memory from
// /proc/self/status), many sockets at once, and running out of file descriptors (see
// README.md). Every run is a fresh child process.

const { stats, cell, rounds, fmtBytes, fmtCount } = require('../format.js')
const { interleave } = require('../proc.js')
const { RESOURCES, NAMES, KINDS, node, resultOf, verdict } = require('./parent.js')

const MiB = 1024 * 1024
const TARGETS = { threads: 4, rss: 16 * MiB, vsize: 256 * MiB }

async function idle(cfg, kind) {
  const limit = 60_000
  const p = node(RESOURCES, ['idle', kind, JSON.stringify({ count: cfg.socketsIdle, settleMs: cfg.quick ? 100 : 300, limitMs: limit })], {
    name: `${NAMES[kind]} idle sockets`,
    limitMs: limit + 5000,
    nodeArgs: ['--expose-gc'],
  })
  const r = await resultOf(p, limit)
  return { ...r, brief: `+${r.threads} threads, +${fmtBytes(r.rss)} RSS, +${fmtBytes(r.vsize)} virtual` }
}

/** Runs a check child; a crash or a missing result becomes { crashed: why }. */
async function check(cfg, mode, kind, opts, files = 0) {
  const limit = cfg.quick ? 30_000 : 120_000
  const p = node(RESOURCES, [mode, kind, JSON.stringify({ ...opts, limitMs: limit })], {
    name: `${NAMES[kind]} ${mode}`,
    limitMs: limit + 5000,
    files,
  })
  try {
    return await resultOf(p, limit + 1000)
  } catch (e) {
    return { crashed: e.message.split('\n')[0].slice(0, 300) }
  }
}

async function run(cfg) {
  console.error(
    `sockets: ${cfg.socketsIdle} idle sockets; ${cfg.socketsMany} at once; ${cfg.emfileCount} under ulimit -n ${cfg.emfileFiles}`,
  )
  const idleRows = await interleave(
    'sockets idle',
    cfg.reps,
    KINDS.map((k) => [NAMES[k], () => idle(cfg, k)]),
  )
  const many = {}
  const emfile = {}
  for (const k of KINDS) {
    process.stderr.write(`  sockets ${NAMES[k]}: ${cfg.socketsMany} at once...`)
    many[NAMES[k]] = await check(cfg, 'many', k, { count: cfg.socketsMany, waitMs: 10_000 })
    process.stderr.write(` ${manyCell(many[NAMES[k]], cfg.socketsMany)}\n`)
    process.stderr.write(`  sockets ${NAMES[k]}: ${cfg.emfileCount} under ulimit -n ${cfg.emfileFiles}...`)
    emfile[NAMES[k]] = await check(cfg, 'emfile', k, { count: cfg.emfileCount }, cfg.emfileFiles)
    process.stderr.write(
      ` ${emfileCells(emfile[NAMES[k]])
        .map((c) => c.text)
        .join('; ')}\n`,
    )
  }
  return {
    idleCount: cfg.socketsIdle,
    manyCount: cfg.socketsMany,
    emfileCount: cfg.emfileCount,
    emfileFiles: cfg.emfileFiles,
    rounds: cfg.reps,
    idle: idleRows,
    many,
    emfile,
  }
}

function manyOk(r, count) {
  return !r.crashed && !r.error && r.opened === count && r.received === count
}

function manyCell(r, count) {
  if (r.crashed) return `failed: ${r.crashed.slice(0, 100)}`
  const what = `${r.opened}/${count} bound, ${r.received}/${count} received; opened in ${r.openMs} ms, ${r.threads} threads`
  return `${manyOk(r, count) ? 'ok' : 'failed'} (${what}${r.error ? `; ${r.error.slice(0, 80)}` : ''})`
}

/** The three EMFILE checks: clean EMFILE error, fds back to the start, still works after. */
function emfileCells(r) {
  if (r.crashed) {
    const text = `failed: ${r.crashed.slice(0, 100)}`
    return [0, 1, 2].map(() => ({ ok: false, text }))
  }
  const clean = r.code === 'EMFILE' && r.opened < r.attempted
  return [
    {
      ok: clean,
      text: `${clean ? 'ok' : 'failed'} (${r.code ? `${r.code} after ${r.opened} sockets: ${r.message}` : `no error: ${r.opened} sockets opened`})`,
    },
    { ok: r.fdEnd === r.fdStart, text: `${r.fdEnd === r.fdStart ? 'ok' : 'failed'} (${r.fdStart} → ${r.fdEnd} fds)` },
    { ok: r.worksAfter, text: r.worksAfter ? 'ok' : 'failed' },
  ]
}

function tables(s) {
  const summary = []
  const targets = []
  const idleHeader = [
    'Implementation',
    'Threads added',
    'RSS added',
    'Virtual memory added',
    'Targets (≤ 4 threads, ≤ 16 MiB RSS, ≤ 256 MiB virtual)',
  ]
  const idleRows = []
  for (const [impl, rs] of Object.entries(s.idle)) {
    const st = { threads: stats(rs, 'threads'), rss: stats(rs, 'rss'), vsize: stats(rs, 'vsize') }
    if (!st.threads) {
      const why = rs.find((r) => r.failed)
      idleRows.push([impl, `failed: ${why ? why.failed.slice(0, 80) : 'no runs'}`, '–', '–', '–'])
      continue
    }
    const isBase = impl === NAMES.dgram
    const ok = Object.keys(TARGETS).map((k) => st[k].median <= TARGETS[k])
    idleRows.push([
      impl,
      cell(st.threads, fmtCount),
      cell(st.rss, fmtBytes),
      cell(st.vsize, fmtBytes),
      isBase ? 'for comparison' : ok.map(verdict).join(' / '),
    ])
    summary.push({
      scenario: 'sockets',
      impl,
      metric: `threads added by ${s.idleCount} sockets`,
      unit: 'threads',
      better: 'lower',
      ...st.threads,
    })
    summary.push({ scenario: 'sockets', impl, metric: `RSS added by ${s.idleCount} sockets`, unit: 'bytes', better: 'lower', ...st.rss })
    summary.push({
      scenario: 'sockets',
      impl,
      metric: `virtual memory added by ${s.idleCount} sockets`,
      unit: 'bytes',
      better: 'lower',
      ...st.vsize,
    })
    if (isBase) continue
    const baseOf = (k) => (s.idle[NAMES.dgram] ? stats(s.idle[NAMES.dgram], k) : null)
    const show = { threads: fmtCount, rss: fmtBytes, vsize: fmtBytes }
    Object.keys(TARGETS).forEach((k, i) => {
      const b = baseOf(k)
      targets.push({
        scenario: 'sockets',
        measure: `${impl}: ${{ threads: 'threads', rss: 'RSS', vsize: 'virtual memory' }[k]} added by ${s.idleCount} idle sockets`,
        target: `≤ ${k === 'threads' ? TARGETS[k] : fmtBytes(TARGETS[k])}`,
        measured: `${show[k](st[k].median)}${b ? ` (node:dgram: ${show[k](b.median)})` : ''}`,
        result: verdict(ok[i]),
      })
    })
  }
  const impls = Object.keys(s.many)
  const checks = [
    [
      `${s.manyCount} sockets open at once: all bind, each receives one datagram`,
      (impl) => ({ ok: manyOk(s.many[impl], s.manyCount), text: manyCell(s.many[impl], s.manyCount) }),
    ],
    [`ulimit -n ${s.emfileFiles}, opening ${s.emfileCount}: fails cleanly with EMFILE, no crash`, (impl) => emfileCells(s.emfile[impl])[0]],
    ['EMFILE run, after closing everything: open fds back to the start', (impl) => emfileCells(s.emfile[impl])[1]],
    ['EMFILE run, then: a new socket binds and receives', (impl) => emfileCells(s.emfile[impl])[2]],
  ]
  const checkRows = []
  for (const [name, get] of checks) {
    checkRows.push([name, ...impls.map((impl) => get(impl).text)])
    for (const impl of impls) {
      const c = get(impl)
      summary.push({
        scenario: 'sockets',
        impl,
        metric: `ok: ${name}`,
        unit: '1 = ok',
        better: 'higher',
        median: c.ok ? 1 : 0,
        min: c.ok ? 1 : 0,
        max: c.ok ? 1 : 0,
        n: 1,
      })
      if (impl !== NAMES.dgram)
        targets.push({
          scenario: 'sockets',
          measure: `${impl}: ${name}`,
          target: 'ok',
          measured: c.text.slice(0, 120),
          result: verdict(c.ok),
        })
    }
  }
  return {
    sections: [
      {
        id: 'sockets',
        title: `Idle sockets: ${s.idleCount} bound sockets, all receiving`,
        intro: `Deltas of /proc/self/status (Threads, VmRSS, VmSize) in a fresh process, before and after opening ${s.idleCount} sockets with a listener attached, idle; median [min–max] of ${rounds(s.rounds)}. Targets apply to the absolute deltas; node:dgram is shown for comparison.`,
        header: idleHeader,
        rows: idleRows,
      },
      {
        id: 'sockets-checks',
        title: 'Many sockets and running out of file descriptors',
        intro:
          'Each cell is one fresh process. The EMFILE run starts through sh -c "ulimit -n N" (soft and hard limit), so Node cannot raise it.',
        header: ['Check', ...impls],
        rows: checkRows,
        left: 1 + impls.length,
      },
    ],
    summary,
    ratios: [],
    targets,
  }
}

module.exports = { id: 'sockets', title: 'Sockets', run, tables }
