// runWorkers: N worker_threads on one port, each with its own socket in one SO_REUSEPORT
// group, the kernel steering datagrams between them ('hash', 'cpu' or 'random'; see
// docs/scale-out.md). The parent starts the workers one at a time (worker i is socket i of the
// group), gathers their counters, surfaces their errors, re-spreads the group when one dies and
// closes them all. Each worker loads the user's handler module and gives it its socket.

import { EventEmitter, once } from 'node:events'
import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker, parentPort, workerData as wd } from 'node:worker_threads'
import * as errors from './errors.js'
import { normalize, steeringOf } from './options.js'
import { UdpSocket } from './socket.js'
import type { BindOptions, Stats, Steering } from './types.js'
import { checkInt, checkOptions, ipOf, portOf } from './validate.js'

/** Options of {@link runWorkers}. */
export interface WorkersOptions {
  /** Worker threads, one socket each, 1..1024. */
  workers: number
  /** The handler module: a path (absolute, or relative to the current directory) or a `file:` URL; its default export (or `module.exports`) is a {@link WorkerHandler}. */
  handler: string | URL
  /** Port of the group, 0..65535. Default 0: the first worker's socket gets a free port and the others join it. */
  port?: number
  /** Local IP literal. Default `'0.0.0.0'` (`'::'` with `bind.type: 'udp6'`). */
  address?: string
  /** Steering of the group. Default `'hash'`. `'random'` and `'cpu'` spread over `workers` sockets. */
  steering?: Steering
  /** Further bind options for every worker's socket (structured-cloneable: no `signal`); `address`, `port`, `reusePort`, `steering`, `groupSize` and `fd` are set by the helper. */
  bind?: BindOptions
  /** Passed to every handler as `context.workerData` (structured-cloned). */
  workerData?: unknown
  /** When a worker leaves, re-attach the steering program for the sockets left. Default true. */
  resteer?: boolean
}

/** What each handler is given beside its socket. */
export interface WorkerContext {
  /** This worker's index, 0..workers-1: its socket's place in the group as it started. */
  index: number
  /** The number of workers started. */
  workers: number
  /** The port of the group. */
  port: number
  /** `WorkersOptions.workerData`. */
  workerData: unknown
}

/** What a handler may return: a report for {@link Workers.stats} and a clean-up for close. */
export interface WorkerHooks {
  /** Called on each stats request; its (structured-cloneable) result is the worker's `report`. */
  report?(): unknown
  /** Called at close, before the socket closes. */
  close?(): void | Promise<void>
}

/** The handler a worker runs: attach listeners to `socket` (it is already bound and in the group). */
export type WorkerHandler = (socket: UdpSocket, context: WorkerContext) => void | WorkerHooks | Promise<void | WorkerHooks>

/** One worker's counters, as gathered by {@link Workers.stats} and {@link Workers.close}. */
export interface WorkerReport {
  /** The worker's index. */
  index: number
  /** False once it has exited (its figures are then the last it reported). */
  alive: boolean
  /** Its socket's counters (`datagramsReceived`, `kernelDrops`, ...). */
  stats: Stats | null
  /** What its handler's `report()` returned. */
  report?: unknown
}

// The compiled module the worker threads load. Run from the TypeScript sources (the tests, under
// a loader that worker threads do not inherit), that is the build of this file in dist/.
const WORKER_ENTRY = __filename.endsWith('.ts') ? resolve(__dirname, '..', 'dist', 'workers.js') : __filename

type ToWorker = { op: 'stats'; id: number } | { op: 'close' } | { op: 'steer'; mode: Steering; groupSize: number }
type FromWorker =
  | { op: 'ready'; port: number }
  | { op: 'stats'; id: number; stats: Stats; report?: unknown }
  | { op: 'closed'; stats: Stats; report?: unknown }

/** Posts `m` to a worker thread. */
function tell(worker: Worker, m: ToWorker): void {
  // oxlint-disable-next-line unicorn/require-post-message-target-origin -- a worker_threads Worker, not a window
  worker.postMessage(m)
}

interface Slot {
  worker: Worker
  alive: boolean
  last: WorkerReport
}

/**
 * N workers on one port, started by {@link runWorkers}. Events: `'workerError'` `(error, index)`
 * when a worker throws (it then exits; the others keep receiving), `'workerExit'`
 * `(index, exitCode)` when a worker ends other than by {@link Workers.close}.
 */
