const { UdpSocket } = require('udp-mmsg')
const N = 20000
let t = process.hrtime.bigint()
for (let i = 0; i < N; i++) UdpSocket.bindSync({ address: '127.0.0.1', port: 0 }).close()
console.log('sync create+close µs/op', Number(process.hrtime.bigint() - t) / 1000 / N)
