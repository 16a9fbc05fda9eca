// Test bed in network namespaces. Each agent (fixtures/net-agent.js) is a node process started
// with `unshare -n`, so it lives in a namespace of its own that nothing else shares: the
// namespace (and every veth end inside it) disappears when the agent exits, also when a test
// fails or the runner is killed (the agent exits when its stdin closes). Interfaces are made
// from inside an agent's namespace (`nsenter --net=/proc/<pid>/ns/net`), so the host's
// namespace is never touched, and only addresses inside these namespaces are used.
//
// Where namespaces cannot be made (not root, no unshare/ip/nsenter), or a test's qdisc or tool
// is missing (netem, HTB/u32, nftables), `netTest` registers the test as skipped with the reason
// in its title and warns on the console.
import test, { type ExecutionContext } from 'ava'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import * as readline from 'node:readline'

const AGENT = path.join(__dirname, 'fixtures', 'net-agent.js')

/**
 * Absolute path of a system tool. npm puts node_modules/.bin first on PATH, where a package's
 * `nft` (@vercel/nft) would shadow nftables' `nft`: those directories are skipped.
 */
export function tool(name: string): string {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '' && !d.includes('node_modules'))
  for (const d of [...dirs, '/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
    const p = path.join(d, name)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {
      // not here
    }
  }
  // Never the bare name: unshare and nsenter would look it up in PATH, where npm puts
  // node_modules/.bin first, and a package's `nft` there (@vercel/nft) is not nftables.
  return path.join('/usr/sbin', name)
}

/** Runs a command synchronously (for the probes); true when it exits 0. */
function works(cmd: string, args: string[]): boolean {
  const r = spawnSync(tool(cmd), args, { stdio: 'ignore', timeout: 20_000 })
  return r.status === 0
}

/** Like `works`, with `lines` on the command's stdin. */
function worksWith(cmd: string, args: string[], lines: string[]): boolean {
  const r = spawnSync(tool(cmd), args, { input: lines.join('\n') + '\n', stdio: ['pipe', 'ignore', 'ignore'], timeout: 20_000 })
  return r.status === 0
}

function probe(): string | null {
  if (process.platform !== 'linux') return 'network namespaces are Linux only'
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root for network namespaces'
  for (const [cmd, args] of [
    ['ip', ['-V']],
    ['nsenter', ['--version']],
    ['taskset', ['-V']],
  ] as const) {
    if (!works(cmd, [...args])) return `${cmd} is not available`
  }
  if (!works('unshare', ['-n', tool('ip'), 'link', 'set', 'lo', 'up'])) return 'unshare -n fails here'
  return null
}

/** Why the bed is unavailable, or null when it works. */
export const unavailable: string | null = probe()

