'use strict'
// Validation and defaults for UdpSocket.bind() options. Bad input throws a TypeError or
// RangeError naming the option, before anything touches the kernel.

const { isIP } = require('node:net')
const errors = require('./errors.js')

const DEFAULTS = Object.freeze({
  batchSize: 256,
  maxDatagramSize: 2048,
  maxPendingBatches: 16,
  coalesceMicros: 200,
})

function int(opts, name, min, max, dflt) {
  const v = opts[name]
  if (v === undefined) return dflt
  if (typeof v !== 'number') throw errors.invalidArgType(`options.${name}`, 'of type number', v)
  if (!Number.isInteger(v) || v < min || v > max) throw errors.outOfRange(`options.${name}`, `an integer >= ${min} and <= ${max}`, v)
  return v
}

function bool(opts, name, dflt) {
  const v = opts[name]
  if (v === undefined) return dflt
  if (typeof v !== 'boolean') throw errors.invalidArgType(`options.${name}`, 'of type boolean', v)
  return v
}

function portOf(v, name, allowZero) {
  if (typeof v !== 'number') throw errors.invalidArgType(name, 'of type number', v)
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) throw errors.badPort(name, v, allowZero)
  return v
}

function ipOf(v, name) {
  if (typeof v !== 'string') throw errors.invalidArgType(name, 'of type string', v)
  const fam = isIP(v)
  if (fam === 0) throw errors.invalidArgValue(name, v, 'must be an IPv4 or IPv6 address literal (hostnames are not resolved)')
  return fam
}

/** Validates user options and returns the normalised native options. */
function normalize(options) {
  if (options === undefined) options = {}
  if (options === null || typeof options !== 'object') throw errors.invalidArgType('options', 'of type object', options)
  let type = options.type
  if (type !== undefined && type !== 'udp4' && type !== 'udp6') {
    throw errors.invalidArgValue('options.type', type, "must be 'udp4' or 'udp6'")
  }
  let address = options.address
  if (address !== undefined) {
    const fam = ipOf(address, 'options.address')
    if (type === undefined) type = fam === 6 ? 'udp6' : 'udp4'
    if (fam === 6 && type === 'udp4') throw errors.invalidArgValue('options.address', address, "is IPv6 but options.type is 'udp4'")
  } else {
    if (type === undefined) type = 'udp4'
    address = type === 'udp6' ? '::' : '0.0.0.0'
  }
  const port = options.port === undefined ? 0 : portOf(options.port, 'options.port', true)
  let connect
  if (options.connect !== undefined) {
    const c = options.connect
    if (c === null || typeof c !== 'object') throw errors.invalidArgType('options.connect', 'an object with address and port', c)
    const fam = ipOf(c.address, 'options.connect.address')
    if (fam === 6 && type === 'udp4') throw errors.invalidArgValue('options.connect.address', c.address, "is IPv6 but the socket is 'udp4'")
    connect = { address: c.address, port: portOf(c.port, 'options.connect.port', false) }
  }
  const ipv6 = type === 'udp6'
  const ipv6Only = options.ipv6Only === undefined ? undefined : bool(options, 'ipv6Only', false)
  if (ipv6Only !== undefined && !ipv6) throw errors.invalidArgValue('options.ipv6Only', ipv6Only, "applies to 'udp6' sockets only")
  const maxBuf = 0x7fffffff
  const ttl = int(options, 'ttl', 1, 255, undefined)
  const portable = bool(options, 'portable', process.platform !== 'linux')
  let gso = 1
  if (options.gso !== undefined) {
    if (options.gso === 'auto') gso = 1
    else if (options.gso === true) gso = 2
    else if (options.gso === false) gso = 0
    else throw errors.invalidArgValue('options.gso', options.gso, "must be 'auto', true or false")
  }
  if (portable && gso === 2) throw errors.invalidArgValue('options.gso', true, 'needs the batched (non-portable) path')
  const gro = bool(options, 'gro', false)
  if (portable && gro) throw errors.invalidArgValue('options.gro', true, 'needs the batched (non-portable) path')
  return {
    type,
    native: {
      address,
      port,
      ipv6,
      ipv6Only,
      reuseAddr: bool(options, 'reuseAddr', false),
      reusePort: bool(options, 'reusePort', false),
      broadcast: bool(options, 'broadcast', false),
      recvBufferSize: int(options, 'recvBufferSize', 1, maxBuf, undefined),
      sendBufferSize: int(options, 'sendBufferSize', 1, maxBuf, undefined),
      forceBufferSize: bool(options, 'forceBufferSize', false),
      ttl,
      batchSize: int(options, 'batchSize', 1, 1024, DEFAULTS.batchSize),
      maxDatagramSize: int(options, 'maxDatagramSize', 1, 65535, DEFAULTS.maxDatagramSize),
      maxPendingBatches: int(options, 'maxPendingBatches', 1, 1024, DEFAULTS.maxPendingBatches),
      coalesceMicros: int(options, 'coalesceMicros', 0, 1000000, DEFAULTS.coalesceMicros),
      connectAddress: connect ? connect.address : undefined,
      connectPort: connect ? connect.port : undefined,
      portable,
      gso: portable ? 0 : gso,
      gro,
      pktinfo: bool(options, 'pktinfo', false),
      timestamps: bool(options, 'timestamps', false),
      recvTos: bool(options, 'recvTos', false),
      tos: int(options, 'tos', 0, 255, undefined),
    },
  }
}

module.exports = { normalize, portOf, ipOf, DEFAULTS }
