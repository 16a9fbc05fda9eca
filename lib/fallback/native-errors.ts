// Errors shaped as the native layer throws them (src/error.rs): `UDP_MMSG_OS` with `errno`
// (positive), `syscall` and `detail`; `UDP_MMSG_ARG` with `argument`, `index`, `reason`;
// `UDP_MMSG_CLOSED`. lib/errors.ts `fromNative` turns them into the public errors, so the
// fallback's errors reach users exactly as the native ones do.

/** An OS error, as the native layer reports a failed system call. */
export function osError(errno: number, syscall: string, detail = ''): Error {
  const n = Math.abs(errno)
  return Object.assign(new Error(`${syscall} failed: errno ${n} ${detail}`), { code: 'UDP_MMSG_OS', errno: n, syscall, detail })
}

/** An argument the native layer refuses; `index` for an entry of a send's address table. */
export function argError(argument: string, reason: string, index?: number): Error {
  const message = index === undefined ? `${argument} ${reason}` : `${argument} ${index} ${reason}`
  return Object.assign(new Error(message), { code: 'UDP_MMSG_ARG', argument, index, reason })
}

/** Use after close(). */
export function closedError(): Error {
  return Object.assign(new Error('the socket is closed'), { code: 'UDP_MMSG_CLOSED' })
}

/**
 * A node:dgram error as a native one: an errno error (node:dgram's errno is negative) keeps
 * its errno and syscall (or `syscall` when `force`: the name the native layer reports, such as
 * `setsockopt` where node:dgram says `addMembership`); anything else is returned unchanged.
 */
export function fromDgram(err: unknown, syscall: string, force = false): unknown {
  const e = err as { errno?: unknown; syscall?: unknown; info?: { errno?: unknown } } | null
  if (e === null || typeof e !== 'object') return err
  const errno = typeof e.errno === 'number' ? e.errno : e.info && typeof e.info.errno === 'number' ? e.info.errno : undefined
  if (errno === undefined || errno === 0) return err
  return osError(errno, !force && typeof e.syscall === 'string' ? e.syscall : syscall)
}
