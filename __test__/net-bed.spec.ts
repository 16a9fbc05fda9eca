// Sends over real paths in network namespaces (see netns.ts): loopback at MTU 1500, veth
// pairs at MTU 1500 with random loss (nftables, or netem where the kernel has it) and
// reordering, and a host with two interfaces for pktinfo and per-datagram sources. Reordering
// is tested with netem where the kernel has it, and with HTB + u32 (which kernels without netem,
// like CI's, do have): a u32 filter steers a chosen subset of the flow into a slow HTB class, so
// later datagrams overtake it, with GSO runs and with a plain batch; the test checks that
// reordering really happened. Every datagram's bytes are checked against what was sent
// (fixtures/net-agent.js).
import type { ExecutionContext } from 'ava'
import { Agent, netTest, noHtb, noNetem, noNft, unavailable, veth, ifindex } from './netns.js'

/** What a sender agent is asked to send: sequence number, size, destination, extras. */
interface Spec {
  seq: number
  size: number
  address?: string
  port?: number
  sourceAddress?: string
  tos?: number
}

/** One datagram as the receiving agent recorded it. */
interface Got {
  seq: number
  size: number
  ok: boolean
  truncated: boolean
  address: string
  port: number
  local?: string
  ifindex?: number
}

const BIG = 32 << 20

/** Appends `n` datagrams of `size` bytes with fresh sequence numbers (sizes under 8 are identified by size). */
function adder(out: Spec[], address: string, port: number) {
  let seq = 0
  return (size: number, n = 1, extra: Partial<Spec> = {}) => {
    for (let k = 0; k < n; k++) out.push({ seq: size < 8 ? -size : seq++, size, address, port, ...extra })
  }
}

/** Checks that `got` holds each datagram of `sent` at most once (all of them when `complete`), intact. */
function checkReceived(t: ExecutionContext, sent: Spec[], got: Got[], complete: boolean): void {
  const want = new Map(sent.map((m) => [m.seq, m.size]))
  const seen = new Set<number>()
  const problems: string[] = []
  for (const g of got) {
    if (!g.ok) problems.push(`seq ${g.seq} (${g.size} B): bytes differ from what was sent`)
    if (g.truncated) problems.push(`seq ${g.seq}: truncated`)
    if (want.get(g.seq) !== g.size) problems.push(`seq ${g.seq}: ${g.size} B was never sent`)
    if (seen.has(g.seq)) problems.push(`seq ${g.seq}: duplicate`)
    seen.add(g.seq)
  }
  t.deepEqual(problems.slice(0, 10), [], 'every datagram arrives intact, uncut, once, and was sent')
  if (complete) {
    const missing = sent.filter((m) => !seen.has(m.seq)).map((m) => `${m.seq}:${m.size}`)
    t.deepEqual(missing.slice(0, 20), [], 'every datagram arrives')
  }
}

