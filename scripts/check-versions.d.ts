// Types for check-versions.js (used by the TypeScript tests).
export interface TargetInfo {
  tag: string
  os: string
  cpu: string
  libc?: string
}
export interface Platform extends TargetInfo {
  triple: string
  /** npm package name, e.g. udp-mmsg-linux-x64-gnu */
  name: string
  /** absolute path of npm/<tag> */
  dir: string
  /** binary file name, e.g. udp-mmsg.linux-x64-gnu.node */
  file: string
}
export interface Versions {
  root: string
  cargo: string | undefined
  cargoLock: string | undefined
  loader: string[] | null
  platforms: Record<string, string | undefined>
  optionalDependencies: Record<string, string> | undefined
}
export const TRIPLES: Record<string, TargetInfo>
export function platforms(root?: string): Platform[]
export function expectedOptionalDependencies(root?: string): Record<string, string>
export function readVersions(root?: string): Versions
export function check(root?: string, options?: { published?: boolean; tag?: string }): string[]
export function write(root?: string): string[]
