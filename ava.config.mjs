// ava configuration. Specs that need Linux (recvmmsg/sendmmsg semantics, /proc, IP_RECVERR,
// network namespaces, SO_MEMINFO, the soak's native sender) are left out elsewhere, with a
// visible line naming them, so the rest of the suite runs on macOS and other platforms.
const LINUX_ONLY = [
  'faults',
  'fuzz',
  'linux-features',
  'native-interface',
  'net-bed',
  'net-send',
  'recv-edge',
  'soak',
  'bench',
]

const excluded = process.platform === 'linux' ? [] : LINUX_ONLY.map((name) => `!__test__/${name}.spec.ts`)
if (excluded.length > 0) {
  console.warn(`udp-mmsg: ${process.platform}: skipping the Linux-only specs ${LINUX_ONLY.join(', ')}`)
}

export default {
  extensions: { ts: 'module' },
  files: ['__test__/**/*.spec.ts', ...excluded],
  nodeArguments: ['--import', 'tsx'],
  workerThreads: false,
  timeout: '2m',
  concurrency: 2,
}
