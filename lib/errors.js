'use strict'
// Node-style errors: TypeError/RangeError for bad arguments (with Node's ERR_* codes and the
// argument's name), and errno errors (`code: 'EMSGSIZE'`, `errno`, `syscall`) for the kernel.

const { getSystemErrorName } = require('node:util')

function withCode(err, code, extra) {
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  if (extra) Object.assign(err, extra)
  return err
}

function describe(value) {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') {
    const name = value.constructor && value.constructor.name
    return name ? `an instance of ${name}` : 'an object'
  }
  let shown = String(value)
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`
  if (typeof value === 'string') shown = `'${shown}'`
  return `type ${typeof value} (${shown})`
}

/** `TypeError [ERR_INVALID_ARG_TYPE]`: the argument has the wrong type. */
function invalidArgType(name, expected, value) {
  return withCode(new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`), 'ERR_INVALID_ARG_TYPE')
}

/** `TypeError [ERR_INVALID_ARG_VALUE]`: the argument has the right type but an unusable value. */
function invalidArgValue(name, value, reason) {
  return withCode(new TypeError(`The "${name}" argument ${reason}. Received ${describe(value)}`), 'ERR_INVALID_ARG_VALUE')
}

/** `RangeError [ERR_OUT_OF_RANGE]`. */
function outOfRange(name, range, value) {
  return withCode(new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${describe(value)}`), 'ERR_OUT_OF_RANGE')
}

/** `RangeError [ERR_SOCKET_BAD_PORT]`. */
function badPort(name, value, allowZero) {
  const range = allowZero ? '>= 0 and <= 65535' : '>= 1 and <= 65535'
  return withCode(new RangeError(`${name} should be ${range}. Received ${describe(value)}.`), 'ERR_SOCKET_BAD_PORT')
}

/** `Error [ERR_SOCKET_CLOSED]`: the socket was closed. */
function socketClosed(extra) {
  return withCode(new Error('Socket is closed'), 'ERR_SOCKET_CLOSED', extra)
}

/** `Error [ERR_SOCKET_DGRAM_IS_CONNECTED]`. */
function isConnected(name) {
  return withCode(new Error(`Socket is connected: ${name} must not name a destination`), 'ERR_SOCKET_DGRAM_IS_CONNECTED')
}

/** `Error [ERR_SOCKET_DGRAM_NOT_CONNECTED]`. */
function notConnected(name) {
  const msg = name === undefined ? 'Socket is not connected' : `Socket is not connected: ${name} needs an address and a port`
  return withCode(new Error(msg), 'ERR_SOCKET_DGRAM_NOT_CONNECTED')
}

/** `AbortError` like Node's, with `code: 'ABORT_ERR'`. */
function abortError(signal, extra) {
  const err = new Error('The operation was aborted', signal && signal.reason !== undefined ? { cause: signal.reason } : undefined)
  err.name = 'AbortError'
  return withCode(err, 'ABORT_ERR', extra)
}

/** An errno error as Node makes them: `send EMSGSIZE`, with `errno` negative. */
function errnoError(errno, syscall, detail, extra) {
  let code
  try {
    code = getSystemErrorName(-Math.abs(errno))
  } catch {
    code = `Unknown system error ${errno}`
  }
  const err = new Error(`${syscall} ${code}${detail ? ` ${detail}` : ''}`)
  err.errno = -Math.abs(errno)
  err.syscall = syscall
  return withCode(err, code, extra)
}

/**
 * Turns an error thrown by the native layer into the Node-style error it stands for. Native
 * errors carry their facts as properties (see src/error.rs): `code` 'UDP_MMSG_OS' with
 * `errno`, `syscall`, `detail`; 'UDP_MMSG_ARG' with `argument`, `index`, `reason`;
 * 'UDP_MMSG_CLOSED'.
 */
function fromNative(err) {
  const code = err && err.code
  if (code === 'UDP_MMSG_OS') return errnoError(err.errno, err.syscall, err.detail)
  if (code === 'UDP_MMSG_ARG') return withCode(new TypeError(err.message), 'ERR_INVALID_ARG_VALUE')
  if (code === 'UDP_MMSG_CLOSED') return socketClosed()
  return err
}

module.exports = {
  invalidArgType,
  invalidArgValue,
  outOfRange,
  badPort,
  socketClosed,
  isConnected,
  notConnected,
  abortError,
  errnoError,
  fromNative,
}