export class Workers extends EventEmitter {
  /** The port of the group. */
  readonly port: number
  /** @internal */ _slots: Slot[]
  /** @internal */ _steering: Steering
  /** @internal */ _resteer: boolean
  /** @internal Stats requests waiting for an answer: id → worker index and resolver. */ _asks = new Map<
    number,
    { index: number; res: (r: WorkerReport) => void }
  >()
  /** @internal */ _nextAsk = 0
  /** @internal */ _closing: Promise<WorkerReport[]> | null = null

  /** @internal */
  constructor(port: number, slots: Slot[], steering: Steering, resteer: boolean) {
    super()
    this.port = port
    this._slots = slots
    this._steering = steering
    this._resteer = resteer
    slots.forEach((slot, i) => this._watch(slot, i))
  }

  /** Workers still running. */
  get alive(): number {
    return this._slots.filter((s) => s.alive).length
  }

  /**
   * Each worker's counters and handler report, asked of the live workers now (the last known
   * figures for a worker that has gone).
   * @example
   * ```ts
   * const total = (await workers.stats()).reduce((n, w) => n + (w.stats?.datagramsReceived ?? 0), 0)
   * ```
   */
  stats(): Promise<WorkerReport[]> {
    return Promise.all(
      this._slots.map((slot, index) => {
        if (!slot.alive) return slot.last
        const id = this._nextAsk++
        const answer = new Promise<WorkerReport>((res) => this._asks.set(id, { index, res }))
        tell(slot.worker, { op: 'stats', id })
        return answer
      }),
    )
  }

  /**
   * Closes every worker's socket (after its handler's `close()`), waits for the threads to end
   * and resolves with their final counters. Idempotent.
   * @example
   * ```ts
   * const final = await workers.close()
   * ```
   */
  close(): Promise<WorkerReport[]> {
    this._closing ??= (async () => {
      await Promise.all(
        this._slots.map(async (slot) => {
          if (!slot.alive) return
          const exited = once(slot.worker, 'exit')
          tell(slot.worker, { op: 'close' })
          await exited
        }),
      )
      return this._slots.map((s) => s.last)
    })()
    return this._closing
  }

  /** @internal */
  _watch(slot: Slot, index: number): void {
    slot.worker.on('message', (m: FromWorker) => {
      if (m.op === 'stats' || m.op === 'closed') slot.last = { index, alive: m.op === 'stats', stats: m.stats, report: m.report }
      if (m.op === 'stats') {
        this._asks.get(m.id)?.res(slot.last)
        this._asks.delete(m.id)
      }
    })
    slot.worker.on('error', (err) => this.emit('workerError', err, index))
    slot.worker.on('exit', (code) => {
      slot.alive = false
      slot.last = { ...slot.last, alive: false }
      for (const [id, ask] of this._asks) {
        if (ask.index !== index) continue
        this._asks.delete(id)
        ask.res(slot.last)
      }
      if (this._closing) return
      this.emit('workerExit', index, code)
      const left = this._slots.filter((s) => s.alive)
      // The kernel has compacted the group (the last socket took the freed place): spread over
      // the sockets left, or indexes past them would fall back to the flow hash.
      if (this._resteer && this._steering !== 'hash' && left.length > 0) {
        tell(left[0].worker, { op: 'steer', mode: this._steering, groupSize: left.length })
      }
    })
  }
}

/**
 * Starts `options.workers` worker threads, each with its own socket bound to one port with
 * `reusePort: true` and the group's steering, and hands each socket to the handler module.
 * Workers start one after the other, so worker i is socket i of the group.
 *
 * @throws TypeError/RangeError naming a bad option (nothing is started); rejects with a
 * worker's error when one fails to bind or its handler throws while starting (the workers
 * already started are closed).
 * @example
 * ```ts
 * // handler.js: module.exports = (socket) => socket.onBatch((b) => ingest(b))
 * const workers = await runWorkers({ workers: 4, port: 8125, steering: 'random', handler: './handler.js' })
 * workers.on('workerError', (err, i) => console.error(`worker ${i}`, err))
 * setInterval(async () => console.log(await workers.stats()), 1000)
 * ```
 */
