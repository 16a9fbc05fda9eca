// A native socket opened by key (src/native/keyed.rs). The binary opens and closes a socket,
// and starts or pauses its reading, through plain N-API functions (`openSocket`, `closeSocket`,
// `setReading`) that name the socket by a number; its napi-rs class object
// (`NativeSocket.fromKey(key)`), whose wrap at creation and unwrap at close were ~13 % of a
// socket-per-request program's time per socket, is made only when JS first calls another of
// its methods. Most short-lived sockets (a DNS client's socket per query) never need it: they
// open, start reading, send by key (`sendOneFast`), receive through their dispatch callback
// and close.
//
// A `KeyedSocket` has the class's interface: `close`, `closed`, `stats` (the final counters
// after close), `sendKey`, `portable`, `setReading`, `ref` and `unref` are its own, every other
// method is the class object's. `unref()` makes the class object on purpose: an unreferenced
// socket JS drops is closed when the garbage collector collects its class object, as before.

import type { NativeSocket, NativeStats } from '../index.js'
import type { Dispatch } from './native.js'

/** What this module needs of the binary. */
export interface KeyedBinding {
  NativeSocket: { fromKey(key: number): NativeSocket; prototype: object }
  statsSlots(): string[]
}

/** `openSocket(address, options, connectAddress, steering, dispatch)`: the new socket's key. */
export type OpenSocket = (
  address: string,
  options: Float64Array,
  connectAddress: string | null,
  steering: unknown,
  dispatch: Dispatch,
) => number
/** `closeSocket(key, out)`: closes; writes the final counters into `out`, returns how many. */
export type CloseSocket = (key: number, out: Float64Array) => number
/** `setReading(key, on)`: starts or pauses reading. */
export type SetReading = (key: number, on: boolean) => number

/** The plain functions of the binary that take a key (src/native/keyed.rs). */
export interface KeyedFunctions {
  closeSocket: CloseSocket
  setReading: SetReading
}

/** The methods a KeyedSocket answers itself; the others go to the class object. */
const OWN = new Set(['constructor', 'close', 'closed', 'stats', 'sendKey', 'portable', 'ref', 'unref', 'setReading'])

/**
 * Returns the function that wraps a key from `openSocket` as a NativeSocket. Fails (at load)
 * when the binary lacks the plain functions, as an older binary would.
 */
export function keyedSockets(binding: KeyedBinding, fns: KeyedFunctions): (key: number) => NativeSocket {
  const { closeSocket, setReading } = fns
  const slots = binding.statsSlots()
  // closeSocket writes here, and the counters are copied out at once (the next close reuses it).
  const scratch = new Float64Array(slots.length)
  const Class = binding.NativeSocket

  class KeyedSocket {
    _key: number
    _cls: NativeSocket | null = null
    _closed = false
    /** The final counters (closed by key), in `statsSlots()` order; null while open. */
    _final: number[] | null = null

    constructor(key: number) {
      this._key = key
    }

    /** The class object, made on first use. Throws the closed-socket error once closed. */
    _class(): NativeSocket {
      return this._cls ?? (this._cls = Class.fromKey(this._key))
    }

    get closed(): boolean {
      return this._cls !== null ? this._cls.closed : this._closed
    }

    get portable(): boolean {
      return this._closed ? false : this._class().portable
    }

    sendKey(): number {
      return this._closed ? -1 : this._key
    }

    stats(): NativeStats {
      if (this._cls !== null || !this._closed) return this._class().stats()
      const o: Record<string, number> = {}
      const f = this._final
      for (let i = 0; i < slots.length; i++) o[slots[i]] = f === null ? 0 : f[i]
      return o as unknown as NativeStats
    }

    setReading(on: boolean): void {
      if (this._cls !== null) this._cls.setReading(on)
      else setReading(this._key, on)
    }

    ref(): void {
      if (!this._closed) this._class().ref()
    }

    unref(): void {
      if (!this._closed) this._class().unref()
    }

    close(): void {
      if (this._closed) return
      this._closed = true
      if (this._cls !== null) return this._cls.close()
      const n = closeSocket(this._key, scratch)
      if (n > 0) {
        const f = new Array<number>(n)
        for (let i = 0; i < n; i++) f[i] = scratch[i]
        this._final = f
      }
    }
  }

  const proto = KeyedSocket.prototype as unknown as Record<string, unknown>
  for (const name of Object.getOwnPropertyNames(Class.prototype)) {
    const d = Object.getOwnPropertyDescriptor(Class.prototype, name)
    if (OWN.has(name) || d === undefined || typeof d.value !== 'function') continue
    proto[name] = function (this: KeyedSocket, ...args: unknown[]): unknown {
      const cls = this._class() as unknown as Record<string, (...a: unknown[]) => unknown>
      return cls[name](...args)
    }
  }
  return (key) => new KeyedSocket(key) as unknown as NativeSocket
}