netTest('gso auto at MTU 1500 sends every size node:dgram sends, mixed and in runs over and under the MTU, intact; GSO stays in use', async (t) => {
  const a = await Agent.start(t, { loMtu: 1500 })
  const rx = await a.call('bind', { name: 'rx', options: { address: '127.0.0.1', maxDatagramSize: 65535, recvBufferSize: BIG, forceBufferSize: true } })
  await a.call('collect', { name: 'rx' })
  const tx = await a.call('bind', { name: 'tx', options: { address: '127.0.0.1', sendBufferSize: BIG, forceBufferSize: true } })
  if (!tx.caps.gsoSupported) t.log('this kernel has no UDP GSO: the test checks plain sends only')
  const sent: Spec[] = []
  const add = adder(sent, '127.0.0.1', rx.port)
  add(1000, 64) // a run that fits the MTU
  add(1472, 40) // exactly the largest IPv4 payload at MTU 1500
  add(1473, 16) // one byte over
  add(2000, 8)
  add(9000, 4)
  for (const size of [1, 2, 7, 8, 9, 100, 1471, 1472, 1473, 1500, 2000, 3000, 8972, 9000, 16384, 32768, 65000, 65507]) add(size)
  add(200)
  add(1472)
  add(1500)
  add(3000)
  add(1200, 30)
  add(500) // a shorter last segment ends the run
  const r = await a.call('send', { name: 'tx', messages: sent })
  t.is(r.error, null)
  t.is(r.sent, sent.length, 'every datagram is handed to the kernel')
  const c = await a.call('collected', { name: 'rx', count: sent.length })
  t.true(c.reached, `received ${c.got.length} of ${sent.length}`)
  checkReceived(t, sent, c.got, true)
  t.is(c.stats.kernelDrops, 0)
  if (tx.caps.gsoSupported) {
    t.true(r.stats.gsoSends > 0, 'runs within the MTU still go as GSO super-datagrams')
    t.true(r.caps.gso, 'GSO stays on for the socket')
  }
  // node:dgram, the reference: every one of these sizes goes out there too.
  await a.call('dgramBind', { name: 'ref', type: 'udp4', address: '127.0.0.1' })
  const sink = await a.call('bind', { name: 'sink', options: { address: '127.0.0.1' } })
  const sizes = [...new Set(sent.map((m) => m.size))].map((size, k) => ({ seq: 1000 + k, size, address: '127.0.0.1', port: sink.port }))
  t.deepEqual(await a.call('dgramSend', { name: 'ref', messages: sizes }), sizes.map(() => null))
})

netTest('gso auto over udp6 at MTU 1500: runs over and under the IPv6 MTU all arrive intact', async (t) => {
  const a = await Agent.start(t, { loMtu: 1500 })
  const rx = await a.call('bind', { name: 'rx', options: { address: '::1', maxDatagramSize: 65535, recvBufferSize: BIG, forceBufferSize: true } })
  await a.call('collect', { name: 'rx' })
  const tx = await a.call('bind', { name: 'tx', options: { address: '::1', sendBufferSize: BIG, forceBufferSize: true } })
  const sent: Spec[] = []
  const add = adder(sent, '::1', rx.port)
  add(1452, 20) // the largest IPv6 payload at MTU 1500
  add(1453, 10)
  add(2000, 8)
  add(9000, 4)
  add(65000)
  add(800, 30)
  const r = await a.call('send', { name: 'tx', messages: sent })
  t.is(r.error, null)
  t.is(r.sent, sent.length)
  const c = await a.call('collected', { name: 'rx', count: sent.length })
  t.true(c.reached, `received ${c.got.length} of ${sent.length}`)
  checkReceived(t, sent, c.got, true)
  if (tx.caps.gsoSupported) {
    t.true(r.stats.gsoSends > 0)
    t.true(r.caps.gso)
  }
})

