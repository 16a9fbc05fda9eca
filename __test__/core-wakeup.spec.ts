// Many sockets of one process are watched through one epoll set (src/io/reactor.rs on Linux;
// a poll handle per socket elsewhere): sockets ready in the same wake-up are each handed their
// own datagrams; one closed by the handler of another before its turn hears nothing more (its
// pending event is dropped, never delivered to a socket that reused its place); sockets opened
// afterwards in those places receive exactly their own traffic.
import test from 'ava'
import { UdpSocket } from '../lib/index.js'
import { V4, sleep, waitUntil } from './helpers.js'

const N = 24

/** Binds `n` loopback sockets. */
function openMany(n: number): UdpSocket[] {
  return Array.from({ length: n }, () => UdpSocket.bindSync({ address: V4, port: 0 }))
}

/** Sends each socket one datagram naming its own port, from `tx`. */
async function sendEach(tx: UdpSocket, socks: UdpSocket[]): Promise<void> {
  const msgs = socks.map((s) => {
    const port = s.localAddress().port
    return { data: Buffer.from(`to ${port}`), address: V4, port }
  })
  await tx.sendBatch(msgs)
}

test('sockets ready in one wake-up: each gets its own datagram; one closed by an earlier handler gets none', async (t) => {
  const tx = UdpSocket.bindSync({ address: V4, port: 0 })
  const socks = openMany(N)
  const got = new Map<UdpSocket, string[]>()
  const afterClose: string[] = []
  const closed = new Set<UdpSocket>()
  try {
    await sendEach(tx, socks)
    // Let every datagram reach its queue, then start reading all sockets in one turn, so the
    // next poll finds them all ready at once.
    await sleep(50)
    let first = true
    let firstSock: UdpSocket | undefined
    for (const s of socks) {
      got.set(s, [])
      s.onBatch((b) => {
        for (let i = 0; i < b.count; i++) {
          const text = b.data(i).toString()
          if (closed.has(s)) afterClose.push(text)
          else got.get(s)!.push(text)
        }
        if (first) {
          // The first handler closes every other socket but itself, before their turn.
          first = false
          firstSock = s
          socks.forEach((o, k) => {
            if (k % 2 === 1 && o !== s) {
              closed.add(o)
              o.close()
            }
          })
        }
      })
    }
    const stillOpen = (): UdpSocket[] => socks.filter((s) => !closed.has(s))
    t.true(await waitUntil(() => !first && stillOpen().every((s) => got.get(s)!.length === 1), 10_000))
    t.is(closed.size, N / 2 - (socks.indexOf(firstSock!) % 2), 'every odd socket but the first handler\'s was closed')
    await sleep(50)
    t.deepEqual(afterClose, [], 'a socket closed before its turn delivers nothing')
    for (const s of socks) {
      const texts = got.get(s)!
      if (closed.has(s)) t.true(texts.length <= 1)
      else t.deepEqual(texts, [`to ${s.localAddress().port}`])
    }
    // New sockets take the closed ones' places: each receives exactly its own datagram.
    const fresh = openMany(closed.size)
    const freshGot = new Map<UdpSocket, string[]>(fresh.map((s) => [s, []]))
    for (const s of fresh) s.onBatch((b) => freshGot.get(s)!.push(...Array.from({ length: b.count }, (_, i) => b.data(i).toString())))
    await sleep(10) // the new sockets start watching when the loop next polls
    await sendEach(tx, fresh)
    t.true(await waitUntil(() => fresh.every((s) => freshGot.get(s)!.length === 1), 10_000))
    for (const s of fresh) t.deepEqual(freshGot.get(s), [`to ${s.localAddress().port}`])
    for (const s of fresh) s.close()
  } finally {
    tx.close()
    for (const s of socks) s.close()
  }
})

test('a socket closed and one opened in the same handler: the new one receives, the old one never again', async (t) => {
  const tx = UdpSocket.bindSync({ address: V4, port: 0 })
  const a = UdpSocket.bindSync({ address: V4, port: 0 })
  let b = UdpSocket.bindSync({ address: V4, port: 0 })
  const seen: string[] = []
  try {
    const replaced = new Promise<UdpSocket>((resolve) => {
      b.onBatch((batch) => {
        for (let i = 0; i < batch.count; i++) seen.push(`old ${batch.data(i)}`)
        b.close()
        const c = UdpSocket.bindSync({ address: V4, port: 0 })
        c.onBatch((x) => {
          for (let i = 0; i < x.count; i++) seen.push(`new ${x.data(i)}`)
        })
        resolve(c)
      })
    })
    a.onBatch(() => {})
    await tx.sendBatch([{ data: Buffer.from('1'), address: V4, port: b.localAddress().port }])
    const c = await replaced
    b = c // closed by `finally`
    await sleep(10)
    await tx.sendBatch([{ data: Buffer.from('2'), address: V4, port: c.localAddress().port }])
    t.true(await waitUntil(() => seen.length >= 2, 10_000))
    await sleep(30)
    t.deepEqual(seen, ['old 1', 'new 2'])
  } finally {
    tx.close()
    a.close()
    b.close()
  }
})
