// Shared helpers of the core test suite. Every socket is bound on loopback (127.0.0.1 or
// ::1) and closed in t.teardown; every wait is bounded in count and time.
import type { ExecutionContext } from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import * as path from 'node:path'
import { UdpSocket, Batch } from '../lib/index.js'
import type { BindOptions, OutgoingMessage } from '../lib/index.js'
import { owned, type Owned } from './fixtures/owned.js'

export { UdpSocket, Batch }

export const V4 = '127.0.0.1'
export const V6 = '::1'
export const FIXTURES = path.join(__dirname, 'fixtures')

/** Receive buffer that avoids kernel drops in same-process bulk tests. */
export const BIG_RCVBUF = 4 << 20

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Binds a socket and closes it when the test ends. */
export function open(t: ExecutionContext, options: BindOptions = {}): UdpSocket {
  const s = UdpSocket.bindSync(options)
  t.teardown(() => s.close())
  return s
}

/** A bound loopback socket of the given family (IPv4 by default), closed at teardown. */
export function openLo(t: ExecutionContext, family: 4 | 6 = 4, options: BindOptions = {}): UdpSocket {
  return open(t, { address: family === 6 ? V6 : V4, port: 0, ...options })
}

export function portOf(s: UdpSocket): number {
  return s.localAddress().port
}

/**
 * Polls `cond` every `intervalMs` until it is true or `timeoutMs` passed. Returns the final
 * value of `cond` (the caller asserts on it; reaching the limit is never a pass by itself).
 */
export async function waitUntil(cond: () => boolean, timeoutMs = 20_000, intervalMs = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) return cond()
    await sleep(intervalMs)
  }
  return true
}

/** Resolves after a few turns of the event loop (nothing timed). */
export async function ticks(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve))
}

// ---- payloads ----------------------------------------------------------------------------

/** Header: sequence number (u32 BE) and total length (u32 BE). */
const HEADER = 8

/** Length of the payload of datagram `seq`: 8..(8 + spread - 1) bytes, varying with seq. */
export function payloadLength(seq: number, spread = 120): number {
  return HEADER + ((seq * 7919) % spread)
}

/** A deterministic payload for sequence number `seq`: header, then a pattern of seq and offset. */
export function payload(seq: number, length = payloadLength(seq)): Buffer {
  if (length < HEADER) throw new Error('payload too short')
  const b = Buffer.allocUnsafe(length)
  b.writeUInt32BE(seq >>> 0, 0)
  b.writeUInt32BE(length, 4)
  for (let k = HEADER; k < length; k++) b[k] = (seq * 131 + k * 17 + (k >> 8)) & 0xff
  return b
}

/** The sequence number of a received payload, or a string saying what is wrong with it. */
export function checkPayload(data: Uint8Array): number | string {
  if (data.byteLength < HEADER) return `short datagram (${data.byteLength} bytes)`
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const seq = b.readUInt32BE(0)
  const length = b.readUInt32BE(4)
  if (length !== b.length) return `seq ${seq}: length ${b.length}, expected ${length} (cut or padded)`
  for (let k = HEADER; k < length; k++) {
    if (b[k] !== ((seq * 131 + k * 17 + (k >> 8)) & 0xff)) return `seq ${seq}: byte ${k} differs`
  }
  return seq
}

/** Messages carrying payload(seq) for each seq; `length` fixes every payload's length (same-size runs are what GSO batches). */
export function messagesTo(address: string, port: number, seqs: Iterable<number>, length?: number): OutgoingMessage[] {
  const out: OutgoingMessage[] = []
  for (const seq of seqs) out.push({ data: payload(seq, length ?? payloadLength(seq)), address, port })
  return out
}

export function range(start: number, end: number): number[] {
  const out: number[] = []
  for (let i = start; i < end; i++) out.push(i)
  return out
}

// ---- receiving ---------------------------------------------------------------------------

/** One received datagram, copied out of its batch. */
export interface Received {
  data: Buffer
  address: string
  port: number
  family: string
  truncated: boolean
}

