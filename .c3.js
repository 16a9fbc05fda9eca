const dgram = require(process.argv[2] || 'udp-mmsg/dgram')
const N = 20000
;(async () => {
  for (let i = 0; i < 2000; i++) { const s = dgram.createSocket('udp4'); await new Promise(r => s.bind(0, '127.0.0.1', r)); await new Promise(r => s.close(r)) }
  const t = process.hrtime.bigint()
  for (let i = 0; i < N; i++) { const s = dgram.createSocket('udp4'); await new Promise(r => s.bind(0, '127.0.0.1', r)); await new Promise(r => s.close(r)) }
  console.log(process.argv[2] || 'facade', 'µs/op', Number(process.hrtime.bigint() - t) / 1000 / N)
})()
