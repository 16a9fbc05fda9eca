// Receive path under misuse and kernel edge cases: ICMP errors with IP_RECVERR reported exactly
// once, non-error entries on the error queue (transmit timestamps), control data cut by the
// kernel (MSG_CTRUNC), UDP_GRO through the raw option, GRO with the kernel drop counter.
// Loopback only (ICMP errors come from closed ports on 127.0.0.1 / ::1); every wait is bounded
// and nothing asserts on timing: "exactly once" is checked after a later datagram has arrived,
// which proves the I/O thread went through poll and the receive call again since the error.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { UdpSocket } from '../lib/index.js'
import type { ErrnoError } from '../lib/index.js'
import { Collector, V4, V6, openLo, portOf, range, waitUntil } from './helpers.js'

const SOL_SOCKET = 1
const SO_TIMESTAMPING = 37
const SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
const SOF_TIMESTAMPING_RX_SOFTWARE = 1 << 3
const SOF_TIMESTAMPING_SOFTWARE = 1 << 4
const IPPROTO_IP = 0
const IP_RECVERR = 11
const IPPROTO_IPV6 = 41
const IPV6_2292PKTINFO = 2
const IPV6_2292HOPLIMIT = 8
const IPV6_RECVERR = 25
const IPV6_RECVHOPLIMIT = 51
const IPV6_RECVORIGDSTADDR = 74
const SOL_UDP = 17
const UDP_GRO = 104

/** A loopback port nobody listens on (bound, read, closed). */
function deadPort(family: 4 | 6): number {
  const s = UdpSocket.bindSync({ address: family === 6 ? V6 : V4, port: 0 })
  const p = portOf(s)
  s.close()
  return p
}

function enableRecvErr(s: UdpSocket, family: 4 | 6): void {
  if (family === 6) s.setSocketOption(IPPROTO_IPV6, IPV6_RECVERR, 1)
  else s.setSocketOption(IPPROTO_IP, IP_RECVERR, 1)
}

/** Sends one datagram to `s` from another socket and waits until `s` received it. */
async function proveProgress(t: ExecutionContext, s: UdpSocket, family: 4 | 6, c: Collector): Promise<void> {
  const addr = family === 6 ? V6 : V4
  const tx = openLo(t, family)
  const before = c.count
  await tx.sendBatch([{ data: 'after the error', address: addr, port: portOf(s) }])
  t.true(await c.waitFor(before + 1, 10_000), 'a datagram sent after the error arrives')
}

for (const family of [4, 6] as const) {
  test(`IP_RECVERR on (udp${family}), reading: a port unreachable is one error event, ECONNREFUSED, recvErrors 1`, async (t) => {
    const s = openLo(t, family)
    const errors: ErrnoError[] = []
    s.on('error', (e) => errors.push(e))
    const c = new Collector(s)
    enableRecvErr(s, family)
    await s.sendBatch([{ data: 'to nobody', address: family === 6 ? V6 : V4, port: deadPort(family) }])
    t.true(await waitUntil(() => errors.length > 0, 10_000), 'the ICMP error is reported')
    await proveProgress(t, s, family, c)
    t.deepEqual(
      errors.map((e) => e.code),
      ['ECONNREFUSED'],
      'reported once, not again from the pending socket error',
    )
    t.is(s.stats().recvErrors, 1)
    t.is(s.stats().pendingErrors, 0)
  })
}

test('IP_RECVERR on, reading paused: a port unreachable is still reported exactly once', async (t) => {
  const s = openLo(t, 4)
  const errors: string[] = []
  s.on('error', (e) => errors.push(e.code))
  enableRecvErr(s, 4)
  // Nobody consumes batches: the I/O thread is not reading, and meets the error through POLLERR.
  await s.sendBatch([{ data: 'to nobody', address: V4, port: deadPort(4) }])
  t.true(await waitUntil(() => errors.length > 0, 10_000), 'the ICMP error is reported while paused')
  const c = new Collector(s)
  await proveProgress(t, s, 4, c)
  t.deepEqual(errors, ['ECONNREFUSED'])
  t.is(s.stats().recvErrors, 1)
})

test('transmit timestamps on the error queue are not errors: a for await loop keeps receiving', async (t) => {
  const s = openLo(t, 4)
  // Software transmit timestamps: the kernel queues one per sent packet on the error queue.
  s.setSocketOption(SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE)
  const port = portOf(s)
  const seen: string[] = []
  let ended = null as string | null
  const loop = (async () => {
    try {
      for await (const b of s) {
        for (const m of b) seen.push(m.data.toString())
        if (seen.length >= 20) break
      }
      ended = 'done'
    } catch (e: any) {
      ended = `threw ${e.code}`
    }
  })()
  for (let k = 0; k < 20; k++) {
    // One datagram per send, each with its own timestamp entry.
    await s.sendBatch([{ data: `n ${k}`, address: V4, port }])
    await waitUntil(() => seen.length > k || ended !== null, 10_000)
  }
  await loop
  t.is(ended, 'done', 'the loop ended by itself, not by an error')
  t.deepEqual(seen, range(0, 20).map((k) => `n ${k}`))
  // Wait (bounded) until the I/O thread has read the queue, whatever it made of it.
  t.true(await waitUntil(() => s.stats().recvErrors + (s.stats().errorQueueNotices ?? 0) > 0, 10_000))
  t.true(s.stats().errorQueueNotices > 0, 'the timestamps were read and counted')
  t.is(s.stats().recvErrors, 0, 'and never reported as errors')
  t.is(s.stats().pendingErrors, 0)
})

