// Shared helpers of the dgram-*.spec.ts tests: run one scenario against node:dgram and against
// udp-mmsg/dgram, with sockets closed in teardown and every wait bounded.
import { once } from 'node:events'
import * as nodeDgram from 'node:dgram'
import type { ExecutionContext } from 'ava'
import * as mmsgDgram from '../lib/dgram.js'

export type Socket = nodeDgram.Socket
export type RemoteInfo = nodeDgram.RemoteInfo
export interface DgramLike {
  createSocket: typeof nodeDgram.createSocket
}

/** Both implementations; the facade's types must be assignable to node:dgram's. */
export const NODE: DgramLike = nodeDgram
export const MMSG: DgramLike = mmsgDgram
export const IMPLS: ReadonlyArray<readonly [string, DgramLike]> = [
  ['node:dgram', NODE],
  ['udp-mmsg/dgram', MMSG],
]

/** Generous: the machine is shared and slow. Only a hang trips it. */
export const WAIT_MS = 15000

export function withTimeout<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

export function waitEvent(emitter: NodeJS.EventEmitter, event: string, what = event): Promise<unknown[]> {
  return withTimeout(once(emitter, event), what)
}

/** Closes every socket made through it when the test ends (close() twice throws: ignored). */
export function sockets(t: ExecutionContext) {
  const list: Socket[] = []
  t.teardown(() => {
    for (const s of list) {
      try {
        s.close()
      } catch {
        // already closed
      }
    }
  })
  return {
    add<S extends Socket>(s: S): S {
      list.push(s)
      return s
    },
    /** A socket bound to a loopback address and an ephemeral port, once 'listening'. */
    async bound(d: DgramLike, type: 'udp4' | 'udp6' = 'udp4'): Promise<Socket> {
      const s = d.createSocket(type)
      list.push(s)
      const listening = waitEvent(s, 'listening')
      s.bind(0, type === 'udp4' ? '127.0.0.1' : '::1')
      await listening
      return s
    },
  }
}

/** Resolves with the next `n` messages of `s`. */
export function messages(s: Socket, n: number): Promise<Array<{ text: string; rinfo: RemoteInfo; isBuffer: boolean }>> {
  const got: Array<{ text: string; rinfo: RemoteInfo; isBuffer: boolean }> = []
  return withTimeout(
    new Promise((resolve) => {
      const on = (msg: Buffer, rinfo: RemoteInfo) => {
        got.push({ text: msg.toString('latin1'), rinfo: { ...rinfo }, isBuffer: Buffer.isBuffer(msg) })
        if (got.length === n) {
          s.off('message', on)
          resolve(got)
        }
      }
      s.on('message', on)
    }),
    `${n} messages`,
  )
}

/** Runs `fn`, returning what it threw as `{ name, code, message }` (or 'no throw'). */
export function thrown(fn: () => unknown): { name: string; code: unknown; message: string } | 'no throw' {
  try {
    fn()
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    return { name: err.name, code: err.code, message: err.message }
  }
  return 'no throw'
}

/** Promise of a Node-style callback's arguments. */
export function callback<A extends unknown[]>(what: string): { cb: (...args: A) => void; done: Promise<A> } {
  let cb!: (...args: A) => void
  const done = withTimeout(
    new Promise<A>((resolve) => {
      cb = (...args: A) => resolve(args)
    }),
    what,
  )
  return { cb, done }
}

/** Replaces each distinct ephemeral port in `value` by a stable placeholder, so two runs compare. */
export function normalizePorts<T>(value: T, ports: Record<number, string>): T {
  return JSON.parse(
    JSON.stringify(value, (_k, v) => (typeof v === 'number' && ports[v] !== undefined ? ports[v] : v)).replace(
      /:(\d{2,5})\b/g,
      (m, p) => (ports[Number(p)] !== undefined ? `:${ports[Number(p)]}` : m),
    ),
  )
}
