'use strict'
// systemd socket activation with udp-mmsg/dgram: when systemd started this process for a
// `.socket` unit (`ListenDatagram=8125`), the socket is fd 3 and LISTEN_PID/LISTEN_FDS say so;
// the facade adopts it with bind({ fd: 3 }). Started by hand, it binds PORT (default 8125).
// Prints one line per datagram ("<address>:<port> <bytes>") and stops on SIGTERM.
// Usage: node examples/socket-activation.js [PORT]
//
// A matching pair of units:
//   # statsd.socket                      # statsd.service
//   [Socket]                             [Service]
//   ListenDatagram=127.0.0.1:8125        ExecStart=/usr/bin/node /srv/socket-activation.js
//   [Install]
//   WantedBy=sockets.target

const dgram = require('udp-mmsg/dgram')

const SD_LISTEN_FDS_START = 3
const activated = process.env.LISTEN_PID === String(process.pid) && Number(process.env.LISTEN_FDS) >= 1

// The type must be the socket's family; systemd's ListenDatagram=127.0.0.1:... is IPv4.
const socket = dgram.createSocket(process.env.SOCKET_TYPE === 'udp6' ? 'udp6' : 'udp4')
socket.on('message', (msg, rinfo) => console.log(`${rinfo.address}:${rinfo.port} ${msg.length}`))
socket.on('listening', () => {
  const { address, port } = socket.address()
  console.log(`listening on ${address}:${port}${activated ? ' (socket from systemd)' : ''}`)
})
if (activated) socket.bind({ fd: SD_LISTEN_FDS_START })
else socket.bind(Number(process.argv[2] || 8125), '127.0.0.1')
process.on('SIGTERM', () => socket.close())
