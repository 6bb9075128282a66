/**
 * The limits Purple enforces, the same on every backend and every transport: sizes (keys,
 * values, set items and set length) and, for the servers, concurrency and timeouts.
 *
 * @module
 */

import { DEFAULT_MAX_WATCH_KEYS } from "@purple/protocol/watch";

/**
 * Limits. Every size is counted in bytes of UTF-8 (strings) or raw bytes (KV values); every
 * duration in milliseconds.
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
  /**
   * Most items one set may hold: adding a new item to a full set is refused with
   * `ValueTooLargeError` (adding an item it holds, and removing, always work). Default 10000.
   */
  maxSetItems: number;
  /**
   * Servers: most requests (HTTP) or calls (gRPC) each server handles at once; beyond it a
   * request is refused at once with `UnavailableError` (503, `UNAVAILABLE`) instead of
   * queueing. Health checks (`/ping`, gRPC health) are never refused. Default 1024.
   */
  maxConcurrentRequests: number;
  /**
   * Servers: how long one backend operation may take before the request fails with
   * `UnavailableError` (the operation itself may still complete). The redis backend also drops
   * a connection that leaves commands unanswered this long (at most 1000 ms). Default 5000.
   */
  backendTimeoutMs: number;
  /**
   * Servers: how long a client may take to send a request body (HTTP) or message (gRPC),
   * counted from when the request arrives; a slower one is cut off with
   * `InvalidArgumentError` (400, `INVALID_ARGUMENT`). Default 10000.
   */
  bodyTimeoutMs: number;
  /**
   * Most watches open at once (`watch()`, `GET /watch`, gRPC `Watch`, both protocols together);
   * one more is refused at once with `UnavailableError` (503, `UNAVAILABLE`). Default 10000.
   */
  maxWatchers: number;
  /**
   * Most keys one watch may follow; more is refused with `ValueTooLargeError` (413,
   * `RESOURCE_EXHAUSTED`). Default 100.
   */
  maxWatchKeys: number;
}

/**
 * The default limits: keys up to 512 bytes, values up to 1 MiB, set items up to 1 KiB and
 * 10000 items a set; 1024 requests at once per server, 5 s per backend operation, 10 s to
 * send a request body; 10000 watches at once, of at most 100 keys each.
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
  maxSetItems: 10_000,
  maxConcurrentRequests: 1024,
  backendTimeoutMs: 5_000,
  bodyTimeoutMs: 10_000,
  maxWatchers: 10_000,
  maxWatchKeys: DEFAULT_MAX_WATCH_KEYS,
});
