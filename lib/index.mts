// ESM entry: the same objects as the CommonJS entry (index.ts), re-exported by name.
import cjs from './index.js'

export { UdpSocket, Batch, readable, writable, runWorkers, Workers } from './index.js'
export type * from './index.js'
export default cjs
