const { UdpSocket } = require('udp-mmsg')
const N = +process.argv[2] || 2000
for (let i = 0; i < 200; i++) UdpSocket.bindSync({ address: '127.0.0.1', port: 0 }).close()
let t = process.hrtime.bigint()
for (let i = 0; i < N; i++) UdpSocket.bindSync({ address: '127.0.0.1', port: 0 }).close()
console.log('sync create+close µs/op', Number(process.hrtime.bigint() - t) / 1000 / N)
;(async () => {
  t = process.hrtime.bigint()
  for (let i = 0; i < N; i++) { const s = await UdpSocket.bind({ address: '127.0.0.1', port: 0 }); const c = new Promise(r => s.once('close', r)); s.close(); await c }
  console.log('async bind + close event µs/op', Number(process.hrtime.bigint() - t) / 1000 / N)
  const dgram = require('dgram')
  t = process.hrtime.bigint()
  for (let i = 0; i < N; i++) { const s = dgram.createSocket('udp4'); await new Promise(r => s.bind(0, '127.0.0.1', r)); await new Promise(r => s.close(r)) }
  console.log('dgram µs/op', Number(process.hrtime.bigint() - t) / 1000 / N)
})()