netTest('a GSO run refused over the MTU is resent plainly in the same call: trySendBatch returns the full count; > 65507 B still fails with EMSGSIZE and the right count', async (t) => {
  const a = await Agent.start(t, { loMtu: 1500 })
  const rx = await a.call('bind', { name: 'rx', options: { address: '127.0.0.1', maxDatagramSize: 4096, recvBufferSize: BIG, forceBufferSize: true } })
  await a.call('collect', { name: 'rx' })
  const tx = await a.call('bind', { name: 'tx', options: { address: '127.0.0.1', sendBufferSize: BIG, forceBufferSize: true } })
  if (!tx.caps.gsoSupported) {
    t.log('no UDP GSO on this kernel: nothing to refuse')
    t.pass()
    return
  }
  const sent: Spec[] = []
  const add = adder(sent, '127.0.0.1', rx.port)
  add(2000, 40)
  // The first send of this socket: the kernel refuses the 2000-byte GSO runs (EMSGSIZE).
  const r = await a.call('send', { name: 'tx', messages: sent, mode: 'try' })
  t.is(r.error, null)
  t.is(r.sent, 40, 'all 40 went in this one synchronous call')
  t.is(r.stats.gsoFallbacks, 1, 'one refusal, after which the ceiling keeps larger segments plain')
  t.true(r.caps.gso, 'an MTU refusal does not turn GSO off')
  const more: Spec[] = []
  let seq = 100
  for (let k = 0; k < 40; k++) more.push({ seq: seq++, size: 1000, address: '127.0.0.1', port: rx.port })
  for (let k = 0; k < 10; k++) more.push({ seq: seq++, size: 3000, address: '127.0.0.1', port: rx.port })
  const r2 = await a.call('send', { name: 'tx', messages: more, mode: 'try' })
  t.is(r2.sent, 50)
  t.true(r2.stats.gsoSends > r.stats.gsoSends, 'runs within the MTU go as GSO again')
  t.is(r2.stats.gsoFallbacks, 1, 'no second refusal: 3000-byte runs skip GSO')
  // The ceiling is the path's (1472 B), not just under the refused size: 1500 B skips GSO too.
  const between = Array.from({ length: 10 }, (_, k) => ({ seq: 150 + k, size: 1500, address: '127.0.0.1', port: rx.port }))
  const r3 = await a.call('send', { name: 'tx', messages: between, mode: 'try' })
  t.is(r3.sent, 10)
  t.is(r3.stats.gsoFallbacks, 1, 'no refusal for segments between the MTU and the refused size')
  // A connected socket learns the same ceiling from its peer's path.
  const conn = await a.call('bind', { name: 'conn', options: { address: '127.0.0.1', sendBufferSize: BIG, forceBufferSize: true, connect: { address: '127.0.0.1', port: rx.port } } })
  t.true(conn.caps.gso)
  const viaConn = (seq: number, size: number) => Array.from({ length: 8 }, (_, k) => ({ seq: seq + k, size }))
  const r4 = await a.call('send', { name: 'conn', messages: viaConn(300, 3000), mode: 'try' })
  t.is(r4.sent, 8)
  t.is(r4.stats.gsoFallbacks, 1)
  const r5 = await a.call('send', { name: 'conn', messages: [...viaConn(310, 2000), ...viaConn(320, 1472)], mode: 'try' })
  t.is(r5.sent, 16)
  t.is(r5.stats.gsoFallbacks, 1, '2000 B runs skip GSO without a second refusal')
  t.true(r5.stats.gsoSends > 0, '1472 B runs still go as GSO')
  const all = [...sent, ...more, ...between, ...viaConn(300, 3000), ...viaConn(310, 2000), ...viaConn(320, 1472)]
  const c = await a.call('collected', { name: 'rx', count: all.length })
  checkReceived(t, all, c.got, true)
  // An oversized datagram after a refused run: the run goes, the datagram fails as before.
  const fresh = await a.call('bind', { name: 'fresh', options: { address: '127.0.0.1', sendBufferSize: BIG, forceBufferSize: true } })
  t.true(fresh.caps.gso)
  const bad = [0, 1, 2].map((k) => ({ seq: 200 + k, size: 2000, address: '127.0.0.1', port: rx.port }))
  bad.push({ seq: 203, size: 65508, address: '127.0.0.1', port: rx.port })
  const r6 = await a.call('send', { name: 'fresh', messages: bad })
  t.is(r6.error?.code, 'EMSGSIZE')
  t.is(r6.error?.sent, 3)
  t.is(r6.error?.index, 3)
  t.true(r6.caps.gso)
})

/** One round of a transfer: appends datagrams with `add` (see `adder`). */
type Round = (add: ReturnType<typeof adder>) => void

/** The default round: mixed sizes, runs that go as GSO super-datagrams and sizes over the MTU. */
const mixedRound: Round = (add) => {
  add(1200, 40)
  add(1472, 20)
  add(300, 10)
  add(2000, 5)
}

