// The one error registry of udp-mmsg, for both APIs. UdpSocket's errors: TypeError/RangeError
// for bad arguments (with Node's ERR_* codes and the argument's name), errno errors
// (`code: 'EMSGSIZE'`, `errno`, `syscall`) for the kernel. The node:dgram facade's errors
// (`dgram`) are shaped exactly like Node's own (stack `Error [ERR_X]: ...`, Node's messages).
//
// Native-interface seam: `fromNative` is the only place that decodes an error thrown by the
// native layer (structured: `code` UDP_MMSG_OS / UDP_MMSG_ARG / UDP_MMSG_CLOSED with their
// fields); a refused address-table entry is decoded by `nativeAddressRefusal`, for the send path.

import { getSystemErrorMap, getSystemErrorName, inspect } from 'node:util'
import type { ErrnoError } from './types.js'

export type { ErrnoError }

/** Extra own properties some errors carry (`sent`, `index`, `address`, ...). */
export type ErrorExtra = Record<string, unknown>

/** An error carrying Node's `code` property. */
export interface CodedError extends Error {
  code: string
  [key: string]: unknown
}

function withCode<E extends Error>(err: E, code: string, extra?: ErrorExtra): E & CodedError {
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  if (extra) Object.assign(err, extra)
  return err as E & CodedError
}

/** How Node's ERR_INVALID_ARG_TYPE messages show a received value. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') {
    const name = (value as { constructor?: { name?: string } }).constructor?.name
    return name ? `an instance of ${name}` : 'an object'
  }
  let shown = String(value)
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`
  if (typeof value === 'string') shown = `'${shown}'`
  return `type ${typeof value} (${shown})`
}

/** How node:dgram's errors show a received value: Node's own `determineSpecificType` (util.inspect). */
export function describeNode(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (typeof value === 'function' && value.name) return `function ${value.name}`
  if (typeof value === 'object') {
    const name = (value as { constructor?: { name?: string } }).constructor?.name
    return name ? `an instance of ${name}` : inspect(value, { depth: -1 })
  }
  if (typeof value === 'string' && value.length > 28) return `type string (${inspect(`${value.slice(0, 25)}...`)})`
  let shown = inspect(value, { colors: false })
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`
  return `type ${typeof value} (${shown})`
}

/** How Node's ERR_OUT_OF_RANGE shows a received value: large integers with `_` separators. */
function receivedNode(value: unknown): string {
  if (typeof value === 'number' && Number.isInteger(value) && Math.abs(value) > 2 ** 32) {
    const digits = String(Math.abs(value)).replace(/\B(?=(\d{3})+$)/g, '_')
    return value < 0 ? `-${digits}` : digits
  }
  return inspect(value)
}

/** libuv's description of an errno (`'bad file descriptor'`), as Node's SystemError shows it. */
export function uvMessage(errno: number): string {
  const entry = getSystemErrorMap().get(-Math.abs(errno))
  return entry ? entry[1] : `Unknown system error ${-Math.abs(errno)}`
}

// ---- UdpSocket (core API) ---------------------------------------------------------------------

/** `TypeError [ERR_INVALID_ARG_TYPE]`: the argument has the wrong type. */
export function invalidArgType(name: string, expected: string, value: unknown): TypeError & CodedError {
  return withCode(new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`), 'ERR_INVALID_ARG_TYPE')
}

/** `TypeError [ERR_INVALID_ARG_VALUE]`: the argument has the right type but an unusable value. */
export function invalidArgValue(name: string, value: unknown, reason: string): TypeError & CodedError {
  return withCode(new TypeError(`The "${name}" argument ${reason}. Received ${describe(value)}`), 'ERR_INVALID_ARG_VALUE')
}

