'use strict'
// Helpers for the child processes of the rtt, create, sockets and reqresp scenarios
// (peer.js and resources.js): output, a hard time limit, /proc readings, and one way to open
// a bound, receiving socket with each implementation.
//
// The three implementations, always at their defaults:
//   dgram      node:dgram
//   udpsocket  udp-mmsg's UdpSocket (require('udp-mmsg'))
//   facade     udp-mmsg's node:dgram-compatible facade (require('udp-mmsg/dgram'))

const fs = require('node:fs')
const dgram = require('node:dgram')

const HOST = '127.0.0.1' // loopback only, always
const KINDS = ['dgram', 'udpsocket', 'facade']

function out(obj) {
  fs.writeSync(1, JSON.stringify(obj) + '\n')
}

/** Whatever happens, the process ends after `ms` (reporting why). */
function hardLimit(ms, name) {
  setTimeout(() => {
    out({ error: `${name} exceeded its ${ms} ms limit` })
    process.exit(3)
  }, ms).unref()
}

/** Exits when the parent closes our stdin (or goes away). */
function exitWhenStdinEnds(cleanup = () => {}) {
  process.stdin.on('data', () => {})
  process.stdin.on('end', () => {
    cleanup()
    process.exit(0)
  })
}

/** Threads, VmRSS and VmSize (bytes) of this process, from /proc/self/status. */
function procStatus() {
  const text = fs.readFileSync('/proc/self/status', 'utf8')
  const field = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)
    return m ? Number(m[1]) : NaN
  }
  return { threads: field('Threads'), rss: field('VmRSS') * 1024, vsize: field('VmSize') * 1024 }
}

/** Open file descriptors of this process (the directory listing's own fd is counted alike). */
function fdCount() {
  return fs.readdirSync('/proc/self/fd').length
}

/** The soft and hard RLIMIT_NOFILE of this process, from /proc/self/limits. */
function fileLimit() {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))
  return m ? { soft: m[1], hard: m[2] } : null
}

function load(kind) {
  if (kind === 'dgram') return dgram
  if (kind === 'udpsocket') return require('udp-mmsg').UdpSocket
  if (kind === 'facade') return require('udp-mmsg/dgram')
  throw new Error(`unknown implementation ${kind}`)
}

/** node:dgram-style bind (node:dgram or the facade): resolves once 'listening', rejects on 'error'. */
function dgramBind(sock) {
  return new Promise((resolve, reject) => {
    const onError = (e) => reject(e)
    sock.once('error', onError)
    sock.bind(0, HOST, () => {
      sock.removeListener('error', onError)
      resolve()
    })
  })
}

/** node:dgram-style close: resolves on the close callback. */
function dgramClose(sock) {
  return new Promise((resolve) => sock.close(resolve))
}

/**
 * Opens a socket of `kind` bound to 127.0.0.1:0, receiving: `onDatagram()` is called once per
 * datagram. Resolves with { sock, port, close() } where close() resolves when the socket
 * finished closing as its API defines it ('close' event / close callback).
 */
async function openReceiving(kind, onDatagram) {
  const mod = load(kind)
  if (kind === 'udpsocket') {
    const sock = await mod.bind({ address: HOST, port: 0 })
    sock.onBatch((batch) => {
      for (let i = 0; i < batch.count; i++) onDatagram()
    })
    const closed = new Promise((resolve) => sock.once('close', resolve))
    return {
      sock,
      port: sock.localAddress().port,
      close: () => {
        sock.close()
        return closed
      },
    }
  }
  const sock = mod.createSocket('udp4')
  sock.on('message', () => onDatagram())
  try {
    await dgramBind(sock)
  } catch (e) {
    try {
      sock.close()
    } catch {}
    throw e
  }
  sock.on('error', () => {})
  return { sock, port: sock.address().port, close: () => dgramClose(sock) }
}

/**
 * The DNS-like server's answer: the query's 12-byte header with the QR (response) bit and one
 * answer counted, plus a 4-byte address. Shorter datagrams get no answer.
 */
function dnsReply(q) {
  if (q.length < 12) return null
  const r = Buffer.allocUnsafe(16)
  q.copy(r, 0, 0, 12)
  r[2] |= 0x80
  r.writeUInt16BE(1, 6)
  r[12] = 127
  r[13] = 0
  r[14] = 0
  r[15] = 1
  return r
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

module.exports = {
  dnsReply,
  HOST,
  KINDS,
  out,
  hardLimit,
  exitWhenStdinEnds,
  procStatus,
  fdCount,
  fileLimit,
  load,
  dgramBind,
  dgramClose,
  openReceiving,
  sleep,
}