/**
 * Sender agent S (pinned to one CPU) and receiver agent R joined by a veth pair at MTU 1500.
 * `impair` sets up loss or reordering; the transfer is 20 rounds (`shape.round`, by default of
 * mixed sizes, GSO runs included) from a socket with GSO on (default) or off (`shape.gso`), to
 * a receiver with a large buffer and `shape.rx` options (by default maxDatagramSize 4096).
 * Returns what was sent and what arrived.
 */
async function transfer(
  t: ExecutionContext,
  impair: (s: Agent, r: Agent, txPort: number) => Promise<void>,
  fence: 'one' | 'many' | 'none',
  shape: { gso?: boolean; round?: Round; rx?: Record<string, unknown> } = {},
) {
  const s = await Agent.start(t, { pinned: true })
  const r = await Agent.start(t)
  await veth(s, r, { nameA: 'tx0', addrA: '10.77.0.1/24', nameB: 'rx0', addrB: '10.77.0.2/24', n: 1 })
  const rx = await r.call('bind', { name: 'rx', options: { address: '10.77.0.2', recvBufferSize: BIG, forceBufferSize: true, ...(shape.rx ?? { maxDatagramSize: 4096 }) } })
  await r.call('collect', { name: 'rx' })
  const gso = shape.gso ?? true
  const tx = await s.call('bind', { name: 'tx', options: { address: '10.77.0.1', sendBufferSize: BIG, forceBufferSize: true, ...(gso ? {} : { gso: false }) } })
  await s.call('bind', { name: 'fence', options: { address: '10.77.0.1' } })
  await impair(s, r, tx.port)
  const sent: Spec[] = []
  const add = adder(sent, '10.77.0.2', rx.port)
  let reported = 0
  let last: any
  const fill = shape.round ?? mixedRound
  for (let round = 0; round < 20; round++) {
    const from = sent.length
    fill(add)
    last = await s.call('send', { name: 'tx', messages: sent.slice(from) })
    t.is(last.error, null)
    reported += last.sent
  }
  t.is(reported, sent.length, 'the sender reports every datagram sent')
  if (fence !== 'none') {
    for (let k = 0; k < (fence === 'many' ? 50 : 1); k++) await s.call('fence', { name: 'fence', address: '10.77.0.2', port: rx.port })
  }
  const c = await r.call('collected', fence === 'none' ? { name: 'rx', count: sent.length, timeoutMs: 30_000 } : { name: 'rx', fence: true, timeoutMs: 30_000 })
  t.true(c.reached, fence === 'none' ? `received ${c.got.length} of ${sent.length}` : 'the end marker arrived')
  if (tx.caps.gsoSupported) {
    if (gso) t.true(last.stats.gsoSends > 0, 'runs went as GSO super-datagrams')
    else t.is(last.stats.gsoSends, 0, 'with gso: false every datagram went on its own')
  }
  return { s, r, sent, got: c.got as Got[], gso: gso && tx.caps.gsoSupported }
}

netTest('a clean veth at MTU 1500: every datagram of mixed sizes and GSO runs arrives, intact and once', async (t) => {
  const { sent, got } = await transfer(t, async () => {}, 'none')
  checkReceived(t, sent, got, true)
})

netTest(
  '20% random loss (nftables) over a veth at MTU 1500: the receiver gets a subset of what was sent, intact, no duplicates, nothing cut',
  async (t) => {
    const { r, sent, got } = await transfer(
      t,
      async (_s, r, txPort) => {
        // Drop at the receiver's side: a drop on the sender's output path would fail the send.
        await r.ns('nft', 'add', 'table', 'inet', 'loss')
        await r.ns('nft', 'add', 'chain', 'inet', 'loss', 'pre', '{ type filter hook prerouting priority 0 ; }')
        await r.ns('nft', 'add', 'rule', 'inet', 'loss', 'pre', 'udp', 'sport', String(txPort), 'numgen', 'random', 'mod', '5', '==', '0', 'counter', 'drop')
      },
      'one',
    )
    checkReceived(t, sent, got, false)
    const rules = await r.ns('nft', 'list', 'chain', 'inet', 'loss', 'pre')
    const dropped = /counter packets (\d+)/.exec(rules)
    t.true(dropped !== null && Number(dropped[1]) > 0, `packets were dropped: ${rules}`)
    t.true(got.length < sent.length, `${sent.length - got.length} of ${sent.length} lost`)
    t.true(got.length > 0)
  },
  [unavailable, noNft],
)