/** Why netem (loss, reorder) is unavailable, or null. */
export const noNetem: string | null =
  unavailable ??
  (works('unshare', ['-n', tool('tc'), 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'])
    ? null
    : 'the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM)')

/**
 * Why HTB with u32 filters (reordering where netem is missing) is unavailable, or null: the
 * probe builds, in a namespace of its own, the same shape the reordering test uses (an HTB root,
 * two classes with pfifo leaves, a u32 filter reading a payload word).
 */
export const noHtb: string | null =
  unavailable ??
  (!works('tc', ['-V'])
    ? 'tc (iproute2) is not installed'
    : worksWith('unshare', ['-n', tool('tc'), '-batch', '-'], [
        'qdisc add dev lo root handle 1: htb default 10',
        'class add dev lo parent 1: classid 1:10 htb rate 1gbit',
        'class add dev lo parent 1: classid 1:20 htb rate 400kbit burst 1600',
        'qdisc add dev lo parent 1:20 handle 20: pfifo limit 100',
        'filter add dev lo parent 1: protocol ip prio 1 u32 match u8 17 0xff at 9 match u32 1000 0xffffffff at 32 flowid 1:20',
      ])
      ? null
      : 'the kernel has no HTB qdisc or u32 classifier (CONFIG_NET_SCH_HTB, CONFIG_NET_CLS_U32)')

/** Why nftables (random drop) is unavailable, or null. */
export const noNft: string | null =
  unavailable ?? (works('unshare', ['-n', tool('nft'), 'add', 'table', 'inet', 'probe']) ? null : 'nftables (nft) is not installed')

const warned = new Set<string>()

/**
 * Registers a test that needs the bed (and optionally netem or nft): a plain ava test when
 * available, otherwise a skipped one whose title says why.
 */
export function netTest(title: string, fn: (t: ExecutionContext) => Promise<void>, needs: Array<string | null> = [unavailable]): void {
  const reason = needs.find((r) => r !== null) ?? null
  if (reason === null) {
    test(title, fn)
    return
  }
  if (!warned.has(reason)) {
    warned.add(reason)
    console.warn(`udp-mmsg network-namespace tests skipped: ${reason}`)
  }
  test.skip(`${title} [skipped: ${reason}]`, () => {})
}

/** Runs a command to completion (waiting for 'close'); rejects with its stderr on failure. */
export function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(tool(cmd), args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout!.on('data', (d) => (out += d))
    p.stderr!.on('data', (d) => (err += d))
    p.on('error', reject)
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`))))
  })
}

/** One agent process in a network namespace of its own. */
export class Agent {
  private next = 1
  private readonly waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>()
  private stderr = ''
  readonly closed: Promise<void>
  private constructor(
    readonly proc: ChildProcess,
    readonly pid: number,
    lines: readline.Interface,
  ) {
    lines.on('line', (line) => {
      let msg: any
      try {
        msg = JSON.parse(line)
      } catch {
        return
      }
      const w = this.waiting.get(msg.id)
      if (w === undefined) return
      this.waiting.delete(msg.id)
      if (msg.ok) w.resolve(msg.result)
      else w.reject(Object.assign(new Error(`agent: ${msg.error.message}`), msg.error))
    })
    proc.stderr!.on('data', (d) => (this.stderr += d))
    this.closed = new Promise((resolve) => {
      proc.on('close', () => {
        for (const w of this.waiting.values()) w.reject(new Error(`agent exited; stderr: ${this.stderr}`))
        this.waiting.clear()
        resolve()
      })
    })
  }

  /**
   * Starts an agent in a new namespace with `lo` up (at `loMtu` when given); `pinned` binds
   * the whole process to one CPU (the first this process may use), so everything it sends is
   * handed to the receiving side from one CPU, in order. The agent is ended at teardown.
   */
  static async start(t: ExecutionContext, opts: { pinned?: boolean; loMtu?: number } = {}): Promise<Agent> {
    const pin = opts.pinned ? [tool('taskset'), '-c', String(firstAllowedCpu())] : []
    const proc = spawn(tool('unshare'), ['-n', ...pin, process.execPath, AGENT], { stdio: ['pipe', 'pipe', 'pipe'] })
    const lines = readline.createInterface({ input: proc.stdout! })
    const ready = await new Promise<any>((resolve, reject) => {
      let err = ''
      proc.stderr!.on('data', (d) => (err += d))
      lines.once('line', (l) => {
        try {
          resolve(JSON.parse(l))
        } catch (e) {
          reject(e)
        }
      })
      proc.once('close', (code) => reject(new Error(`agent exited (${code}) before it was ready: ${err}`)))
    })
    const agent = new Agent(proc, ready.pid, lines)
    t.teardown(() => agent.stop())
    await agent.ns('ip', 'link', 'set', 'lo', 'up', ...(opts.loMtu === undefined ? [] : ['mtu', String(opts.loMtu)]))
    return agent
  }

  /** Runs a command (ip, tc, nft, sh) inside this agent's namespace. */
  ns(cmd: string, ...args: string[]): Promise<string> {
    return run('nsenter', [`--net=/proc/${this.pid}/ns/net`, tool(cmd), ...args])
  }

  /** Sends one command to the agent and resolves with its result. */
  call(op: string, args: Record<string, unknown> = {}): Promise<any> {
    const id = this.next++
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      this.proc.stdin!.write(JSON.stringify({ id, op, ...args }) + '\n')
    })
  }

  /** Ends the agent: closes its stdin (it closes its sockets and exits), and waits for 'close'. */
  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.stdin!.end()
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000)
      await this.closed
      clearTimeout(timer)
    }
  }
}

/** The lowest CPU this process may run on (from /proc/self/status), 0 when unknown. */
function firstAllowedCpu(): number {
  try {
    const m = /^Cpus_allowed_list:\s*(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

/** Index of interface `name` inside the agent's namespace. */
export async function ifindex(a: Agent, name: string): Promise<number> {
  const info = JSON.parse(await a.ns('ip', '-j', 'link', 'show', 'dev', name))
  return info[0].ifindex
}

/**
 * Joins two agents with a veth pair at `mtu` (default 1500): `nameA` with `addrA` (CIDR) in
 * `a`, `nameB` with `addrB` in `b`, and optionally IPv6 addresses `addr6A`/`addr6B` (usable at
 * once: no duplicate address detection). Fixed MAC addresses and permanent neighbour entries
 * mean no ARP or neighbour discovery packets share the link with the test's traffic.
 */
export async function veth(
  a: Agent,
  b: Agent,
  link: { nameA: string; addrA: string; nameB: string; addrB: string; addr6A?: string; addr6B?: string; mtu?: number; n: number },
): Promise<void> {
  const mtu = String(link.mtu ?? 1500)
  const hex = (link.n & 0xff).toString(16).padStart(2, '0')
  const macA = `02:00:00:00:${hex}:0a`
  const macB = `02:00:00:00:${hex}:0b`
  await a.ns('ip', 'link', 'add', link.nameA, 'address', macA, 'mtu', mtu, 'type', 'veth', 'peer', 'name', link.nameB, 'address', macB, 'mtu', mtu, 'netns', String(b.pid))
  await a.ns('ip', 'addr', 'add', link.addrA, 'dev', link.nameA)
  await b.ns('ip', 'addr', 'add', link.addrB, 'dev', link.nameB)
  await a.ns('ip', 'link', 'set', link.nameA, 'up')
  await b.ns('ip', 'link', 'set', link.nameB, 'up')
  const ipA = link.addrA.split('/')[0]
  const ipB = link.addrB.split('/')[0]
  await a.ns('ip', 'neigh', 'replace', ipB, 'lladdr', macB, 'dev', link.nameA, 'nud', 'permanent')
  await b.ns('ip', 'neigh', 'replace', ipA, 'lladdr', macA, 'dev', link.nameB, 'nud', 'permanent')
  if (link.addr6A !== undefined && link.addr6B !== undefined) {
    await a.ns('ip', '-6', 'addr', 'add', link.addr6A, 'dev', link.nameA, 'nodad')
    await b.ns('ip', '-6', 'addr', 'add', link.addr6B, 'dev', link.nameB, 'nodad')
    const ip6A = link.addr6A.split('/')[0]
    const ip6B = link.addr6B.split('/')[0]
    await a.ns('ip', '-6', 'neigh', 'replace', ip6B, 'lladdr', macB, 'dev', link.nameA, 'nud', 'permanent')
    await b.ns('ip', '-6', 'neigh', 'replace', ip6A, 'lladdr', macA, 'dev', link.nameB, 'nud', 'permanent')
  }
}
