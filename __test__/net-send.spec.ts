// Send-path behaviour that plain loopback can show (issue 11): a GSO refusal is resent in the
// same call, an application error under GSO is reported without turning GSO off, and a
// per-datagram TOS reaches IPv4 peers of dual-stack udp6 sockets and connected peers.
// Namespace-bound cases (MTU 1500, loss, two interfaces) are in net-bed.spec.ts.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { open, pull, payload, portOf, type UdpSocket } from './helpers.js'

const SOL_SOCKET = 1
const SO_NO_CHECK = 11

/** True when this host has an IPv6 loopback (tests that need one skip visibly without it). */
function hasV6(t: ExecutionContext): boolean {
  try {
    open(t, { address: '::1', port: 0 })
    return true
  } catch {
    t.log('skipped: no IPv6 loopback here')
    return false
  }
}

test('a refused GSO send is resent without GSO in the same call: trySendBatch returns the full count at once', async (t) => {
  const rx = open(t, { address: '127.0.0.1', port: 0, recvBufferSize: 4 << 20 })
  const tx = open(t, { address: '127.0.0.1', port: 0 })
  if (!tx.capabilities().gso) {
    t.log('skipped: no UDP GSO on this kernel')
    t.pass()
    return
  }
  // Without UDP checksums the kernel refuses segmentation offload (EINVAL); plain sends go.
  tx.setSocketOption(SOL_SOCKET, SO_NO_CHECK, 1)
  const port = portOf(rx)
  const msgs = Array.from({ length: 100 }, (_, i) => ({ data: payload(i, 300), address: '127.0.0.1', port }))
  t.is(tx.trySendBatch(msgs), 100, 'nothing is left for a later call')
  const s = tx.stats()
  t.is(s.datagramsSent, 100)
  t.is(s.gsoFallbacks, 1)
  t.false(tx.capabilities().gso, 'a plain resend went where GSO did not: GSO is off')
  const got = await pull(rx, 100)
  t.is(got.length, 100)
  t.true(got.every((m, i) => m.data.equals(msgs[i].data)))
})

test('an application error under GSO (IPv4 source to an IPv6 peer) is reported with its index and keeps GSO on', async (t) => {
  if (!hasV6(t)) return t.pass()
  const rx = open(t, { address: '::1', port: 0 })
  const tx = open(t, { address: '::', port: 0, ipv6Only: false })
  if (!tx.capabilities().gso) {
    t.log('skipped: no UDP GSO on this kernel')
    t.pass()
    return
  }
  const port = portOf(rx)
  const good = [payload(0, 50), payload(1, 60)].map((data) => ({ data, address: '::1', port }))
  const bad = Array.from({ length: 10 }, (_, i) => ({ data: payload(2 + i, 100), address: '::1', port, sourceAddress: '127.0.0.1' }))
  const e = await t.throwsAsync<any>(tx.sendBatch([...good, ...bad]))
  t.is(e?.code, 'EINVAL')
  t.is(e?.sent, 2, 'the two datagrams before the bad run went')
  t.is(e?.index, 2)
  t.true(tx.capabilities().gso, 'the plain resend failed too: the datagram was at fault, not GSO')
  t.is(tx.stats().gsoFallbacks, 0)
  // GSO still works for the socket.
  const ok = Array.from({ length: 20 }, (_, i) => ({ data: payload(20 + i, 100), address: '::1', port }))
  t.is(await tx.sendBatch(ok), 20)
  t.true(tx.stats().gsoSends > 0)
  const got = await pull(rx, 22)
  t.deepEqual(
    got.map((m) => m.data.length),
    [50, 60, ...ok.map(() => 100)],
  )
})

/** Receives `n` datagrams (bounded wait) as [payload length or text, TOS byte]. */
async function recvTos(rx: UdpSocket, n: number): Promise<Array<[string, number | undefined]>> {
  const out: Array<[string, number | undefined]> = []
  while (out.length < n) {
    const b = await rx.recvBatch({ timeoutMs: 10_000 })
    if (b.count === 0) break
    for (let i = 0; i < b.count; i++) out.push([b.data(i).length > 8 ? String(b.data(i).length) : b.data(i).toString(), b.tos(i)])
  }
  return out
}

test('per-datagram tos reaches an IPv4 peer of a dual-stack udp6 socket', async (t) => {
  if (!hasV6(t)) return t.pass()
  const rx = open(t, { address: '127.0.0.1', port: 0, recvTos: true })
  const tx = open(t, { address: '::', port: 0, ipv6Only: false })
  const port = portOf(rx)
  // As an IPv4 literal and as its mapped form; a run of them (GSO) and a single one.
  const msgs = [
    ...Array.from({ length: 5 }, (_, i) => ({ data: payload(i, 100), address: '127.0.0.1', port, tos: 0xb8 })),
    { data: payload(5, 40), address: '::ffff:127.0.0.1', port, tos: 0xb8 },
  ]
  t.is(await tx.sendBatch(msgs), 6)
  t.deepEqual(await recvTos(rx, 6), [...Array(5).fill(['100', 0xb8]), ['40', 0xb8]])
})

for (const peer of ['::1', '127.0.0.1'] as const) {
  test(`per-datagram tos reaches the peer of a connected udp6 socket (${peer})`, async (t) => {
    if (!hasV6(t)) return t.pass()
    const rx = open(t, { address: peer, port: 0, recvTos: true })
    const tx = open(t, { address: '::', port: 0, ipv6Only: false, connect: { address: peer, port: portOf(rx) } })
    t.is(await tx.sendBatch([{ data: 'a', tos: 0xb8 }, { data: 'b', tos: 0x48 }, { data: 'c' }]), 3)
    t.deepEqual(await recvTos(rx, 3), [
      ['a', 0xb8],
      ['b', 0x48],
      ['c', 0],
    ])
  })
}
