/**
 * The Purple client: the operations contract, the typed errors and the fetch-only
 * `HttpClient`.
 *
 * @example Counting hits through any implementation
 * ```ts
 * import type { Operations } from "@purple/client";
 *
 * export async function hits(ops: Operations): Promise<bigint> {
 *   return await ops.counterIncrement("hits", 1);
 * }
 * ```
 *
 * @example Calling a Purple server over HTTP
 * ```ts ignore
 * import { HttpClient } from "@purple/client";
 *
 * const client = new HttpClient("http://localhost:8080");
 * await client.cacheSet("player1-session", "a1b2c3d4e5f6", 120);
 * console.log(await client.counterIncrement("player1-points", 100)); // 100n
 * ```
 *
 * @module
 */

export type {
  BatchableName,
  BatchOperation,
  BatchOptions,
  BatchOutcome,
  BatchOutcomes,
  CacheChange,
  CounterAmount,
  CounterChange,
  FlagChange,
  KeyPage,
  KvChange,
  KvEntry,
  KvValue,
  KvWriteOptions,
  ListOptions,
  Operations,
  SetChange,
  WatchChange,
  WatchKeys,
  WatchOptions,
} from "@purple/protocol";
export { iterateKeys, type KeyService, keysOf, LISTINGS } from "@purple/protocol";
export * from "./errors.ts";
export {
  type CallOptions,
  DEFAULT_HTTP_TIMEOUT_MS,
  type FetchLike,
  HttpClient,
  type HttpClientOptions,
  MAX_URL_LENGTH,
} from "./http.ts";
