// Types for pack-check.js (used by the TypeScript tests).
import type { Platform } from './check-versions.js'
export interface PackInfo {
  name: string
  version: string
  filename: string
  size: number
  unpackedSize: number
  files: { path: string; size: number; mode: number }[]
}
export function packInfo(dir: string, env?: NodeJS.ProcessEnv): PackInfo
export function entryPoints(pkg: Record<string, unknown>): string[]
export function checkRootFiles(files: string[], pkg: Record<string, unknown>): string[]
export function checkPlatformFiles(files: string[], p: Platform, options: { requireBinary: boolean }): string[]
export const ROOT_ALLOWED: RegExp[]
export const ROOT_FORBIDDEN: RegExp[]