netTest(
  '20% random loss (netem) over a veth at MTU 1500: the receiver gets a subset of what was sent, intact, no duplicates, nothing cut',
  async (t) => {
    const { sent, got } = await transfer(
      t,
      async (s) => {
        await s.ns('tc', 'qdisc', 'add', 'dev', 'tx0', 'root', 'netem', 'loss', '20%', 'limit', '100000')
      },
      'many',
    )
    checkReceived(t, sent, got, false)
    t.true(got.length < sent.length, `${sent.length - got.length} of ${sent.length} lost`)
  },
  [unavailable, noNetem],
)

netTest(
  'reordering (netem) over a veth at MTU 1500: every datagram arrives, in some order, intact and once',
  async (t) => {
    const { sent, got } = await transfer(
      t,
      async (s) => {
        await s.ns('tc', 'qdisc', 'add', 'dev', 'tx0', 'root', 'netem', 'delay', '5ms', 'reorder', '25%', '50%', 'limit', '100000')
      },
      'none',
    )
    checkReceived(t, sent, got, true)
  },
  [unavailable, noNetem],
)

/** Size of the datagrams the u32 filter steers into the slow class; no other datagram of the flow has it. */
const SLOW_SIZE = 1000

/**
 * A round for the HTB reordering: groups of SLOW_SIZE datagrams among runs of other sizes. Each
 * group follows a smaller datagram and is followed by a larger one (or ends the batch), so with
 * GSO it starts a super-datagram of its own (a shorter datagram may only end a run) that nothing
 * else joins: the slow class gets exactly the SLOW_SIZE datagrams, one skb per group with GSO,
 * one per datagram without.
 */
const reorderRound: Round = (add) => {
  add(1200, 12)
  add(300, 3)
  add(SLOW_SIZE, 4)
  add(2000, 2) // over the MTU: plain, in two IP fragments
  add(1472, 10)
  add(100, 3)
  add(SLOW_SIZE, 1)
  add(1400, 8)
  add(500, 4)
  add(SLOW_SIZE, 2)
}

/**
 * Reordering without netem: an HTB root on the sender's veth with a fast default class and a slow
 * class (500 kbit, a 1600-byte burst), and a u32 filter that steers this flow's datagrams whose
 * payload says they are SLOW_SIZE bytes long (the size the agent writes at payload bytes 4-7, IP
 * offset 32; first fragments only) into the slow class. The qdisc sees a GSO super-datagram as
 * one packet (segmentation happens after it), so with GSO the unit held back is the run; the
 * round is built so that the SLOW_SIZE datagrams form runs of their own. Everything else overtakes
 * them: they arrive after datagrams with higher sequence numbers. The receiver has the default
 * options (maxDatagramSize 2048) but a large receive buffer, so no datagram may be lost or cut.
 */