/** `RangeError [ERR_OUT_OF_RANGE]`. */
export function outOfRange(name: string, range: string, value: unknown): RangeError & CodedError {
  return withCode(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${describe(value)}`),
    'ERR_OUT_OF_RANGE',
  )
}

/** `RangeError [ERR_SOCKET_BAD_PORT]`. */
export function badPort(name: string, value: unknown, allowZero: boolean): RangeError & CodedError {
  const range = allowZero ? '>= 0 and <= 65535' : '>= 1 and <= 65535'
  return withCode(new RangeError(`${name} should be ${range}. Received ${describe(value)}.`), 'ERR_SOCKET_BAD_PORT')
}

/** `Error [ERR_SOCKET_CLOSED]`: the socket was closed. */
export function socketClosed(extra?: ErrorExtra): CodedError {
  return withCode(new Error('Socket is closed'), 'ERR_SOCKET_CLOSED', extra)
}

/** `Error [ERR_SOCKET_DGRAM_IS_CONNECTED]`. */
export function isConnected(name: string): CodedError {
  return withCode(new Error(`Socket is connected: ${name} must not name a destination`), 'ERR_SOCKET_DGRAM_IS_CONNECTED')
}

/** `Error [ERR_SOCKET_DGRAM_NOT_CONNECTED]`. */
export function notConnected(name?: string): CodedError {
  const msg = name === undefined ? 'Socket is not connected' : `Socket is not connected: ${name} needs an address and a port`
  return withCode(new Error(msg), 'ERR_SOCKET_DGRAM_NOT_CONNECTED')
}

/** `AbortError` like Node's, with `code: 'ABORT_ERR'`. */
export function abortError(signal: AbortSignal | undefined, extra?: ErrorExtra): CodedError {
  const err = new Error('The operation was aborted', signal && signal.reason !== undefined ? { cause: signal.reason } : undefined)
  err.name = 'AbortError'
  return withCode(err, 'ABORT_ERR', extra)
}

/** An errno error as Node makes them: `send EMSGSIZE`, with `errno` negative. */
export function errnoError(errno: number, syscall: string, detail?: string, extra?: ErrorExtra): ErrnoError & CodedError {
  let code: string
  try {
    code = getSystemErrorName(-Math.abs(errno))
  } catch {
    code = `Unknown system error ${errno}`
  }
  const err = new Error(`${syscall} ${code}${detail ? ` ${detail}` : ''}`) as Error & { errno: number; syscall: string }
  err.errno = -Math.abs(errno)
  err.syscall = syscall
  return withCode(err, code, extra)
}

/**
 * `Error [ERR_UDP_MMSG_UNSUPPORTED]`: the backend serving the socket cannot give `feature`
 * (the node:dgram fallback has no GSO, pktinfo, ...), asked for explicitly; `hint` says how
 * to get it. Carries `feature` and `backend`.
 */
export function unsupportedFeature(feature: string, backend: string, hint: string): CodedError {
  const err = new Error(`udp-mmsg: ${feature} is not available on the ${backend} backend; ${hint}`)
  return withCode(err, 'ERR_UDP_MMSG_UNSUPPORTED', { feature, backend })
}

// ---- native-interface decoding (the seam) -----------------------------------------------------

/**
 * The properties of an error thrown by the native layer (`src/error.rs`): an OS error
 * (`UDP_MMSG_OS`: `errno`, `syscall`, `detail`), an argument the native layer refused
 * (`UDP_MMSG_ARG`: `argument`, `index` for an address-table entry, `reason`) or use after close
 * (`UDP_MMSG_CLOSED`).
 */
interface NativeErrorFields {
  code?: unknown
  errno?: unknown
  syscall?: unknown
  detail?: unknown
  argument?: unknown
  index?: unknown
  reason?: unknown
  message?: unknown
}

function nativeFields(err: unknown): NativeErrorFields {
  return err !== null && typeof err === 'object' ? (err as NativeErrorFields) : {}
}

/**
 * Turns an error thrown by the native layer into the Node-style error it stands for: an errno
 * error for `UDP_MMSG_OS`, `ERR_INVALID_ARG_VALUE` for `UDP_MMSG_ARG`, `ERR_SOCKET_CLOSED` for
 * `UDP_MMSG_CLOSED`; anything else passes unchanged.
 */
export function fromNative(err: unknown): unknown {
  const e = nativeFields(err)
  switch (e.code) {
    case 'UDP_MMSG_OS':
      return errnoError(Number(e.errno), String(e.syscall), typeof e.detail === 'string' ? e.detail : '')
    case 'UDP_MMSG_ARG':
      return withCode(new TypeError(typeof e.message === 'string' ? e.message : String(e.reason)), 'ERR_INVALID_ARG_VALUE')
    case 'UDP_MMSG_CLOSED':
      return socketClosed()
    default:
      return err
  }
}

/** A native send's refusal of one address-table entry: which table, which entry, and why. */
export interface NativeAddressRefusal {
  kind: 'destination' | 'source'
  entry: number
  reason: string
}

/**
 * The native send's refusal of an address it cannot use (an unknown IPv6 scope): a
 * `UDP_MMSG_ARG` error whose `argument` is `destination` or `source` with the table `index`;
 * null for any other error.
 */
export function nativeAddressRefusal(err: unknown): NativeAddressRefusal | null {
  const e = nativeFields(err)
  if (e.code !== 'UDP_MMSG_ARG' || typeof e.index !== 'number') return null
  if (e.argument !== 'destination' && e.argument !== 'source') return null
  return { kind: e.argument, entry: e.index, reason: String(e.reason) }
}

// ---- the node:dgram facade: errors exactly as Node's lib/dgram.js makes them -----------------

function codedError(
  Ctor: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor,
  code: string,
  message: string,
  extra?: ErrorExtra,
): CodedError {
  const err = new Ctor(message) as Error & { name: string }
  // Like Node's internal errors: the stack reads `Error [ERR_X]: message`, the name stays plain.
  err.name = `${err.name} [${code}]`
  void err.stack
  delete (err as { name?: string }).name
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  if (code.startsWith('ERR_')) Object.defineProperty(err, 'toString', { value: nodeErrorToString, writable: true, configurable: true })
  if (extra) Object.assign(err, extra)
  return err as CodedError
}

function nodeErrorToString(this: CodedError): string {
  return `${this.name} [${this.code}]: ${this.message}`
}

/** Node's ErrnoException: `syscall CODE`, negative errno (a plain Error, as Node's). */
function errnoException(errno: number, syscall: string): ErrnoError & CodedError {
  const n = -Math.abs(errno)
  let code: string
  try {
    code = getSystemErrorName(n)
  } catch {
    code = `Unknown system error ${n}`
  }
  return Object.assign(new Error(`${syscall} ${code}`), { errno: n, code, syscall }) as ErrnoError & CodedError
}

/** The facade's errors, with the messages and codes node:dgram uses. */
export const dgram = {
  badType: () => codedError(TypeError, 'ERR_SOCKET_BAD_TYPE', 'Bad socket type specified. Valid types are: udp4, udp6'),
  notRunning: () => codedError(Error, 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running'),
  alreadyBound: () => codedError(Error, 'ERR_SOCKET_ALREADY_BOUND', 'Socket is already bound'),
  isConnected: () => codedError(Error, 'ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected'),
  notConnected: () => codedError(Error, 'ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected'),
  badBufferSize: () => codedError(TypeError, 'ERR_SOCKET_BAD_BUFFER_SIZE', 'Buffer size must be a positive integer'),
  badPort: (name: string, port: unknown, allowZero: boolean) =>
    codedError(
      RangeError,
      'ERR_SOCKET_BAD_PORT',
      `${name} should be ${allowZero ? '>=' : '>'} 0 and < 65536. Received ${describeNode(port)}.`,
    ),
  outOfBounds: (name: string) => codedError(RangeError, 'ERR_BUFFER_OUT_OF_BOUNDS', `"${name}" is outside of buffer bounds`),
  // Node says "property" for a dotted name ("options.recvBufferSize"), "argument" otherwise.
  invalidArgType: (name: string, expected: string, value: unknown) =>
    codedError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `The "${name}" ${name.includes('.') ? 'property' : 'argument'} must be ${expected}. Received ${describeNode(value)}`,
    ),
  outOfRange: (name: string, range: string, value: unknown) =>
    codedError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `The value of "${name}" is out of range. It must be ${range}. Received ${receivedNode(value)}`,
    ),
  invalidFdType: (type: string) => codedError(TypeError, 'ERR_INVALID_FD_TYPE', `Unsupported fd type: ${type}`),
  missingArgs: (name: string) => codedError(TypeError, 'ERR_MISSING_ARGS', `The "${name}" argument must be specified`),
  unsupported: (what: string, hint?: string) =>
    codedError(
      Error,
      'ERR_UDP_MMSG_UNSUPPORTED',
      `udp-mmsg/dgram: ${what} is not supported${hint ? `: ${hint}` : ''}. Use node:dgram for this socket if you need it.`,
    ),
  errnoException,

  /** Node's ExceptionWithHostPort from an errno error (others are returned unchanged). */
  withHostPort(err: unknown, syscall: string, address: string | undefined, port: number | undefined): unknown {
    const e = err as { errno?: unknown; code?: unknown } | null
    if (!e || typeof e.errno !== 'number' || typeof e.code !== 'string' || e.code.startsWith('ERR_')) return err
    let details = ''
    if (port && port > 0) details = ` ${address}:${port}`
    else if (address) details = ` ${address}`
    const ex = Object.assign(new Error(`${syscall} ${e.code}${details}`), {
      errno: e.errno,
      code: e.code,
      syscall,
    }) as unknown as CodedError
    ex.address = address
    if (port) ex.port = port
    return ex
  },

  /** What Node throws for a failed buffer-size call: a SystemError, shown as Node shows it. */
  bufferSizeError(errno: number, which: 'recv' | 'send'): CodedError {
    const name = getSystemErrorName(-errno)
    const syscall = which === 'recv' ? 'uv_recv_buffer_size' : 'uv_send_buffer_size'
    return systemError('ERR_SOCKET_BUFFER_SIZE', 'Could not get or set buffer size', {
      errno: -errno,
      code: name,
      message: uvMessage(errno),
      syscall,
    })
  },
}

/** Node's SystemError: `SystemError [CODE]: prefix: syscall returned CODE (uv message)`, with
 * `info` and live `errno`/`syscall` accessors, printed by util.inspect as Node prints it. */
function systemError(code: string, prefix: string, info: { errno: number; code: string; message: string; syscall: string }): CodedError {
  const message = `${prefix}: ${info.syscall} returned ${info.code} (${info.message})`
  const err = new Error(message) as Error & { name: string }
  err.name = `SystemError [${code}]`
  void err.stack
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  Object.defineProperties(err, {
    name: { value: 'SystemError', enumerable: false, writable: true, configurable: true },
    info: { value: info, enumerable: true, configurable: true, writable: false },
    errno: {
      get: () => info.errno,
      set: (v: number) => {
        info.errno = v
      },
      enumerable: true,
      configurable: true,
    },
    syscall: {
      get: () => info.syscall,
      set: (v: string) => {
        info.syscall = v
      },
      enumerable: true,
      configurable: true,
    },
    toString: { value: nodeErrorToString, writable: true, configurable: true },
    [inspect.custom]: {
      value: function (this: Error, _depth: number, options: object) {
        return inspect(this, { ...options, getters: true, customInspect: false })
      },
      writable: true,
      configurable: true,
    },
  })
  return err as unknown as CodedError
}
