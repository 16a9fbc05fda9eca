'use strict'
// UDP syslog collector on udp-mmsg: RFC 5424 and RFC 3164 (BSD) messages in, NDJSON out (one
// JSON object per message, to stdout or --out FILE), a live rate line on stderr.
//
// It reads with `for await (const batch of socket)`: while the output cannot keep up (the file
// stream is above its high-water mark) it stops pulling, the socket stops reading, and bursts
// wait in the kernel's receive buffer instead of piling up in memory. One write per batch.
//
// Usage: npm run example:syslog -- [--port 5514] [--host 127.0.0.1] [--out FILE]
//          [--duration SECONDS] [--generate PPS | --self-test]
//   --generate PPS  also run a loopback generator sending PPS messages/s (RFC 5424 and 3164 alternately)
//   --self-test     same as --generate 5000 --duration 5 (NDJSON goes to --out, or is counted only)
// At exit it prints a summary object on stderr: {"type":"summary",...}.

const { UdpSocket } = require('udp-mmsg')
const { parseArgs } = require('node:util')
const { once } = require('node:events')
const fs = require('node:fs')

// Command-line settings, read by configure() when the file runs as a program (not when it is
// required as a module, whose caller's arguments are none of its business).
let args, SELF_TEST, GENERATE, DURATION

/** Reads the command line (`argv`: the arguments after the script name). */
function configure(argv = process.argv.slice(2)) {
  args = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '5514' },
      host: { type: 'string', default: '127.0.0.1' },
      out: { type: 'string' },
      duration: { type: 'string' },
      generate: { type: 'string' },
      'self-test': { type: 'boolean', default: false },
      'batch-size': { type: 'string', default: '128' },
    },
  }).values
  SELF_TEST = args['self-test']
  GENERATE = SELF_TEST && args.generate === undefined ? 5000 : Number(args.generate || 0)
  DURATION = args.duration !== undefined ? Number(args.duration) : SELF_TEST ? 5 : 0
}

const fmt = (n) => Math.round(n).toLocaleString('en-US')

const FACILITIES = ['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp', 'security', 'console', 'solaris-cron', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7']
const SEVERITIES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug']
const MONTHS = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 }

// ---- parsing ------------------------------------------------------------------------------

/** `<PRI>` at the start: returns [pri, index after '>'] or null. */
function parsePri(s) {
  if (s.charCodeAt(0) !== 0x3c) return null
  let pri = 0
  let i = 1
  for (; i < s.length && i <= 4; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x3e) break
    if (c < 0x30 || c > 0x39) return null
    pri = pri * 10 + (c - 0x30)
  }
  if (i === 1 || s.charCodeAt(i) !== 0x3e || pri > 191) return null
  return [pri, i + 1]
}

/** RFC 5424 STRUCTURED-DATA at `i`: returns [object or null, index after it]. */
function parseStructuredData(s, i) {
  if (s[i] === '-') return [null, i + 1]
  const sd = {}
  while (s[i] === '[') {
    let j = i + 1
    while (j < s.length && s[j] !== ' ' && s[j] !== ']') j++
    const id = s.slice(i + 1, j)
    const params = {}
    while (s[j] === ' ') {
      const eq = s.indexOf('=', j)
      if (eq === -1 || s[eq + 1] !== '"') return [sd, -1]
      const name = s.slice(j + 1, eq)
      let k = eq + 2
      let value = ''
      for (; k < s.length && s[k] !== '"'; k++) {
        if (s[k] === '\\' && (s[k + 1] === '"' || s[k + 1] === '\\' || s[k + 1] === ']')) k++
        value += s[k]
      }
      params[name] = value
      j = k + 1
    }
    if (s[j] !== ']') return [sd, -1]
    sd[id] = params
    i = j + 1
  }
  return [sd, i]
}

const nil = (v) => (v === '-' ? null : v)