for (const gso of [false, true]) {
  netTest(
    `reordering (HTB + u32) over a veth at MTU 1500, ${gso ? 'GSO runs (gso: auto)' : 'a plain batch (gso: false)'}: every datagram arrives, some after later ones, intact and once`,
    async (t) => {
      const { s, sent, got, gso: usedGso } = await transfer(
        t,
        async (sender, _r, txPort) => {
          const tc = (...args: string[]) => sender.ns('tc', ...args)
          await tc('qdisc', 'add', 'dev', 'tx0', 'root', 'handle', '1:', 'htb', 'default', '10')
          await tc('class', 'add', 'dev', 'tx0', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '1gbit', 'ceil', '1gbit', 'burst', '256k', 'cburst', '256k')
          await tc('class', 'add', 'dev', 'tx0', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '500kbit', 'ceil', '500kbit', 'burst', '1600', 'cburst', '1600')
          // Leaves with room for the whole transfer (the default pfifo takes the device's txqueuelen).
          await tc('qdisc', 'add', 'dev', 'tx0', 'parent', '1:10', 'handle', '10:', 'pfifo', 'limit', '10000')
          await tc('qdisc', 'add', 'dev', 'tx0', 'parent', '1:20', 'handle', '20:', 'pfifo', 'limit', '10000')
          // IPv4 without options, UDP, not a later fragment, from the test's socket, SLOW_SIZE in the payload header.
          await tc(
            'filter', 'add', 'dev', 'tx0', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32',
            'match', 'u8', '0x45', '0xff', 'at', '0',
            'match', 'u8', '17', '0xff', 'at', '9',
            'match', 'u16', '0', '0x1fff', 'at', '6',
            'match', 'u16', String(txPort), '0xffff', 'at', '20',
            'match', 'u32', String(SLOW_SIZE), '0xffffffff', 'at', '32',
            'flowid', '1:20',
          )
        },
        'none',
        { gso, round: reorderRound, rx: {} },
      )
      checkReceived(t, sent, got, true)
      // The slow class carried exactly the SLOW_SIZE datagrams (HTB counts a GSO packet's segments).
      const classes = await s.ns('tc', '-s', 'class', 'show', 'dev', 'tx0')
      const slow = /class htb 1:20 .*\n\s*Sent (\d+) bytes (\d+) pkt/.exec(classes)
      const marked = sent.filter((m) => m.size === SLOW_SIZE).length
      t.is(slow === null ? null : Number(slow[2]), marked, `the slow class carried the ${SLOW_SIZE}-byte datagrams: ${classes}`)
      // Late: arrived after a datagram with a higher sequence number.
      let highest = -1
      let furthest = 0
      const late: Got[] = []
      for (const g of got) {
        if (g.seq < highest) {
          late.push(g)
          furthest = Math.max(furthest, highest - g.seq)
        }
        highest = Math.max(highest, g.seq)
      }
      const lateMarked = late.filter((g) => g.size === SLOW_SIZE).length
      t.log(`${usedGso ? 'GSO' : 'plain'}: ${late.length} of ${got.length} arrived late (${lateMarked} of them ${SLOW_SIZE} B, of ${marked} held back); furthest overtaken by ${furthest} sequence numbers`)
      t.true(late.length > 0, 'reordering happened: some datagram arrived after one with a higher sequence number')
      t.true(lateMarked > 0, 'datagrams held back in the slow class were overtaken')
    },
    [unavailable, noHtb],
  )
}

