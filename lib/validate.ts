// The one set of argument validators, for both APIs. Each throws the error of its API's
// registry (errors.ts): the UdpSocket validators name the argument the way UdpSocket's
// messages do; the `dgram*` ones reproduce the checks of Node's lib/dgram.js, quirks included.

import { ipFamily } from './address.js'
import * as errors from './errors.js'

// ---- UdpSocket ---------------------------------------------------------------------------------

/** A port number: an integer 1..65535 (0..65535 with `allowZero`). */
export function portOf(v: unknown, name: string, allowZero: boolean): number {
  if (typeof v !== 'number') throw errors.invalidArgType(name, 'of type number', v)
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) throw errors.badPort(name, v, allowZero)
  return v
}

/** An IP address literal (no hostnames); returns its family, 4 or 6. */
export function ipOf(v: unknown, name: string): 4 | 6 {
  if (typeof v !== 'string') throw errors.invalidArgType(name, 'of type string', v)
  const fam = ipFamily(v)
  if (fam === 0) throw errors.invalidArgValue(name, v, 'must be an IPv4 or IPv6 address literal (hostnames are not resolved)')
  return fam as 4 | 6
}

/** An integer `min..max`. */
export function checkInt(v: unknown, name: string, min: number, max: number): asserts v is number {
  if (typeof v !== 'number') throw errors.invalidArgType(name, 'of type number', v)
  if (!Number.isInteger(v) || v < min || v > max) throw errors.outOfRange(name, `an integer >= ${min} and <= ${max}`, v)
}

/** A string. */
export function checkString(v: unknown, name: string): asserts v is string {
  if (typeof v !== 'string') throw errors.invalidArgType(name, 'of type string', v)
}

/** A boolean. */
export function checkBool(v: unknown, name: string): asserts v is boolean {
  if (typeof v !== 'boolean') throw errors.invalidArgType(name, 'of type boolean', v)
}

/** A function. */
export function checkFunction(v: unknown, name: string): asserts v is (...args: never[]) => unknown {
  if (typeof v !== 'function') throw errors.invalidArgType(name, 'of type function', v)
}

/** `undefined`, or an options object. */
export function checkOptions(v: unknown, name = 'options'): asserts v is object | undefined {
  if (v !== undefined && (v === null || typeof v !== 'object')) throw errors.invalidArgType(name, 'of type object', v)
}

/** An optional AbortSignal (anything shaped like one). */
export function checkSignal(signal: unknown, name: string): AbortSignal | undefined {
  if (signal === undefined) return undefined
  const s = signal as { aborted?: unknown; addEventListener?: unknown } | null
  if (s === null || typeof s !== 'object' || typeof s.aborted !== 'boolean' || typeof s.addEventListener !== 'function') {
    throw errors.invalidArgType(name, 'an instance of AbortSignal', signal)
  }
  return signal as AbortSignal
}

/** Option `name` of `opts`: an integer `min..max`, or `dflt` when undefined. */
export function intOption<D extends number | undefined>(
  opts: Record<string, unknown>,
  name: string,
  min: number,
  max: number,
  dflt: D,
): number | D {
  return intValue(opts[name], name, min, max, dflt)
}

/** Option `name` of `opts`: a boolean, or `dflt` when undefined. */
export function boolOption(opts: Record<string, unknown>, name: string, dflt: boolean): boolean {
  return boolValue(opts[name], name, dflt)
}

/** `v`, the value of option `name`: an integer `min..max`, or `dflt` when undefined. */
export function intValue<D extends number | undefined>(v: unknown, name: string, min: number, max: number, dflt: D): number | D {
  if (v === undefined) return dflt
  checkInt(v, `options.${name}`, min, max)
  return v
}

/** `v`, the value of option `name`: a boolean, or `dflt` when undefined. */
export function boolValue(v: unknown, name: string, dflt: boolean): boolean {
  if (v === undefined) return dflt
  checkBool(v, `options.${name}`)
  return v
}

// ---- the node:dgram facade (Node's validators) --------------------------------------------------

/** Node's validatePort: numbers or numeric strings; returns the port as a number. */
export function dgramPort(port: unknown, name: string, allowZero: boolean): number {
  if (
    (typeof port !== 'number' && typeof port !== 'string') ||
    (typeof port === 'string' && port.trim().length === 0) ||
    +port !== +port >>> 0 ||
    (port as number) > 0xffff ||
    (port === 0 && !allowZero) ||
    (!allowZero && +port === 0)
  ) {
    throw errors.dgram.badPort(name, port, allowZero)
  }
  return +port | 0
}

/** Node's validateString. */
export function dgramString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string') throw errors.dgram.invalidArgType(name, 'of type string', value)
}

/** Node's `validateUint32` (not positive): a number, an integer, 0..4294967295, with its errors. */
export function dgramUint32(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number') throw errors.dgram.invalidArgType(name, 'of type number', value)
  if (!Number.isInteger(value)) throw errors.dgram.outOfRange(name, 'an integer', value)
  if (value < 0 || value > 0xffffffff) throw errors.dgram.outOfRange(name, '>= 0 && <= 4294967295', value)
}

/** What node:dgram's send() accepts as a payload part, as its messages name it. */
export const DGRAM_BUFFER_TYPES = 'of type string or an instance of Buffer, TypedArray, or DataView'

function toBuffer(part: unknown): ArrayBufferView | null {
  if (typeof part === 'string') return Buffer.from(part)
  if (ArrayBuffer.isView(part)) return part
  return null
}

/** send(buffer, offset, length, ...): the bytes `offset .. offset + length` of `buffer`. */
export function dgramSlice(buffer: unknown, offset: unknown, length: unknown): Buffer {
  let b: ArrayBufferView
  if (typeof buffer === 'string') b = Buffer.from(buffer)
  else if (!ArrayBuffer.isView(buffer)) throw errors.dgram.invalidArgType('buffer', DGRAM_BUFFER_TYPES, buffer)
  else b = buffer
  const off = (offset as number) >>> 0
  const len = (length as number) >>> 0
  if (off > b.byteLength) throw errors.dgram.outOfBounds('offset')
  if (off + len > b.byteLength) throw errors.dgram.outOfBounds('length')
  return Buffer.from(b.buffer, b.byteOffset + off, len)
}

/** A send() buffer list as views, or null when an element is not a string or view. */
export function dgramBufferList(list: readonly unknown[]): ArrayBufferView[] | null {
  const out = new Array<ArrayBufferView>(list.length)
  for (let i = 0; i < list.length; i++) {
    const b = toBuffer(list[i])
    if (b === null) return null
    out[i] = b
  }
  return out
}
