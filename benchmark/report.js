'use strict'
// Turns the raw results of benchmark/run.js into tables: plain text for the terminal,
// Markdown for results.md, and a hand-written SVG bar chart of the ratios.

const { median, stats, fmtNum, fmtBytes, cell, plain, failedRow } = require('./format.js')
const MODULES = require('./scenarios/index.js')

const SCENARIO_TITLES = {
  drain: 'Drain',
  live: 'Live receive',
  max: 'Max live receive',
  send: 'Send',
  memory: 'Memory',
}
for (const m of MODULES) SCENARIO_TITLES[m.id] = m.title

/**
 * Builds every table once:
 *  - sections: per-scenario human tables { id, title, intro, header, rows }
 *  - summary:  { scenario, impl, metric, unit, better, median, min, max, n } (one per metric)
 *  - ratios:   { scenario, label, metric, value, vs, short? } where value > 1 means udp-mmsg is
 *              better (short: the chart's label)
 *  - targets:  { scenario, measure, target, measured, result } (result PASS / FAIL / –)
 */
function buildTables(res) {
  const sections = []
  const summary = []
  const ratios = []
  const sc = res.scenarios
  const add = (scenario, impl, metric, unit, better, s) => {
    if (s) summary.push({ scenario, impl, metric, unit, better, ...s })
  }
  const ratio = (scenario, metric, a, b, label, vs, lowerIsBetter = false) => {
    if (!a || !b || !a.median || !b.median) return
    const value = lowerIsBetter ? b.median / a.median : a.median / b.median
    ratios.push({ scenario, metric, label, vs, value })
  }

  if (sc.drain) {
    const d = sc.drain
    const header = ['Implementation', 'Drain rate (datagrams/s)', 'Drain time (ms)', 'CPU ns/datagram', 'Page faults per 1000 datagrams', 'Datagrams/batch', 'Received', 'Kernel drops']
    const rows = []
    const st = {}
    for (const [impl, rs] of Object.entries(d.impls)) {
      const pps = stats(rs, 'pps')
      st[impl] = pps
      const ok = rs.filter((r) => !r.failed)
      const bad = failedRow(impl, rs, header.length)
      if (bad) {
        rows.push(bad)
        continue
      }
      rows.push([
        impl,
        cell(pps),
        cell(stats(rs, 'ms')),
        cell(stats(rs, 'cpuNsPerDgram')),
        cell(stats(rs, 'faultsPerK')),
        cell(stats(rs, 'perBatch')),
        ok.length ? `${median(ok.map((r) => r.received))} / ${d.backlog}` : 'failed',
        ok.length ? String(Math.max(...ok.map((r) => r.drops || 0))) : '–',
      ])
      add('drain', impl, 'drain rate', 'datagrams/s', 'higher', pps)
    }
    sections.push({
      id: 'drain',
      title: `Drain: ${d.backlog} queued datagrams`,
      intro:
        'A backlog is queued while the receiver does not read; then the time to receive all of it. Each JS receiver has first taken an untimed warm-up through the same handler (see Setup). CPU time and minor page faults are the whole process\'s during the drain (getrusage); a page fault is a first touch of fresh memory, such as each new batch buffer. "ceiling, batches kept" also copies every batch into fresh memory it keeps to the end, as a library whose batches outlive the next receive must.',
      header,
      rows,
    })
    for (const impl of ['udp-mmsg batch', 'udp-mmsg per-message']) {
      ratio('drain', 'drain rate', st[impl], st['node:dgram'], `${impl} vs node:dgram`, 'node:dgram')
      ratio('drain', 'drain rate', st[impl], st.ceiling, `${impl} vs ceiling`, 'ceiling')
    }
    // What handing over batches a user may keep costs by itself (no JS): see README.md.
    ratio('drain', 'drain rate', st['ceiling, batches kept'], st.ceiling, 'ceiling, batches kept vs ceiling', 'ceiling')
    ratio('drain', 'drain rate', st['udp-mmsg batch'], st['ceiling, batches kept'], 'udp-mmsg batch vs ceiling, batches kept', 'ceiling')
  }

  for (const id of ['live', 'max']) {
    if (!sc[id]) continue
    const d = sc[id]
    const header = ['Implementation', 'Received (datagrams/s)', 'Sent', 'Received', 'Lost', 'Loss %', 'CPU ns/datagram', 'Datagrams/batch', 'Sender rate']
    const rows = []
    const pps = {}
    const cpu = {}
    for (const [impl, rs] of Object.entries(d.impls)) {
      pps[impl] = stats(rs, 'pps')
      cpu[impl] = stats(rs, 'cpuNsPerDgram')
      const bad = failedRow(impl, rs, header.length)
      if (bad) {
        rows.push(bad)
        continue
      }
      rows.push([
        impl,
        cell(pps[impl]),
        cell(stats(rs, 'sent')),
        cell(stats(rs, 'received')),
        cell(stats(rs, 'lost')),
        cell(stats(rs, 'lossPct')),
        cell(cpu[impl]),
        cell(stats(rs, 'perBatch')),
        cell(stats(rs, 'senderPps')),
      ])
      if (id === 'live') {
        add(id, impl, 'CPU per datagram', 'ns', 'lower', cpu[impl])
        add(id, impl, 'received', 'datagrams', 'higher', stats(rs, 'received'))
        add(id, impl, 'lost', 'datagrams', 'lower', stats(rs, 'lost'))
      } else {
        add(id, impl, 'receive rate', 'datagrams/s', 'higher', pps[impl])
        add(id, impl, 'loss', '%', 'lower', stats(rs, 'lossPct'))
      }
    }
    if (id === 'live') {
      sections.push({
        id,
        title: `Live receive: ${d.rate} datagrams/s offered for ${d.duration} s`,
        intro: 'Receiver CPU time (all threads, from getrusage) divided by datagrams received.',
        header,
        rows,
      })
      ratio(id, 'CPU per datagram', cpu['udp-mmsg batch'], cpu['node:dgram'], 'udp-mmsg batch vs node:dgram', 'node:dgram', true)
      for (const impl of Object.keys(d.impls)) {
        if (impl.startsWith('ceiling')) ratio(id, 'CPU per datagram', cpu['udp-mmsg batch'], cpu[impl], `udp-mmsg batch vs ${impl}`, 'ceiling', true)
      }
    } else {
      sections.push({
        id,
        title: `Max live receive: sender at full speed for ${d.duration} s`,
        intro:
          'Received rate = datagrams received / time from the first to the last one.' +
          (d.gso > 1
            ? ` The sender uses UDP GSO (${d.gso} datagrams per send; the kernel splits them before they reach a socket without UDP_GRO). The "+ gro" row turns UDP_GRO on, so it receives whole trains: not like-for-like, shown for what the option buys.`
            : ''),
        header,
        rows,
      })
      ratio(id, 'receive rate', pps['udp-mmsg batch'], pps['node:dgram'], 'udp-mmsg batch vs node:dgram', 'node:dgram')
      ratio(id, 'receive rate', pps['udp-mmsg batch'], pps.ceiling, 'udp-mmsg batch vs ceiling', 'ceiling')
    }
  }

  if (sc.send) {
    const d = sc.send
    const header = ['Implementation', 'Sent (datagrams/s)', 'CPU ns/datagram', 'Seen by the sink', 'Errors']
    const rows = []
    const pps = {}
    for (const [impl, rs] of Object.entries(d.impls)) {
      pps[impl] = stats(rs, 'pps')
      const ok = rs.filter((r) => !r.failed)
      const bad = failedRow(impl, rs, header.length)
      if (bad) {
        rows.push(bad)
        continue
      }
      const seen = ok.length ? median(ok.map((r) => (r.sinkSaw !== undefined ? r.sinkSaw / Math.max(1, r.total) : NaN))) : null
      rows.push([
        impl,
        cell(pps[impl]),
        cell(stats(rs, 'cpuNsPerDgram')),
        seen === null ? '–' : `${(100 * seen).toFixed(1)} %`,
        ok.length ? String(ok.reduce((a, r) => a + (r.errors || 0), 0)) : '–',
      ])
      add('send', impl, 'send rate', 'datagrams/s', 'higher', pps[impl])
    }
    sections.push({
      id: 'send',
      title: `Send: ${d.duration} s per run into one bound socket nobody reads`,
      intro:
        'Datagrams handed to the kernel per second; the sink counts them (queued + dropped). ' +
        "udp-mmsg's default gso: 'auto' sends runs of same-size datagrams to one destination as UDP GSO trains, " +
        'so it is compared with the ceiling using GSO; the gso: false row is compared with plain sendmmsg.',
      header,
      rows,
    })
    const mm = pps['udp-mmsg sendBatch']
    for (const impl of Object.keys(d.impls)) {
      if (impl.startsWith('node:dgram')) ratio('send', 'send rate', mm, pps[impl], `udp-mmsg sendBatch vs ${impl}`, 'node:dgram')
    }
    // Like for like: plain sendmmsg against plain sendmmsg, GSO against GSO.
    ratio('send', 'send rate', pps['udp-mmsg sendBatch (gso: false)'], pps.ceiling, 'udp-mmsg sendBatch (gso: false) vs ceiling', 'ceiling')
    for (const impl of Object.keys(d.impls)) {
      if (impl.startsWith('ceiling + GSO')) ratio('send', 'send rate', mm, pps[impl], `udp-mmsg sendBatch vs ${impl}`, 'ceiling')
    }
  }

  if (sc.memory && !sc.memory.failed) {
    const m = sc.memory
    const cp = m.checkpoint
    const growth = cp ? (100 * (m.end.rss - cp.rss)) / cp.rss : null
    const gcGrowth = cp && cp.afterGc && m.endAfterGc ? (100 * (m.endAfterGc.rss - cp.afterGc.rss)) / cp.afterGc.rss : null
    const header = ['Point', 'Datagrams received', 'RSS', 'RSS after gc()', 'Heap used', 'External']
    const row = (name, n, s, g) => [name, String(n), fmtBytes(s.rss), g ? fmtBytes(g.rss) : '–', fmtBytes(s.heapUsed), fmtBytes(s.external)]
    const rows = [row('before', 0, m.before, null)]
    if (cp) rows.push(row(`after ${cp.at}`, cp.received, cp, cp.afterGc))
    rows.push(row('end', m.received, m.end, m.endAfterGc))
    rows.push([`growth ${cp ? cp.at : '?'} → end`, '', growth === null ? '–' : `${growth.toFixed(1)} %`, gcGrowth === null ? '–' : `${gcGrowth.toFixed(1)} %`, '', ''])
    sections.push({
      id: 'memory',
      title: `Memory: ${m.target} datagrams through the batch API at ${m.rate} datagrams/s`,
      intro:
        `RSS of the receiver process; ${m.received} datagrams received in ${m.seconds.toFixed(1)} s` +
        `${m.kernelDrops ? ` (the kernel dropped ${m.kernelDrops} more: the machine did not sustain the rate)` : ', no kernel drops'}` +
        `${m.complete ? '' : ' — the target was NOT reached'}.`,
      header,
      rows,
    })
    const one = (x) => x !== null && x !== undefined && { median: x, min: x, max: x, n: 1 }
    add('memory', 'udp-mmsg batch', 'RSS before', 'bytes', 'lower', one(m.before.rss))
    if (cp) add('memory', 'udp-mmsg batch', `RSS at ${cp.at}`, 'bytes', 'lower', one(cp.rss))
    add('memory', 'udp-mmsg batch', `RSS at ${m.received}`, 'bytes', 'lower', one(m.end.rss))
    if (growth !== null) add('memory', 'udp-mmsg batch', 'RSS growth', '%', 'lower', one(growth))
  } else if (sc.memory) {
    sections.push({ id: 'memory', title: 'Memory', intro: `failed: ${sc.memory.failed}`, header: ['Point'], rows: [] })
  }
  const targets = []
  for (const mod of MODULES) {
    if (!sc[mod.id]) continue
    const t = mod.tables(sc[mod.id])
    sections.push(...t.sections)
    summary.push(...t.summary)
    ratios.push(...t.ratios)
    targets.push(...t.targets)
  }
  return { sections, summary, ratios, targets }
}