netTest('two interfaces: pktinfo reports the local address and interface of each datagram, and a per-datagram sourceAddress picks the source', async (t) => {
  const h = await Agent.start(t)
  const p = await Agent.start(t)
  // Reverse-path filtering would drop a reply whose source belongs to the other link.
  for (const a of [h, p]) await a.ns('sh', '-c', 'for f in all default; do echo 0 > /proc/sys/net/ipv4/conf/$f/rp_filter; done')
  await veth(p, h, { nameA: 'p1', addrA: '10.78.1.1/24', nameB: 'h1', addrB: '10.78.1.2/24', n: 2 })
  await veth(p, h, { nameA: 'p2', addrA: '10.78.2.1/24', nameB: 'h2', addrB: '10.78.2.2/24', n: 3 })
  const h1 = await ifindex(h, 'h1')
  const h2 = await ifindex(h, 'h2')
  const p1 = await ifindex(p, 'p1')
  t.not(h1, h2)
  const srv = await h.call('bind', { name: 'srv', options: { address: '0.0.0.0', pktinfo: true } })
  await h.call('collect', { name: 'srv' })
  const cli = await p.call('bind', { name: 'cli', options: { address: '0.0.0.0', pktinfo: true } })
  await p.call('collect', { name: 'cli' })
  // Peer -> host, alternating between the host's two addresses (runs of the same size).
  const toHost: Spec[] = []
  for (let k = 0; k < 40; k++) toHost.push({ seq: k, size: 100, address: k % 4 < 2 ? '10.78.1.2' : '10.78.2.2', port: srv.port })
  const r = await p.call('send', { name: 'cli', messages: toHost })
  t.is(r.sent, 40)
  const c = await h.call('collected', { name: 'srv', count: 40 })
  checkReceived(t, toHost, c.got, true)
  const wrong = (c.got as Got[]).filter((g) => {
    const viaFirst = g.seq % 4 < 2
    return g.local !== (viaFirst ? '10.78.1.2' : '10.78.2.2') || g.ifindex !== (viaFirst ? h1 : h2)
  })
  t.deepEqual(wrong, [], 'each datagram reports the address it was sent to and the interface it came in on')
  // Host -> peer over the first link, from either of the host's addresses as asked.
  const toPeer: Spec[] = []
  for (let k = 0; k < 30; k++) {
    const sourceAddress = k < 10 ? '10.78.2.2' : k < 20 ? '10.78.1.2' : undefined
    toPeer.push({ seq: 100 + k, size: 200, address: '10.78.1.1', port: cli.port, ...(sourceAddress ? { sourceAddress } : {}) })
  }
  const r2 = await h.call('send', { name: 'srv', messages: toPeer })
  t.is(r2.sent, 30)
  const c2 = await p.call('collected', { name: 'cli', count: 30 })
  checkReceived(t, toPeer, c2.got, true)
  const wrongSource = (c2.got as Got[]).filter((g) => {
    const want = g.seq < 110 ? '10.78.2.2' : '10.78.1.2' // the default: the route's source on link 1
    return g.address !== want || g.port !== srv.port || g.local !== '10.78.1.1' || g.ifindex !== p1
  })
  t.deepEqual(wrongSource, [], 'the source is the one asked for, per datagram')
})

netTest('two interfaces over IPv6: pktinfo reports the local address and interface of each datagram, and a per-datagram sourceAddress picks the source', async (t) => {
  const h = await Agent.start(t)
  const p = await Agent.start(t)
  await veth(p, h, { nameA: 'p1', addrA: '10.80.1.1/24', nameB: 'h1', addrB: '10.80.1.2/24', addr6A: 'fd00:80:1::1/64', addr6B: 'fd00:80:1::2/64', n: 6 })
  await veth(p, h, { nameA: 'p2', addrA: '10.80.2.1/24', nameB: 'h2', addrB: '10.80.2.2/24', addr6A: 'fd00:80:2::1/64', addr6B: 'fd00:80:2::2/64', n: 7 })
  const h1 = await ifindex(h, 'h1')
  const h2 = await ifindex(h, 'h2')
  const p1 = await ifindex(p, 'p1')
  const srv = await h.call('bind', { name: 'srv', options: { address: '::', ipv6Only: true, pktinfo: true } })
  await h.call('collect', { name: 'srv' })
  const cli = await p.call('bind', { name: 'cli', options: { address: '::', ipv6Only: true, pktinfo: true } })
  await p.call('collect', { name: 'cli' })
  const toHost: Spec[] = []
  for (let k = 0; k < 40; k++) toHost.push({ seq: k, size: 100, address: k % 4 < 2 ? 'fd00:80:1::2' : 'fd00:80:2::2', port: srv.port })
  t.is((await p.call('send', { name: 'cli', messages: toHost })).sent, 40)
  const c = await h.call('collected', { name: 'srv', count: 40 })
  checkReceived(t, toHost, c.got, true)
  const wrong = (c.got as Got[]).filter((g) => {
    const viaFirst = g.seq % 4 < 2
    return g.local !== (viaFirst ? 'fd00:80:1::2' : 'fd00:80:2::2') || g.ifindex !== (viaFirst ? h1 : h2)
  })
  t.deepEqual(wrong, [], 'each datagram reports the address it was sent to and the interface it came in on')
  const toPeer: Spec[] = []
  for (let k = 0; k < 20; k++) {
    toPeer.push({ seq: 100 + k, size: 200, address: 'fd00:80:1::1', port: cli.port, sourceAddress: k < 10 ? 'fd00:80:2::2' : 'fd00:80:1::2' })
  }
  t.is((await h.call('send', { name: 'srv', messages: toPeer })).sent, 20)
  const c2 = await p.call('collected', { name: 'cli', count: 20 })
  checkReceived(t, toPeer, c2.got, true)
  const wrongSource = (c2.got as Got[]).filter((g) => {
    const want = g.seq < 110 ? 'fd00:80:2::2' : 'fd00:80:1::2'
    return g.address !== want || g.port !== srv.port || g.local !== 'fd00:80:1::1' || g.ifindex !== p1
  })
  t.deepEqual(wrongSource, [], 'the source is the one asked for, per datagram')
})

