// The node:dgram facade's send pacing: the first PACE_BURST sends of a burst leave at once, the
// rest at `sendRate` datagrams per second, so a burst reaches its receiver no faster than
// node:dgram's would (docs/migrating-from-dgram.md, "Send pacing"). A token bucket per socket,
// refilled by elapsed time, and one timer while sends are held back. dgram-send.ts decides
// what to send; this file decides how many may go now.

import { dgram as E } from './errors.js'
import { kState } from './dgram-state.js'
import type { Facade, State } from './dgram-state.js'

/** Datagrams a facade socket sends at once before pacing applies: what a request/response
 * server answers in one turn, or a small metrics flush, leaves without delay. */
export const PACE_BURST = 64

/** Datagrams per second a facade socket's sends are paced to past a burst, unless
 * `sendRate` says otherwise. node:dgram pays a system call and several JS and C++ steps per
 * datagram, which paces its bursts to about this on the 2-core VM this is measured on (a
 * `hot-shots` burst of 1 500 metrics reached a node:dgram `statsd` daemon whole; sent as one
 * batch from the facade, half of it overflowed the daemon's receive buffer). Unpaced, a burst
 * leaves in ~1 ms, faster than such a receiver reads. */
export const DEFAULT_SEND_RATE = 64_000

/**
 * The `sendRate` createSocket() option: datagrams per second (Infinity: no pacing).
 * @throws TypeError / RangeError naming `options.sendRate`.
 */
export function sendRate(options: Record<string, unknown>): number {
  const v = options.sendRate
  if (v === undefined) return DEFAULT_SEND_RATE
  if (typeof v !== 'number') throw E.invalidArgType('options.sendRate', 'of type number', v)
  if (!(v > 0)) throw E.outOfRange('options.sendRate', '> 0 (or Infinity)', v)
  return v
}

/** Datagrams that may go out now (Infinity when not paced); refills the allowance. */
export function allowance(state: State): number {
  if (state.paceRate === Infinity) return Infinity
  const now = performance.now()
  state.paceTokens = Math.min(PACE_BURST, state.paceTokens + (now - state.paceAt) * state.paceRate)
  state.paceAt = now
  return Math.floor(state.paceTokens)
}

/** Calls `resume(self)` once the allowance has room again (one timer at a time). */
export function armPace(self: Facade, resume: (self: Facade) => void): void {
  const state = self[kState]
  if (state.paceTimer !== null) return
  const ms = Math.max(1, Math.ceil((1 - state.paceTokens) / state.paceRate))
  state.paceTimer = setTimeout(() => {
    state.paceTimer = null
    resume(self)
  }, ms)
}

/** Pacing holds back the ready sends at the head of the queue: they go out when the timer
 * fires (`resume`) (or at once on close/connect/disconnect, as node:dgram would have sent them by then). */
export function holdBack(self: Facade, resume: (self: Facade) => void): void {
  const sends = self[kState].sends
  // Held sends are a prefix of the queue: find its end (a long burst is held back many times,
  // so no walk over what is held already), then mark the ready sends after it.
  let lo = 0
  let hi = sends.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sends[mid].held) lo = mid + 1
    else hi = mid
  }
  for (let i = lo; i < sends.length && sends[i].ready; i++) sends[i].held = true
  armPace(self, resume)
}

/** Cancels the pacing timer (nothing is held back any more, or the socket closed). */
export function stopPace(state: State): void {
  if (state.paceTimer !== null) clearTimeout(state.paceTimer)
  state.paceTimer = null
}