/** Collects (copies of) every datagram a socket receives through onBatch. */
export class Collector {
  readonly messages: Received[] = []
  readonly batchSizes: number[] = []
  readonly unsubscribe: () => void
  constructor(socket: UdpSocket) {
    this.unsubscribe = socket.onBatch((b) => {
      this.batchSizes.push(b.count)
      for (let i = 0; i < b.count; i++) {
        this.messages.push({
          data: Buffer.from(b.data(i)),
          address: b.address(i),
          port: b.port(i),
          family: b.family(i),
          truncated: b.truncated(i),
        })
      }
    })
  }
  get count(): number {
    return this.messages.length
  }
  texts(): string[] {
    return this.messages.map((m) => m.data.toString())
  }
  /** Waits until at least `n` datagrams arrived; returns whether they did. */
  waitFor(n: number, timeoutMs = 20_000): Promise<boolean> {
    return waitUntil(() => this.messages.length >= n, timeoutMs)
  }
}

/** Pulls with recvBatch until `n` datagrams arrived or a pull comes back empty. */
export async function pull(socket: UdpSocket, n: number, timeoutMs = 10_000): Promise<Received[]> {
  const out: Received[] = []
  while (out.length < n) {
    const b = await socket.recvBatch({ timeoutMs })
    if (b.count === 0) break
    for (const m of b) out.push({ ...m, data: Buffer.from(m.data) })
  }
  return out
}

/**
 * Tracks a bulk transfer of sequence-numbered payloads: every datagram is checked as it
 * arrives (content, length, source), duplicates and strangers are counted.
 */
export class SeqTracker {
  readonly seen: Uint8Array
  received = 0
  duplicates = 0
  problems: string[] = []
  batches = 0
  maxBatch = 0
  bytes = 0
  readonly unsubscribe: () => void
  constructor(socket: UdpSocket, readonly total: number, readonly from?: { address: string; port: number }) {
    this.seen = new Uint8Array(total)
    this.unsubscribe = socket.onBatch((b) => {
      this.batches++
      if (b.count > this.maxBatch) this.maxBatch = b.count
      for (let i = 0; i < b.count; i++) {
        this.received++
        const d = b.data(i)
        this.bytes += d.length
        const r = checkPayload(d)
        if (typeof r === 'string') this.problem(r)
        else if (r >= total) this.problem(`unexpected seq ${r}`)
        else if (this.seen[r]++ !== 0) this.duplicates++
        if (b.truncated(i)) this.problem(`datagram ${i} flagged truncated`)
        if (this.from !== undefined && (b.address(i) !== this.from.address || b.port(i) !== this.from.port)) {
          this.problem(`source ${b.address(i)}:${b.port(i)}, expected ${this.from.address}:${this.from.port}`)
        }
      }
    })
  }
  private problem(p: string) {
    if (this.problems.length < 20) this.problems.push(p)
  }
  missing(): number[] {
    const out: number[] = []
    for (let i = 0; i < this.total; i++) if (this.seen[i] === 0) out.push(i)
    return out
  }
}

/**
 * Sends `total` sequence-numbered datagrams from `tx` to `dest` in chunks of `chunk` per
 * sendBatch, waiting after each chunk until the receiver has caught up (flow control, so a
 * slow machine never overflows the receive buffer), and checks every datagram arrived
 * exactly once, uncut.
 */
export async function bulkRoundTrip(
  t: ExecutionContext,
  tx: UdpSocket,
  rx: UdpSocket,
  dest: { address: string; port: number },
  total: number,
  chunk = 500,
  expectedSource?: { address: string; port: number },
  length?: number,
): Promise<SeqTracker> {
  const tracker = new SeqTracker(rx, total, expectedSource)
  t.teardown(tracker.unsubscribe)
  let sentSoFar = 0
  for (let start = 0; start < total; start += chunk) {
    const end = Math.min(total, start + chunk)
    const n = await tx.sendBatch(messagesTo(dest.address, dest.port, range(start, end), length))
    t.is(n, end - start, 'sendBatch resolves with the number of datagrams')
    sentSoFar = end
    if (!(await waitUntil(() => tracker.received >= sentSoFar, 30_000))) break
  }
  const drops = rx.stats().kernelDrops
  const missing = tracker.missing()
  t.is(tracker.received, total, `received ${tracker.received} of ${total}; kernelDrops ${drops}; first missing ${missing.slice(0, 10)}`)
  t.deepEqual(tracker.problems, [], 'every datagram arrives uncut with the right content and source')
  t.is(tracker.duplicates, 0, 'no datagram arrives twice')
  t.deepEqual(missing, [], 'every sequence number arrives')
  t.is(drops, 0, 'no kernel drops')
  return tracker
}

// ---- errors ------------------------------------------------------------------------------

