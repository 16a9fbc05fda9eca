'use strict'
// Parent-side helpers of the rtt, create, sockets and reqresp scenarios: starting their child
// processes (peer.js, resources.js) through benchmark/proc.js, and the wording of targets.

const path = require('node:path')
const { start } = require('../proc.js')

const PEER = path.join(__dirname, 'peer.js')
const RESOURCES = path.join(__dirname, 'resources.js')

/** Display names of the implementations (child.js KINDS). */
const NAMES = { dgram: 'node:dgram', udpsocket: 'udp-mmsg UdpSocket', facade: 'udp-mmsg/dgram facade' }
const KINDS = Object.keys(NAMES)
/** Short names, for the chart's labels. */
const SHORT = { dgram: 'dgram', udpsocket: 'UdpSocket', facade: 'facade' }

/**
 * Starts `node [nodeArgs] script ...args` as a child. With `files`, through
 * `sh -c 'ulimit -n FILES && exec node ...'`: soft and hard RLIMIT_NOFILE lowered, so Node
 * cannot raise it back at startup.
 */
function node(script, args, { name, limitMs, nodeArgs = [], files = 0 }) {
  const argv = [...nodeArgs, script, ...args]
  if (files > 0) return start('/bin/sh', ['-c', `ulimit -n ${files} && exec "$0" "$@"`, process.execPath, ...argv], { name, limitMs })
  return start(process.execPath, argv, { name, limitMs })
}

/** The child's {"result"} line, after it exited; throws with its stderr otherwise. */
async function resultOf(p, timeoutMs) {
  const line = await p.next(timeoutMs)
  const code = await p.done
  if (!line.result) throw new Error(`${p.name}: unexpected output ${JSON.stringify(line).slice(0, 200)}`)
  if (code !== 0) throw new Error(`${p.name} exited with ${code} after its result: ${p.stderr.slice(-400)}`)
  return line.result
}

/** Starts a peer.js server (`echo` or `dns`) of `kind`; resolves with the process and its port. */
async function startServer(protocol, kind, limitMs) {
  const p = node(PEER, ['server', protocol, kind, JSON.stringify({ limitMs })], {
    name: `${NAMES[kind]} ${protocol} server`,
    limitMs: limitMs + 5000,
  })
  try {
    const ready = await p.next(20_000)
    return { p, port: ready.port }
  } catch (e) {
    p.kill()
    throw e
  }
}

/** Ends a server started by startServer (closes its stdin; killed if it lingers). */
async function stopServer(srv) {
  srv.p.end()
  await Promise.race([srv.p.done, new Promise((r) => setTimeout(r, 2000))])
  srv.p.kill()
}

/** "PASS" / "FAIL" / "–" (no data). */
function verdict(ok) {
  return ok === null || ok === undefined ? '–' : ok ? 'PASS' : 'FAIL'
}

/** `a ÷ b` of two medians, or null. */
function factor(a, b) {
  return a && b && Number.isFinite(a.median) && Number.isFinite(b.median) && b.median !== 0 ? a.median / b.median : null
}

/** "3.21× FAIL" for a factor against a target (`ok(f)` decides). */
function factorCell(f, ok) {
  if (f === null) return '–'
  return `${f.toFixed(2)}× ${verdict(ok(f))}`
}

module.exports = { PEER, RESOURCES, NAMES, SHORT, KINDS, node, resultOf, startServer, stopServer, verdict, factor, factorCell }
