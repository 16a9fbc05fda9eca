// ESM entry: the same objects as the CommonJS entry.
import cjs from './index.js'

export const { UdpSocket, Batch, readable, writable } = cjs
export default cjs