function parse5424(s, i) {
  // VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
  const fields = []
  for (let f = 0; f < 6; f++) {
    const sp = s.indexOf(' ', i)
    if (sp === -1) return null
    fields.push(s.slice(i, sp))
    i = sp + 1
  }
  if (fields[0] !== '1') return null
  const [sd, after] = parseStructuredData(s, i)
  if (after === -1) return null
  let message = after < s.length ? s.slice(after + 1) : ''
  if (message.charCodeAt(0) === 0xfeff) message = message.slice(1)
  return {
    protocol: 'rfc5424',
    timestamp: nil(fields[1]),
    hostname: nil(fields[2]),
    appName: nil(fields[3]),
    procId: nil(fields[4]),
    msgId: nil(fields[5]),
    structuredData: sd,
    message,
  }
}

const RFC3164_TIME = /^([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) /
const TAG = /^([^\s:[\]]{1,48})(?:\[([^\]]*)\])?: ?/

function parse3164(s, i, received) {
  const rest = s.slice(i)
  let timestamp = null
  let hostname = null
  let body = rest
  const t = RFC3164_TIME.exec(rest)
  if (t && MONTHS[t[1]] !== undefined) {
    // No year in RFC 3164: take the receive year (the previous one for a December stamp in January).
    let year = received.getFullYear()
    if (MONTHS[t[1]] > received.getMonth() + 1) year--
    timestamp = new Date(year, MONTHS[t[1]], Number(t[2]), Number(t[3]), Number(t[4]), Number(t[5])).toISOString()
    body = rest.slice(t[0].length)
    const sp = body.indexOf(' ')
    if (sp > 0) {
      hostname = body.slice(0, sp)
      body = body.slice(sp + 1)
    }
  }
  let appName = null
  let procId = null
  const tag = TAG.exec(body)
  if (tag) {
    appName = tag[1]
    procId = tag[2] === undefined ? null : tag[2]
    body = body.slice(tag[0].length)
  }
  return { protocol: 'rfc3164', timestamp, hostname, appName, procId, msgId: null, structuredData: null, message: body }
}

/** One datagram's text → the NDJSON record. */
function parseSyslog(text, source, received) {
  let s = text
  while (s.length && (s.endsWith('\n') || s.endsWith('\r') || s.endsWith('\0'))) s = s.slice(0, -1)
  const p = parsePri(s)
  const base = { received: received.toISOString(), source }
  if (p === null) return { ...base, protocol: 'invalid', raw: s }
  const [pri, i] = p
  const facility = pri >> 3
  const severity = pri & 7
  const head = { ...base, facility, severity, facilityName: FACILITIES[facility], severityName: SEVERITIES[severity] }
  const r = s.charCodeAt(i) === 0x31 && s.charCodeAt(i + 1) === 0x20 ? parse5424(s, i) : null
  return { ...head, ...(r || parse3164(s, i, received)) }
}

// ---- load generator -----------------------------------------------------------------------

function generated(seq, now) {
  if (seq % 2 === 0) {
    return `<134>1 ${now.toISOString()} gen-host genapp 1234 ID47 [exampleSDID@32473 iut="3" seq="${seq}"] message ${seq}`
  }
  const mon = Object.keys(MONTHS)[now.getMonth()]
  const pad = (n) => String(n).padStart(2, '0')
  return `<13>${mon} ${String(now.getDate()).padStart(2, ' ')} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())} gen-host gentag[99]: message ${seq}`
}

async function startGenerator(pps, host, port) {
  const tx = await UdpSocket.bind({ address: host.includes(':') ? '::1' : '127.0.0.1', sendBufferSize: 1 << 20 })
  const dest = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  let sent = 0
  let running = true
  const t0 = process.hrtime.bigint()
  const done = (async () => {
    while (running) {
      const due = Math.min(Math.floor((Number(process.hrtime.bigint() - t0) / 1e9) * pps) - sent, 4096)
      if (due > 0) {
        const now = new Date()
        const msgs = new Array(due)
        for (let i = 0; i < due; i++) msgs[i] = { data: generated(sent + i, now), address: dest, port }
        sent += await tx.sendBatch(msgs)
      }
      await new Promise((r) => setTimeout(r, 10))
    }
  })()
  return {
    get sent() {
      return sent
    },
    async stop() {
      running = false
      await done
      tx.close()
      return sent
    },
  }
}

