// ESM entry of the node:dgram facade: the same objects as the CommonJS entry.
import cjs from './dgram.js'

export const { createSocket, Socket } = cjs
export default cjs
