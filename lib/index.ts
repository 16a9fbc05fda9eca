// udp-mmsg: batched UDP sockets for Node.js. See README.md. The CommonJS entry point
// (`require('udp-mmsg')`); index.mts is the ES module one, with the same objects.

export { UdpSocket } from './socket.js'
export type { RecvOptions, SendError, SendOptions } from './socket.js'
export { Batch } from './batch.js'
export type { Message } from './batch.js'
export { readable, writable } from './streams.js'
export type { ReadableOptions, WritableOptions } from './streams.js'
export type { AddressInfo, BindOptions, BufferSizes, Capabilities, ErrnoError, OutgoingMessage, Stats, Steering } from './types.js'
export { runWorkers, Workers } from './workers.js'
export type { WorkerContext, WorkerHandler, WorkerHooks, WorkerReport, WorkersOptions } from './workers.js'