// ---- main ---------------------------------------------------------------------------------

async function main() {
  configure()
  const sock = await UdpSocket.bind({
    address: args.host,
    port: Number(args.port),
    batchSize: Number(args['batch-size']),
    maxDatagramSize: 8192,
    recvBufferSize: 4 << 20,
  })
  const { address, port } = sock.localAddress()
  process.stderr.write(`syslog: listening on ${address}:${port}, NDJSON to ${args.out || (SELF_TEST ? '(nowhere: self-test counts only)' : 'stdout')}\n`)

  // Self-test without --out: count, don't flood the terminal.
  const out = args.out ? fs.createWriteStream(args.out) : SELF_TEST ? null : process.stdout
  const gen = GENERATE > 0 ? await startGenerator(GENERATE, args.host, port) : null
  if (gen) process.stderr.write(`syslog: generator sending ${fmt(GENERATE)} messages/s (RFC 5424 and RFC 3164) to ${address}:${port}\n`)

  let received = 0
  let written = 0
  let invalid = 0
  let lastReceived = 0
  const t0 = Date.now()
  let lastAt = t0
  const tty = process.stderr.isTTY
  const rateLine = () => {
    const now = Date.now()
    const secs = (now - lastAt) / 1000 || 1
    const s = sock.stats()
    const line =
      `[${String(Math.round((now - t0) / 1000)).padStart(4)} s] ${fmt((received - lastReceived) / secs).padStart(8)} msgs/s  ` +
      `total ${fmt(received)}  invalid ${fmt(invalid)}  drops ${fmt(s.kernelDrops)}` +
      (gen ? `  generated ${fmt(gen.sent)}` : '')
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`)
    lastAt = now
    lastReceived = received
  }
  const timer = setInterval(rateLine, 1000)

  let stopping = false
  let sent = 0
  let kernelDrops = 0
  const stop = async () => {
    if (stopping) return
    stopping = true
    sent = gen ? await gen.stop() : 0
    if (gen) {
      const deadline = Date.now() + 3000
      let last = -1
      while (Date.now() < deadline && received !== last && received < sent) {
        last = received
        await new Promise((r) => setTimeout(r, 300))
      }
    }
    clearInterval(timer)
    if (received !== lastReceived) rateLine()
    if (tty) process.stderr.write('\n')
    kernelDrops = sock.stats().kernelDrops
    sock.close() // ends the for-await loop below
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  if (DURATION > 0) setTimeout(stop, DURATION * 1000)

  for await (const batch of sock) {
    const now = new Date()
    let chunk = ''
    for (let i = 0; i < batch.count; i++) {
      const rec = parseSyslog(batch.data(i).toString('utf8'), `${batch.address(i)}:${batch.port(i)}`, now)
      if (rec.protocol === 'invalid') invalid++
      chunk += `${JSON.stringify(rec)}\n`
    }
    received += batch.count
    if (out === null) continue
    written += batch.count
    // Backpressure: stop pulling batches (the socket pauses) until the output drains.
    if (!out.write(chunk)) await once(out, 'drain')
  }
  // The socket is closed: finish the output, then report.
  if (out && out !== process.stdout) await new Promise((r) => out.end(r))
  process.stderr.write(
    `${JSON.stringify({ type: 'summary', seconds: (Date.now() - t0) / 1000, received, written, invalid, kernelDrops, generated: gen ? sent : undefined })}\n`,
  )
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
}

module.exports = { parseSyslog }