/** Runs `fn` and returns what it threw (or the rejection of what it returned); fails when it did not. */
export async function caught(fn: () => unknown): Promise<any> {
  try {
    await fn()
  } catch (e) {
    return e
  }
  throw new Error('expected an error, but the call succeeded')
}

// ---- what the package owns: sockets, timerfds, I/O threads -------------------------------------

// owned(): the UDP socket fds, timerfds and udp-mmsg-io threads of this process (see
// fixtures/owned.js, shared with the fixtures that count in child processes).
export { owned }
export type { Owned }

const sameOwned = (a: Owned, b: Owned) => a.udpSockets === b.udpSockets && a.timerfds === b.timerfds && a.ioThreads === b.ioThreads

/** owned() for a baseline (kept as a function: tests read it as "the counts before"). */
export async function ownedBaseline(): Promise<Owned> {
  return owned()
}

/** Waits (bounded) until owned() equals `want`; returns the counts it last compared (the caller asserts). */
export async function ownedReaches(want: Owned, timeoutMs = 10_000): Promise<Owned> {
  let o = owned()
  await waitUntil(() => sameOwned((o = owned()), want), timeoutMs, 10)
  return o
}

/** Waits (bounded) until owned() is back to `base`; returns the counts it last compared (the caller asserts). */
export async function settleOwned(base: Owned, timeoutMs = 10_000): Promise<Owned> {
  let o = owned()
  await waitUntil(() => sameOwned((o = owned()), base), timeoutMs, 10)
  return o
}

// ---- child processes ---------------------------------------------------------------------

export interface Child {
  proc: ChildProcess
  /** Lines the child wrote to stdout, parsed as JSON. */
  lines: any[]
  stderr: () => string
  /**
   * Resolves with the exit code (or the signal) once the child exited AND its stdout and
   * stderr were read to the end ('close', not 'exit': 'exit' can fire while output is still
   * in the pipes, and a line read after it could be missing).
   */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Whether 'close' fired (the process ended and every byte of its output was read). */
  closed: () => boolean
  /** Waits until a line satisfying `pred` arrives (bounded); returns it or undefined. */
  waitLine: (pred: (line: any) => boolean, timeoutMs?: number) => Promise<any>
}

/** Runs `node ...args` to its end and resolves with its exit code and whole output, after
 * 'close' (never 'exit', which can come before the pipes are read to the end). */
export function runNode(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d) => (stdout += d))
    child.stderr!.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Starts `node fixtures/<script> ...args`; the child is killed at teardown if still alive. */
export function runFixture(t: ExecutionContext, script: string, args: string[] = [], nodeArgs: string[] = []): Child {
  const proc = spawn(process.execPath, [...nodeArgs, path.join(FIXTURES, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: any[] = []
  let out = ''
  let err = ''
  let closed = false
  proc.stdout!.setEncoding('utf8')
  proc.stdout!.on('data', (chunk: string) => {
    out += chunk
    let nl
    while ((nl = out.indexOf('\n')) !== -1) {
      const line = out.slice(0, nl)
      out = out.slice(nl + 1)
      try {
        lines.push(JSON.parse(line))
      } catch {
        lines.push({ text: line })
      }
    }
  })
  proc.stderr!.setEncoding('utf8')
  proc.stderr!.on('data', (chunk: string) => {
    err += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('close', (code, signal) => {
      // A last line without a newline is still a line.
      if (out !== '') {
        try {
          lines.push(JSON.parse(out))
        } catch {
          lines.push({ text: out })
        }
        out = ''
      }
      closed = true
      resolve({ code, signal })
    })
  })
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  })
  const waitLine = async (pred: (line: any) => boolean, timeoutMs = 30_000) => {
    // Stops early only once the output is complete ('close'), never on 'exit' alone.
    await waitUntil(() => lines.some(pred) || closed, timeoutMs, 10)
    return lines.find(pred)
  }
  return { proc, lines, stderr: () => err, exited, closed: () => closed, waitLine }
}

/** Waits for a child to exit by itself within `limitMs`; kills it when it does not. */
export async function exitWithin(child: Child, limitMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'still running'> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<'still running'>((resolve) => {
    timer = setTimeout(() => resolve('still running'), limitMs)
  })
  const r = await Promise.race([child.exited, limit])
  clearTimeout(timer)
  if (r === 'still running') {
    child.proc.kill('SIGKILL')
    // Read the rest of its output (for the failure message), bounded.
    await Promise.race([child.exited, sleep(5000)])
  }
  return r
}
