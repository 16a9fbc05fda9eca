// ESM entry of the node:dgram facade: the same objects as the CommonJS entry (dgram.ts).
import cjs from './dgram.js'

export { _createSocketHandle, createSocket, Socket } from './dgram.js'
export type * from './dgram.js'
export default cjs