export async function runWorkers(options: WorkersOptions): Promise<Workers> {
  checkOptions(options)
  if (options === undefined) throw errors.invalidArgType('options', 'of type object', options)
  const n = options.workers
  checkInt(n, 'options.workers', 1, 1024)
  const h = options.handler
  if (!(h instanceof URL) && (typeof h !== 'string' || h === ''))
    throw errors.invalidArgType('options.handler', 'a module path or file URL', h)
  const handler = h instanceof URL ? h.href : isAbsolute(h) || h.startsWith('file:') ? h : resolve(h)
  let port = options.port === undefined ? 0 : portOf(options.port, 'options.port', true)
  if (options.address !== undefined) ipOf(options.address, 'options.address')
  const steering = options.steering ?? 'hash'
  const group = steeringOf(steering, steering === 'hash' ? undefined : n, 'options.steering', 'options.workers')
  checkOptions(options.bind, 'options.bind')
  const bind: BindOptions = {
    ...options.bind,
    address: options.address ?? options.bind?.address,
    reusePort: true,
    steering,
    groupSize: group.groupSize,
  }
  for (const k of ['port', 'reusePort', 'steering', 'groupSize', 'fd', 'signal'] as const) {
    if (options.bind?.[k] !== undefined) throw errors.invalidArgValue(`options.bind.${k}`, options.bind[k], 'is set by runWorkers')
  }
  normalize({ ...bind, port }) // every bind option checked here, before a thread starts
  const resteer = options.resteer ?? true
  if (typeof resteer !== 'boolean') throw errors.invalidArgType('options.resteer', 'of type boolean', resteer)

  const slots: Slot[] = []
  try {
    for (let index = 0; index < n; index++) {
      const data = { udpMmsgWorker: { index, workers: n, port, handler, bind, workerData: options.workerData } }
      const worker = new Worker(`require(${JSON.stringify(WORKER_ENTRY)}).workerMain()`, { eval: true, workerData: data })
      const slot: Slot = { worker, alive: true, last: { index, alive: true, stats: null } }
      slots.push(slot)
      const ready = await Promise.race([
        once(worker, 'message') as Promise<[FromWorker]>,
        once(worker, 'error').then(([err]) => Promise.reject(err)),
        once(worker, 'exit').then(([code]) =>
          Promise.reject(new Error(`udp-mmsg: worker ${index} exited with code ${code} while starting`)),
        ),
      ])
      if (ready[0].op === 'ready') port = ready[0].port
    }
  } catch (err) {
    await Promise.all(slots.map((s) => s.worker.terminate()))
    throw err
  }
  return new Workers(port, slots, steering, resteer)
}

/** @internal The worker side: bind, run the handler, answer the parent. */
export async function workerMain(): Promise<void> {
  const port = parentPort
  const d = (
    wd as { udpMmsgWorker?: { index: number; workers: number; port: number; handler: string; bind: BindOptions; workerData: unknown } }
  ).udpMmsgWorker
  if (!port || !d) throw new Error('udp-mmsg: workerMain runs only in a worker started by runWorkers')
  const socket = new UdpSocket({ ...d.bind, port: d.port })
  const mod = (await import(d.handler.startsWith('file:') ? d.handler : pathToFileURL(d.handler).href)) as { default?: unknown }
  const fn = (typeof mod.default === 'function' ? mod.default : mod) as unknown
  if (typeof fn !== 'function') throw errors.invalidArgType('options.handler', 'a module whose default export is a function', fn)
  const context: WorkerContext = { index: d.index, workers: d.workers, port: socket.localAddress().port, workerData: d.workerData }
  const hooks = ((await (fn as WorkerHandler)(socket, context)) ?? {}) as WorkerHooks
  port.on('message', async (m: ToWorker) => {
    if (m.op === 'stats') port.postMessage({ op: 'stats', id: m.id, stats: socket.stats(), report: hooks.report?.() } satisfies FromWorker)
    else if (m.op === 'steer') socket.setSteering(m.mode, m.groupSize)
    else if (m.op === 'close') {
      await hooks.close?.()
      socket.close()
      port.postMessage({ op: 'closed', stats: socket.stats(), report: hooks.report?.() } satisfies FromWorker)
      port.close()
    }
  })
  port.postMessage({ op: 'ready', port: context.port } satisfies FromWorker)
}
