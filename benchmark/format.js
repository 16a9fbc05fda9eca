'use strict'
// Number formatting and the median/[min–max] statistics shared by report.js and the scenario
// modules (benchmark/scenarios/*.js).

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const m = v.length >> 1
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2
}

function stats(rows, key) {
  const v = rows
    .filter((r) => !r.failed)
    .map((r) => r[key])
    .filter((x) => typeof x === 'number' && Number.isFinite(x))
  if (v.length === 0) return null
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length }
}

function fmtNum(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '–'
  const a = Math.abs(x)
  if (a >= 1e6) return `${(x / 1e6).toFixed(2)} M`
  if (a >= 1e4) return `${(x / 1e3).toFixed(0)} k`
  if (a >= 1e3) return `${(x / 1e3).toFixed(1)} k`
  if (a >= 100) return x.toFixed(0)
  if (a >= 10) return x.toFixed(1)
  return x.toFixed(2)
}

function fmtBytes(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '–'
  if (x >= 1024 * 1024) return `${(x / 1024 / 1024).toFixed(1)} MiB`
  if (x >= 1024) return `${(x / 1024).toFixed(0)} KiB`
  return `${x} B`
}

/** A count: integers as they are, anything else with one decimal. */
function fmtCount(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '–'
  return Number.isInteger(x) ? String(x) : x.toFixed(1)
}

/** "3 rounds" / "1 round". */
function rounds(n) {
  return `${n} round${n === 1 ? '' : 's'}`
}

/** "median [min–max]" of one metric, formatted with `f`. */
function cell(s, f = fmtNum) {
  if (!s) return '–'
  if (s.n === 1) return f(s.median)
  return `${f(s.median)} [${f(s.min)}–${f(s.max)}]`
}

/** Plain number for machine-readable tables (no units, no thousands separators). */
function plain(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return 'NaN'
  return Math.abs(x) >= 100 ? String(Math.round(x)) : String(Math.round(x * 1000) / 1000)
}

/** The row of an implementation whose every run failed, or null. */
function failedRow(impl, rs, ncols) {
  if (rs.some((r) => !r.failed)) return null
  const why = rs.length ? rs[0].failed : 'no runs'
  return [impl, `failed: ${why.slice(0, 80)}`, ...Array(ncols - 2).fill('–')]
}

module.exports = { median, stats, fmtNum, fmtBytes, fmtCount, rounds, cell, plain, failedRow }