function targetRows(t) {
  return t.targets.map((x) => [SCENARIO_TITLES[x.scenario], x.measure, x.target, x.measured, x.result])
}

// ---- text -------------------------------------------------------------------------------------

/** The first `left` columns are left-aligned, the others right-aligned. */
function textTable(header, rows, left = 1) {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)))
  const line = (r) => r.map((c, i) => (i < left ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ')
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n')
}

function renderText(res, t) {
  const out = []
  const m = res.machine
  out.push(`udp-mmsg benchmark — ${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}, ${m.date}`)
  out.push(`${res.config.quick ? 'QUICK run (tiny loads; not representative)' : 'full run'}, ${res.config.reps} rep(s), ${res.config.size}-byte datagrams; medians with [min–max]`)
  for (const s of t.sections) {
    out.push('')
    out.push(`== ${s.title}`)
    out.push(s.intro)
    if (s.rows.length) out.push(textTable(s.header, s.rows, s.left))
  }
  if (t.targets.length) {
    out.push('')
    out.push('== Targets')
    out.push(textTable(['Scenario', 'Measure', 'Target', 'Measured', 'Result'], targetRows(t), 3))
  }
  out.push('')
  out.push('== Ratios (> 1: udp-mmsg better; CPU and time ratios are the other ÷ udp-mmsg)')
  out.push(textTable(['Comparison', 'Metric', 'Ratio'], t.ratios.map((r) => [`${SCENARIO_TITLES[r.scenario]}: ${r.label}`, r.metric, `${r.value.toFixed(2)}×`])))
  if (res.notes.length) {
    out.push('')
    for (const n of res.notes) out.push(`note: ${n}`)
  }
  return out.join('\n')
}

// ---- markdown ---------------------------------------------------------------------------------

function mdTable(header, rows, left = 1) {
  const esc = (c) => String(c).replace(/\|/g, '\\|')
  return [`| ${header.map(esc).join(' | ')} |`, `|${header.map((_, i) => (i < left ? ' --- ' : ' ---: ')).join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n')
}

function renderMarkdown(res, t) {
  const m = res.machine
  const c = res.config
  const cal = res.calibration
  const out = []
  out.push('# udp-mmsg benchmark results')
  out.push('')
  out.push(`Generated by \`node benchmark/run.js${c.quick ? ' --quick' : ''}\` — see [README.md](README.md) for what each scenario measures.`)
  if (c.quick) out.push('\n**Quick run: tiny loads, one repetition. The numbers are not representative.**')
  out.push('')
  out.push('## Machine')
  out.push('')
  out.push(
    mdTable(
      ['Item', 'Value'],
      [
        ['CPU', m.cpu],
        ['Cores', m.cores],
        ['Kernel', m.kernel],
        ['Node', m.node],
        ['Date', m.date],
        ['Load average at start', m.loadavg.join(', ')],
        ['net.core.rmem_max', m.rmemMax === null ? 'unknown' : `${m.rmemMax} B`],
        ['Root', m.root ? 'yes' : 'no'],
        [
          'Receive buffers',
          cal
            ? cal.forced
              ? `forced past rmem_max (SO_RCVBUFFORCE): drain buffer ${fmtBytes(cal.granted)} granted for ${fmtBytes(cal.requested)} requested`
              : `capped by rmem_max: drain buffer ${fmtBytes(cal.granted)} granted for ${fmtBytes(cal.requested)} requested`
            : '–',
        ],
        ['Receive memory per datagram', cal ? `${cal.truesize.toFixed(0)} B (skb truesize of a ${c.size}-byte datagram)` : '–'],
        ['Datagram size', `${c.size} B`],
        ['Repetitions', `${c.reps} rounds, interleaved (drain: at least 7, send, rtt, create: at least 5; median [min–max])`],
        ['Receive batch (udp-mmsg batchSize, ceiling vlen)', c.batch],
        ['Drain warm-up', c.drainWarmup ? `${c.drainWarmup} untimed datagrams per JS receiver before its backlog is queued` : 'none (cold receivers)'],
        ['Run time', `${(res.elapsedMs / 1000).toFixed(1)} s`],
      ],
    ),
  )
  for (const s of t.sections) {
    out.push('')
    out.push(`## ${s.title}`)
    out.push('')
    out.push(s.intro)
    if (s.rows.length) {
      out.push('')
      out.push(mdTable(s.header, s.rows, s.left))
    }
  }
  if (t.targets.length) {
    out.push('')
    out.push('## Targets')
    out.push('')
    out.push('Targets of the rtt, create, sockets and reqresp scenarios, judged on the medians above (see [README.md](README.md)).')
    out.push('')
    out.push(mdTable(['Scenario', 'Measure', 'Target', 'Measured', 'Result'], targetRows(t), 3))
  }
  out.push('')
  out.push('## Ratios')
  out.push('')
  out.push(
    'Ratio > 1 means udp-mmsg is better: throughput ratios are udp-mmsg ÷ other, CPU and time (latency, create) ratios are other ÷ udp-mmsg. Medians. Chart: [chart.svg](chart.svg).',
  )
  out.push('')
  out.push(mdTable(['Scenario', 'Comparison', 'Metric', 'Ratio'], t.ratios.map((r) => [SCENARIO_TITLES[r.scenario], r.label, r.metric, r.value.toFixed(3)])))
  out.push('')
  out.push('## Summary (machine-readable)')
  out.push('')
  out.push(
    mdTable(
      ['Scenario', 'Implementation', 'Metric', 'Unit', 'Better', 'Median', 'Min', 'Max', 'Runs'],
      t.summary.map((s) => [s.scenario, s.impl, s.metric, s.unit, s.better, plain(s.median), plain(s.min), plain(s.max), s.n]),
    ),
  )
  if (res.notes.length) {
    out.push('')
    out.push('## Notes')
    out.push('')
    for (const n of res.notes) out.push(`- ${n}`)
  }
  out.push('')
  return out.join('\n')
}

// ---- SVG --------------------------------------------------------------------------------------

function xml(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** Horizontal bars on a log2 axis centred on 1×: right (green) = udp-mmsg better. */
function renderSvg(res, t) {
  const rows = t.ratios
  const W = 900
  const labelW = 430
  const top = 70
  const rowH = 28
  const plotW = W - labelW - 40
  const H = top + Math.max(1, rows.length) * rowH + 50
  const vals = rows.map((r) => Math.log2(r.value))
  let lo = Math.floor(Math.min(-1, ...vals))
  let hi = Math.ceil(Math.max(1, ...vals))
  lo = Math.max(lo, -6)
  hi = Math.min(hi, 6)
  const x = (v) => labelW + ((Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * plotW
  const parts = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="13">`)
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`)
  const m = res.machine
  parts.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">udp-mmsg vs node:dgram and the raw ceiling (${res.config.size}-byte datagrams)</text>`)
  parts.push(
    `<text x="${W / 2}" y="44" text-anchor="middle" fill="#555">${xml(`${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.date.slice(0, 10)}${res.config.quick ? ' — QUICK run, not representative' : ''} — log scale, right of 1× = udp-mmsg better`)}</text>`,
  )
  for (let g = lo; g <= hi; g++) {
    const gx = x(g).toFixed(1)
    parts.push(`<line x1="${gx}" y1="${top - 8}" x2="${gx}" y2="${H - 40}" stroke="${g === 0 ? '#000' : '#ddd'}" stroke-width="${g === 0 ? 1.5 : 1}"/>`)
    const label = g >= 0 ? `${2 ** g}×` : `1/${2 ** -g}×`
    parts.push(`<text x="${gx}" y="${H - 24}" text-anchor="middle" fill="#555">${xml(label)}</text>`)
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH
    const v = Math.log2(r.value)
    const x0 = x(0)
    const x1 = x(v)
    const good = r.value >= 1
    const color = r.vs === 'ceiling' ? (good ? '#2b8a3e' : '#e8590c') : good ? '#1971c2' : '#c92a2a'
    parts.push(`<text x="${labelW - 8}" y="${y + 18}" text-anchor="end">${xml(r.short || `${SCENARIO_TITLES[r.scenario]}: ${r.label}`)}</text>`)
    parts.push(`<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y + 5}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="${rowH - 10}" fill="${color}"/>`)
    const tx = good ? x1 + 5 : x1 - 5
    parts.push(`<text x="${tx.toFixed(1)}" y="${y + 18}" text-anchor="${good ? 'start' : 'end'}" font-weight="bold">${xml(`${r.value.toFixed(2)}×`)}</text>`)
  })
  if (rows.length === 0) parts.push(`<text x="${W / 2}" y="${top + 18}" text-anchor="middle">no ratios (scenarios skipped or failed)</text>`)
  parts.push(`<text x="${W / 2}" y="${H - 6}" text-anchor="middle" fill="#555" font-size="11">${xml('Throughput: udp-mmsg ÷ other. CPU per datagram, latency, create time: other ÷ udp-mmsg. Blue/red: vs node:dgram. Green/orange: vs the raw ceiling.')}</text>`)
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

module.exports = { median, stats, fmtNum, fmtBytes, buildTables, renderText, renderMarkdown, renderSvg }