test('control data cut by the kernel (MSG_CTRUNC) is counted per datagram and none of it is presented', async (t) => {
  // Extra receive options through the raw setSocketOption ask for more control data than a
  // receive slot holds (~300 bytes per datagram here).
  const rx = openLo(t, 6, { pktinfo: true, timestamps: true, recvTos: true })
  rx.setSocketOption(SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE)
  rx.setSocketOption(IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
  rx.setSocketOption(IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, 1)
  rx.setSocketOption(IPPROTO_IPV6, IPV6_2292PKTINFO, 1)
  rx.setSocketOption(IPPROTO_IPV6, IPV6_2292HOPLIMIT, 1)
  // The same options without the extras: nothing is cut, everything is presented.
  const plain = openLo(t, 6, { pktinfo: true, timestamps: true, recvTos: true })
  const tx = openLo(t, 6)
  const msgs = (port: number) => range(0, 8).map((i) => ({ data: `d ${i}`, address: V6, port }))
  await tx.sendBatch(msgs(portOf(rx)))
  await tx.sendBatch(msgs(portOf(plain)))
  for (const [s, cut] of [
    [rx, true],
    [plain, false],
  ] as const) {
    const got: string[] = []
    while (got.length < 8) {
      const b = await s.recvBatch({ timeoutMs: 10_000 })
      if (b.count === 0) break
      for (let i = 0; i < b.count; i++) {
        got.push(b.data(i).toString())
        if (cut) {
          t.is(b.localAddress(i), undefined, 'no local address from cut control data')
          t.is(b.timestamp(i), undefined, 'no timestamp from cut control data')
          t.is(b.tos(i), undefined, 'no TOS from cut control data')
        } else {
          t.is(b.localAddress(i), V6)
          t.is(typeof b.timestamp(i), 'bigint')
          t.is(typeof b.tos(i), 'number')
        }
      }
    }
    t.deepEqual(got, range(0, 8).map((i) => `d ${i}`), 'the payloads are intact either way')
    t.is(s.stats().controlTruncated, cut ? 8 : 0)
  }
})

test('UDP_GRO through setSocketOption is refused without gro: true (nothing is lost), accepted with it', async (t) => {
  const rx = openLo(t, 4, { recvBufferSize: 1 << 20 })
  t.throws(() => rx.setSocketOption(SOL_UDP, UDP_GRO, 1), { message: /UDP_GRO.*gro: true/ })
  // The native layer refuses it too, whatever the JS layer checked.
  t.throws(() => (rx as any)._native.setIntOption(SOL_UDP, UDP_GRO, 1), { message: /UDP_GRO.*gro: true/ })
  rx.setSocketOption(SOL_UDP, UDP_GRO, 0) // turning it off is harmless
  t.false(rx.capabilities().gro)
  // A GSO sender: had UDP_GRO been enabled, its runs would arrive coalesced into one slot.
  const tx = openLo(t, 4, { gso: true })
  const c = new Collector(rx)
  const msgs = range(0, 64).map((i) => ({ data: Buffer.alloc(1000, i), address: V4, port: portOf(rx) }))
  t.is(await tx.sendBatch(msgs), 64)
  t.true(await c.waitFor(64, 10_000), `all 64 arrive (got ${c.count})`)
  t.true(c.messages.every((m, i) => m.data.equals(msgs[i].data) && !m.truncated))
  t.is(rx.stats().kernelDrops, 0)

  const gro = openLo(t, 4, { gro: true })
  t.notThrows(() => gro.setSocketOption(SOL_UDP, UDP_GRO, 1))
})

test('gro: true without overflow: every datagram arrives and kernelDrops stays 0', async (t) => {
  const rx = openLo(t, 4, { gro: true, recvBufferSize: 4 << 20, maxDatagramSize: 2048 })
  const tx = openLo(t, 4, { gso: true })
  const c = new Collector(rx)
  let sent = 0
  for (let k = 0; k < 10; k++) {
    const msgs = range(0, 200).map((i) => ({ data: Buffer.alloc(1000, (sent + i) & 0xff), address: V4, port: portOf(rx) }))
    sent += await tx.sendBatch(msgs)
    t.true(await c.waitFor(sent, 10_000), `received ${c.count} of ${sent}`)
  }
  const s = rx.stats()
  t.is(s.datagramsReceived, sent)
  t.is(s.kernelDrops, 0)
  t.is(s.datagramsReceived + s.kernelDrops, sent)
  t.true(s.groReceives > 0, 'the kernel did coalesce')
})
