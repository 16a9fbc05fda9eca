'use strict'
// udp-mmsg: batched UDP sockets for Node.js. See README.md.
const { UdpSocket } = require('./socket.js')
const { Batch } = require('./batch.js')
const { readable, writable } = require('./streams.js')

module.exports = { UdpSocket, Batch, readable, writable }