netTest('two interfaces: multicast joined on one interface arrives there (pktinfo shows the group and that interface), and on the other once joined there', async (t) => {
  const h = await Agent.start(t)
  const p = await Agent.start(t)
  await veth(p, h, { nameA: 'p1', addrA: '10.79.1.1/24', nameB: 'h1', addrB: '10.79.1.2/24', n: 4 })
  await veth(p, h, { nameA: 'p2', addrA: '10.79.2.1/24', nameB: 'h2', addrB: '10.79.2.2/24', n: 5 })
  const h1 = await ifindex(h, 'h1')
  const h2 = await ifindex(h, 'h2')
  const group = '239.1.2.3'
  const rx = await h.call('bind', { name: 'rx', options: { address: '0.0.0.0', pktinfo: true } })
  await h.call('collect', { name: 'rx' })
  await h.call('invoke', { name: 'rx', method: 'addMembership', args: [group, '10.79.1.2'] })
  // One sender per link: each picks its outgoing interface by address.
  await p.call('bind', { name: 'via1', options: { address: '10.79.1.1' } })
  await p.call('bind', { name: 'via2', options: { address: '10.79.2.1' } })
  await p.call('invoke', { name: 'via1', method: 'setMulticastInterface', args: ['10.79.1.1'] })
  await p.call('invoke', { name: 'via2', method: 'setMulticastInterface', args: ['10.79.2.1'] })
  const batch = (from: number) => Array.from({ length: 20 }, (_, k) => ({ seq: from + k, size: 200, address: group, port: rx.port }))
  const first = batch(0)
  t.is((await p.call('send', { name: 'via1', messages: first })).sent, 20)
  const c1 = await h.call('collected', { name: 'rx', count: 20 })
  checkReceived(t, first, c1.got, true)
  t.deepEqual(
    (c1.got as Got[]).filter((g) => g.ifindex !== h1 || g.local !== group || g.address !== '10.79.1.1'),
    [],
    'each datagram came in on the joined interface, to the group, from the sender on that link',
  )
  await h.call('invoke', { name: 'rx', method: 'addMembership', args: [group, '10.79.2.2'] })
  const second = batch(100)
  t.is((await p.call('send', { name: 'via2', messages: second })).sent, 20)
  const c2 = await h.call('collected', { name: 'rx', count: 40 })
  checkReceived(t, [...first, ...second], c2.got, true)
  t.deepEqual(
    (c2.got as Got[]).filter((g) => g.seq >= 100 && (g.ifindex !== h2 || g.local !== group || g.address !== '10.79.2.1')),
    [],
    'once joined on the second interface, its datagrams arrive there',
  )
})
