import test from 'ava'
import { UdpSocket } from '../lib/index.js'

test('IPv4 round trip of a small batch', async (t) => {
  const rx = await UdpSocket.bind({ address: '127.0.0.1', port: 0 })
  const tx = await UdpSocket.bind({ address: '127.0.0.1', port: 0 })
  const { port } = rx.localAddress()
  const sent = await tx.sendBatch([{ data: 'a', address: '127.0.0.1', port }, { data: ['b', 'c'], address: '127.0.0.1', port }])
  t.is(sent, 2)
  const got: string[] = []
  while (got.length < 2) {
    const b = await rx.recvBatch({ timeoutMs: 2000 })
    if (b.count === 0) break
    for (const m of b) got.push(m.data.toString())
  }
  t.deepEqual(got, ['a', 'bc'])
  rx.close()
  tx.close()
})
