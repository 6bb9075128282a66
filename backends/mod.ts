/**
 * Purple's backends behind one entry point: {@linkcode openBackend} picks the implementation
 * (memory, disk or redis) and returns the checked operations every server uses.
 *
 * @example Opening the memory backend
 * ```ts
 * import { openBackend } from "@purple/server/backends";
 *
 * const ops = await openBackend({ kind: "memory" });
 * await ops.setAdd("todos", "shopping");
 * console.log(await ops.setGet("todos")); // ["shopping"]
 * await ops.close();
 * ```
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { checked, type CheckedOperations } from "./checked.ts";
import { DEFAULT_LIMITS, type Limits } from "./limits.ts";
import { MemoryBackend } from "./memory.ts";
import type { RedisLayoutName } from "./_redis_layout.ts";

export {
  AtomicBatchError,
  type Backend,
  type BackendBatchable,
  type BackendOperation,
  type EntryService,
  type ExportOptions,
  type ExportPage,
  type KvCondition,
  type ListQuery,
  RestoreError,
  type StoredEntry,
  type UnreadableEntry,
} from "./backend.ts";
export { checkEntry, MAX_TTL_MS } from "./entries.ts";
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
  KeyService,
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
export type { WatchTarget } from "@purple/protocol/watch";
export { checked, type CheckedOperations } from "./checked.ts";
export { DEFAULT_LIMITS, type Limits } from "./limits.ts";
export { MemoryBackend, type MemoryBackendOptions } from "./memory.ts";
export { DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS } from "./validate.ts";
export { REDIS_LAYOUTS, type RedisLayoutName, resolveLayoutName } from "./_redis_layout.ts";

/**
 * The names of the backends.
 *
 * @example
 * ```ts
 * import { BACKEND_KINDS } from "@purple/server/backends";
 *
 * console.log(BACKEND_KINDS); // ["memory", "disk", "redis"]
 * ```
 */
export const BACKEND_KINDS: readonly BackendKind[] = ["memory", "disk", "redis"];

/**
 * Which backend to open.
 *
 * @example
 * ```ts
 * import { type BackendKind, openBackend } from "@purple/server/backends";
 *
 * const kind: BackendKind = "memory";
 * const ops = await openBackend({ kind });
 * await ops.close();
 * ```
 */
export type BackendKind = "memory" | "disk" | "redis";

/**
 * Where and how to open a backend.
 *
 * @example
 * ```ts
 * import { type BackendOptions, openBackend } from "@purple/server/backends";
 *
 * const options: BackendOptions = { kind: "memory", limits: { maxValueBytes: 64 * 1024 } };
 * const ops = await openBackend(options);
 * await ops.close();
 * ```
 */
export interface BackendOptions {
  /** Which backend. */
  kind: BackendKind;
  /**
   * Disk backend: the directory of its database file (`purple.sqlite3` inside it). Default
   * `./data`. On Deno Deploy (`DENO_DEPLOYMENT_ID` set) the platform's KV is used instead.
   */
  dataDir?: string;
  /**
   * Redis backend: the server's URL. Default `redis://127.0.0.1:6379`. With `redisCluster`, one
   * seed node's URL or several, comma-separated.
   */
  redisUrl?: string;
  /**
   * Redis backend: where the keys live, `databases` (a database per service, the original
   * Go Purple's layout; the default) or `prefixed` (one database, a key prefix per service;
   * the default, and the only choice, with `redisCluster`). See docs/redis.md.
   */
  redisLayout?: RedisLayoutName;
  /** Redis backend: put in front of every Redis key (several deployments, one Redis). */
  redisPrefix?: string;
  /** Redis backend: `redisUrl` names seed nodes of a Redis Cluster. Default false. */
  redisCluster?: boolean;
  /**
   * Redis backend: after each write, wait until this many replicas acknowledged it (Redis
   * `WAIT`); a write that is not acknowledged within `redisWaitTimeoutMs` fails with
   * `UnavailableError`. Default 0 (do not wait).
   */
  redisWaitReplicas?: number;
  /** Redis backend: how long a write waits for its replicas, in milliseconds. Default 500. */
  redisWaitTimeoutMs?: number;
  /**
   * Redis backend: do not check the certificate of a `rediss://` Redis (for a Redis whose
   * certificate is self-signed, such as Heroku Redis's). Default false.
   */
  redisInsecureTls?: boolean;
  /** Size limits; omitted fields take {@linkcode DEFAULT_LIMITS}. */
  limits?: Partial<Limits>;
}

/**
 * The default Redis URL of the original Purple.
 *
 * @example
 * ```ts
 * import { DEFAULT_REDIS_URL } from "@purple/server/backends";
 *
 * console.log(DEFAULT_REDIS_URL); // "redis://127.0.0.1:6379"
 * ```
 */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

/**
 * The default directory of the disk backend.
 *
 * @example
 * ```ts
 * import { DEFAULT_DATA_DIR } from "@purple/server/backends";
 *
 * console.log(DEFAULT_DATA_DIR); // "./data"
 * ```
 */
export const DEFAULT_DATA_DIR = "./data";

/**
 * Opens a backend and wraps it in the input checks.
 *
 * @param options Which backend, where, and the limits.
 * @returns The operations; call `close()` when done.
 * @throws {UnavailableError} When Redis cannot be reached.
 * @throws {InvalidArgumentError} When the options are inconsistent (such as limits the disk
 * backend cannot hold).
 *
 * @example
 * ```ts
 * import { openBackend } from "@purple/server/backends";
 *
 * const ops = await openBackend({ kind: "memory", limits: { maxValueBytes: 4096 } });
 * await ops.close();
 * ```
 */
export async function openBackend(options: BackendOptions): Promise<CheckedOperations> {
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  return checked(await openRaw(options, limits), limits);
}

async function openRaw(options: BackendOptions, limits: Limits): Promise<Backend> {
  switch (options.kind) {
    case "memory":
      return new MemoryBackend();
    case "disk": {
      const { openDiskBackend } = await import("./disk.ts");
      return await openDiskBackend({ dataDir: options.dataDir ?? DEFAULT_DATA_DIR, limits });
    }
    case "redis": {
      const { openRedisBackend } = await import("./redis.ts");
      const waitTimeoutMs = options.redisWaitTimeoutMs;
      return await openRedisBackend({
        url: options.redisUrl ?? DEFAULT_REDIS_URL,
        layout: options.redisLayout,
        prefix: options.redisPrefix,
        cluster: options.redisCluster,
        waitReplicas: options.redisWaitReplicas,
        waitTimeoutMs,
        insecureTls: options.redisInsecureTls,
        // The server-side timeout covers every backend; a stalled Redis connection is dropped
        // sooner (1 s, or twice the WAIT timeout, at most) so that later commands fail at once
        // instead of each waiting.
        commandTimeoutMs: Math.min(
          limits.backendTimeoutMs,
          Math.max(1000, 2 * (waitTimeoutMs ?? 0)),
        ),
      });
    }
  }
}
