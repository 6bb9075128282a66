/**
 * The size limits Purple enforces, the same on every backend and every transport.
 *
 * @module
 */

/**
 * Size limits. Every size is counted in bytes of UTF-8 (strings) or raw bytes (KV values).
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS, type Limits } from "@purple/server/backends";
 *
 * const limits: Limits = { ...DEFAULT_LIMITS, maxValueBytes: 64 * 1024 };
 * ```
 */
export interface Limits {
  /** Longest key (and set name), in UTF-8 bytes. Default 512. */
  maxKeyBytes: number;
  /** Largest KV value or cache value, in bytes. Default 1 MiB (1048576). */
  maxValueBytes: number;
  /** Longest set item, in UTF-8 bytes. Default 1024. */
  maxItemBytes: number;
}

/**
 * The default limits: keys up to 512 bytes, values up to 1 MiB, set items up to 1 KiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS } from "@purple/server/backends";
 *
 * console.log(DEFAULT_LIMITS.maxValueBytes); // 1048576
 * ```
 */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxKeyBytes: 512,
  maxValueBytes: 1024 * 1024,
  maxItemBytes: 1024,
});
