/**
 * The Redis backend: Purple's data in a Redis server or a Redis Cluster. Several Purple servers
 * can share one Redis; a prefix lets several Purple deployments share it too.
 *
 * Two layouts (see docs/redis.md for when to pick which):
 *
 * | service  | `databases` (default)    | `prefixed` (one database; a cluster's) | stored as          |
 * | -------- | ------------------------ | -------------------------------------- | ------------------ |
 * | cache    | db 0, `<prefix><key>`    | `<prefix>cache:{<key>}`                | `SET key value EX` |
 * | counters | db 1, `<prefix><key>`    | `<prefix>counters:{<key>}`             | `INCRBY`           |
 * | flags    | db 2, `<prefix><key>`    | `<prefix>flags:{<key>}`                | `true` / `false`   |
 * | kv       | db 3, `<prefix><key>`    | `<prefix>kv:{<key>}`                   | the raw bytes      |
 * | sets     | db 4, `<prefix><key>`    | `<prefix>sets:{<key>}`                 | a Redis set        |
 *
 * `databases` with no prefix is the original Go Purple's layout: a Redis it filled is served as
 * it is. `prefixed` uses the database of the URL (0 without one), and the braces make the Purple
 * key the Redis Cluster hash tag: the keys of one operation share a slot, different keys spread
 * over the cluster. With `cluster: true` the URL names one seed node or several,
 * comma-separated, and ioredis' `Cluster` follows redirections and failovers; a cluster has
 * database 0 only, so it implies `prefixed` (and refuses `databases`).
 *
 * A Redis that is down or stops answering (or, on a cluster, the part of it that holds a key)
 * makes operations fail fast with `UnavailableError` (no queueing, no waiting), and the backend
 * reconnects by itself. What Redis holds but Purple cannot read (a counter that is not an int64,
 * a flag that is not a boolean, a key of another Redis type) is an `InvalidArgumentError` naming
 * the key. With `waitReplicas`, each write also waits (Redis `WAIT`) until that many replicas
 * acknowledged it, and fails with `UnavailableError` when they did not within `waitTimeoutMs`.
 *
 * Servers open it through `openBackend({ kind: "redis", redisUrl })` of
 * `@purple/server/backends`, which adds the input checks; the examples need a running Redis.
 *
 * @example Opening a Redis backend
 * ```ts ignore
 * import { openRedisBackend } from "@purple/server/backends/redis";
 *
 * const backend = await openRedisBackend({ url: "redis://127.0.0.1:6379" });
 * console.log(await backend.counterIncrement("hits", 1n)); // 1n
 * await backend.close();
 * ```
 *
 * @example Opening a Redis Cluster from two seed nodes
 * ```ts ignore
 * import { openRedisBackend } from "@purple/server/backends/redis";
 *
 * const backend = await openRedisBackend({
 *   url: "redis://10.0.0.1:7001,redis://10.0.0.2:7002",
 *   cluster: true,
 *   prefix: "shop:",
 * });
 * await backend.close();
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Cluster, Redis } from "ioredis";
import { InvalidArgumentError, UnavailableError } from "@purple/protocol/errors";
import type {
  Backend,
  BackendOperation,
  ExportOptions,
  ExportPage,
  KvCondition,
  ListQuery,
  StoredEntry,
} from "./backend.ts";
import type { KeyPage, KvEntry, WatchChange } from "@purple/protocol";
import type { WatchTarget } from "@purple/protocol/watch";
import {
  absent,
  backgroundInterval,
  checkCondition,
  notFound,
  quote,
  setFull,
  sortItems,
} from "./_util.ts";
import { decodeCursor, encodeCursor } from "./_cursor.ts";
import {
  APPLY,
  READ_STATE,
  readArguments,
  runOver,
  touchedKeys,
  versionOf,
} from "./_redis_atomic.ts";
import { RedisLink } from "./_redis_link.ts";
import { readRedis } from "./_export_redis.ts";
import { pages, restoreAll } from "./_export_pages.ts";
import { RedisWatch, type SubscriberOptions } from "./_watch_redis.ts";
import { ClusterLink } from "./_redis_cluster.ts";
import {
  oneSlot,
  type RedisLayout,
  redisLayout,
  type RedisLayoutName,
  resolveLayoutName,
  type Service,
  SERVICES,
  slotOf,
} from "./_redis_layout.ts";
import {
  parseClusterUrls,
  parseCounter,
  parseFlag,
  parseRedisUrl,
  type RedisEndpoint,
  toPurpleError,
} from "./_redis_util.ts";

export type { Backend } from "./backend.ts";
export { REDIS_LAYOUTS, type RedisLayoutName } from "./_redis_layout.ts";

/**
 * Options of {@linkcode openRedisBackend}.
 *
 * @example
 * ```ts
 * import type { RedisBackendOptions } from "@purple/server/backends/redis";
 *
 * const options: RedisBackendOptions = {
 *   url: "rediss://:secret@redis.example.com:6380",
 *   layout: "prefixed",
 *   prefix: "shop:",
 *   commandTimeoutMs: 2_000,
 *   connectTimeoutMs: 2_000,
 * };
 * console.log(options.url); // then: await openRedisBackend(options)
 * ```
 */
export interface RedisBackendOptions {
  /**
   * The server: `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. The port
   * defaults to 6379. The database number is used by the `prefixed` layout only (default 0);
   * the `databases` layout fixes databases 0 to 4 (cache, counters, flags, kv, sets). With
   * `cluster`, one seed node's URL or several, comma-separated (same credentials, no database).
   */
  url: string;
  /**
   * Where the keys live: `databases` (a database per service, the original Go Purple's layout;
   * the default) or `prefixed` (one database, a key prefix per service, hash tags for Redis
   * Cluster; the default with `cluster`).
   */
  layout?: RedisLayoutName;
  /**
   * Put in front of every Redis key, so that several Purple deployments share one Redis.
   * Default "" (none; with the `databases` layout, the original's keys). No braces.
   */
  prefix?: string;
  /** Connect to a Redis Cluster through the seed nodes of `url`. Default false. */
  cluster?: boolean;
  /**
   * After each write, wait (Redis `WAIT`) until this many replicas acknowledged it: a write that
   * succeeded then survives the failover of its master. Default 0 (do not wait).
   */
  waitReplicas?: number;
  /**
   * How long a write waits for `waitReplicas` acknowledgements before failing with
   * `UnavailableError` (it may still be applied), in milliseconds. Default 500; it must be
   * shorter than `commandTimeoutMs`, since `WAIT` holds its connection.
   */
  waitTimeoutMs?: number;
  /**
   * How long a connection may leave commands without any reply before it is dropped: its
   * waiting commands then fail with `UnavailableError` and it reconnects. Milliseconds, default
   * 1000. It catches a Redis that hangs; a Redis that is stopped is noticed at once.
   */
  commandTimeoutMs?: number;
  /** How long connecting (TCP, TLS, authentication) may take, in milliseconds. Default 1000. */
  connectTimeoutMs?: number;
  /**
   * With `rediss://`, do not check the server's certificate (a Redis whose certificate is
   * self-signed, such as Heroku Redis's): the connection is encrypted but not authenticated.
   * Default false.
   */
  insecureTls?: boolean;
}

/** The default of {@linkcode RedisBackendOptions.waitTimeoutMs}. */
const DEFAULT_WAIT_TIMEOUT_MS = 500;

/** Resolves a write's promise to nothing. */
const done = (): void => {};

/** `SADD` then `SMEMBERS`, as one step. */
const ADD = `
redis.call('SADD', KEYS[1], ARGV[1])
return redis.call('SMEMBERS', KEYS[1])
`;

/** `SREM` then `SMEMBERS`, as one step. */
const REMOVE = `
redis.call('SREM', KEYS[1], ARGV[1])
return redis.call('SMEMBERS', KEYS[1])
`;

/**
 * `SADD` unless the set is full: the item count (an integer) when refused, else the members.
 * Redis runs a script as one step, so two adds can never both take the last place.
 */
const ADD_WITHIN_LIMIT = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then
  local size = redis.call('SCARD', KEYS[1])
  if size >= tonumber(ARGV[2]) then return size end
  redis.call('SADD', KEYS[1], ARGV[1])
end
return redis.call('SMEMBERS', KEYS[1])
`;

/**
 * A KV write with a condition, as one step: `ARGV[1]` is `put` (with the value in `ARGV[4]`) or
 * `delete`, `ARGV[2]` the version to match (empty: none; `*`: any), `ARGV[3]` `1` when the key
 * must be absent. Returns `ok`, `absent` (a delete of a missing key), or `{'failed', version}`
 * (the current version, empty when absent) when the condition does not hold.
 */
const CONDITIONAL_WRITE = `
local current = redis.call('GET', KEYS[1])
local version = current and redis.sha1hex(current) or ''
if (ARGV[3] == '1' and current) or
   (ARGV[2] ~= '' and (not current or (ARGV[2] ~= '*' and ARGV[2] ~= version))) then
  return {'failed', version}
end
if ARGV[1] == 'put' then
  redis.call('SET', KEYS[1], ARGV[4])
  return 'ok'
end
if not current then return 'absent' end
redis.call('DEL', KEYS[1])
return 'ok'
`;

/**
 * Replaces a set by the items of `ARGV`, as one step: `DEL`, then `SADD` 1000 items at a time
 * (Lua's `unpack` takes a few thousand values at most).
 */
const REPLACE_SET = `
redis.call('DEL', KEYS[1])
for first = 1, #ARGV, 1000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
return #ARGV
`;

/** How many times an atomic batch runs again when another client changed its keys meanwhile. */
const MAX_ATOMIC_ATTEMPTS = 50;

/** How many SCAN calls one page of a listing makes at most (a page may then come back short). */
const MAX_SCANS_PER_PAGE = 16;

/**
 * A listing's position: the Redis cursor, the cluster node it is on (its address), whether the
 * scan is over, and the keys a SCAN gave beyond the previous page.
 */
interface ScanState extends Record<string, unknown> {
  c: string;
  n?: string;
  d?: boolean;
  k?: string[];
}

function isScanState(state: Record<string, unknown>): state is ScanState {
  return typeof state.c === "string" && /^[0-9]+$/.test(state.c) &&
    (state.n === undefined || typeof state.n === "string") &&
    (state.d === undefined || state.d === true) &&
    (state.k === undefined ||
      (Array.isArray(state.k) && state.k.every((key) => typeof key === "string")));
}

/** The state of a cursor, without what it does not need. */
function scanState(
  cursor: string,
  node: string | undefined,
  done: boolean,
  carried: string[],
): ScanState {
  const state: ScanState = { c: cursor };
  if (node !== undefined) state.n = node;
  if (done) state.d = true;
  if (carried.length > 0) state.k = carried;
  return state;
}

/** A connection to one Redis database, or to a whole cluster. */
type Link = RedisLink | ClusterLink;

/** One command, as `call()` takes it: the name, then the arguments. */
type Command = [name: string, ...args: (string | Buffer | number)[]];

/**
 * Purple's data in Redis (see the module doc for the layouts). Obtain one with
 * {@linkcode openRedisBackend}, which connects before returning.
 *
 * Counters are exact signed 64-bit integers: Redis refuses an overflow itself, and the value
 * stays unchanged. Each operation touches one Redis key: set changes and the read of the
 * resulting items run in one script, so the items returned are the state right after the
 * change, on a cluster too.
 *
 * @example
 * ```ts ignore
 * import { checked, DEFAULT_LIMITS } from "@purple/server/backends";
 * import { openRedisBackend } from "@purple/server/backends/redis";
 *
 * const ops = checked(await openRedisBackend({ url: "redis://127.0.0.1:6379" }), DEFAULT_LIMITS);
 * await ops.setAdd("todos", "shopping");
 * console.log(await ops.setGet("todos")); // ["shopping"]
 * await ops.close();
 * ```
 */
export class RedisBackend implements Backend {
  /** Always true: a key's commands go on one connection, in the order they are called. */
  readonly keepsCallOrder = true;
  /** Which database and which Redis key each service's keys have. */
  #layout: RedisLayout;
  #links: Record<Service, Link>;
  #unique: Link[];
  #safeUrl: string;
  #commandTimeoutMs: number;
  /** How often the watchdog looks, and when it last did. */
  #tickMs: number;
  #lastTick = Date.now();
  #waitReplicas: number;
  #waitTimeoutMs: number;
  /** Until when writes to a master are refused: it lacked replicas (with `waitReplicas`). */
  #shortOfReplicas = new Map<string, number>();
  #stopWatchdog: () => void;
  #watch: RedisWatch;
  #closed = false;

  private constructor(
    layout: RedisLayout,
    links: Record<Service, Link>,
    safeUrl: string,
    timeouts: { commandTimeoutMs: number; waitReplicas: number; waitTimeoutMs: number },
    subscriber: SubscriberOptions,
  ) {
    this.#layout = layout;
    this.#links = links;
    this.#unique = [...new Set(Object.values(links))];
    this.#safeUrl = safeUrl;
    this.#commandTimeoutMs = timeouts.commandTimeoutMs;
    this.#waitReplicas = timeouts.waitReplicas;
    this.#waitTimeoutMs = timeouts.waitTimeoutMs;
    this.#tickMs = Math.max(10, Math.floor(timeouts.commandTimeoutMs / 5));
    this.#stopWatchdog = backgroundInterval(() => this.#dropStalledConnections(), this.#tickMs);
    this.#watch = new RedisWatch(
      layout.prefix,
      (service, key, command) =>
        this.#run(service, key, command, () => `Cannot read ${service} key ${quote(key)}`),
      subscriber,
    );
  }

  /**
   * Connects (to every database of the layout, or to the cluster) and returns the backend; the
   * same as {@linkcode openRedisBackend}.
   *
   * @param options The URL, the layout and the timeouts.
   * @returns The connected backend; call `close()` when done.
   * @throws {UnavailableError} When Redis cannot be reached (the message names the URL, never
   * the password).
   * @throws {InvalidArgumentError} When the URL is not a `redis://` or `rediss://` URL (or a
   * list of them with a cluster), the layout is unknown or `databases` with a cluster, the
   * prefix holds braces, or a timeout or replica count is out of range.
   *
   * @example
   * ```ts ignore
   * import { RedisBackend } from "@purple/server/backends/redis";
   *
   * const backend = await RedisBackend.open({ url: "redis://127.0.0.1:6379" });
   * await backend.close();
   * ```
   */
  static async open(options: RedisBackendOptions): Promise<RedisBackend> {
    const cluster = flag("cluster", options.cluster);
    const layoutName = resolveLayoutName(options.layout, cluster);
    const connectTimeoutMs = milliseconds("connectTimeoutMs", options.connectTimeoutMs, 1000);
    const commandTimeoutMs = milliseconds("commandTimeoutMs", options.commandTimeoutMs, 1000);
    const waitReplicas = replicas(options.waitReplicas);
    const waitTimeoutMs = milliseconds(
      "waitTimeoutMs",
      options.waitTimeoutMs,
      Math.min(DEFAULT_WAIT_TIMEOUT_MS, commandTimeoutMs / 2),
    );
    if (waitReplicas > 0 && waitTimeoutMs >= commandTimeoutMs) {
      throw new InvalidArgumentError(
        `Bad 'waitTimeoutMs': it must be shorter than 'commandTimeoutMs' (${commandTimeoutMs} ms), ` +
          `since WAIT holds its connection, found ${waitTimeoutMs}`,
      );
    }
    if (!cluster && options.url.includes(",")) {
      throw new InvalidArgumentError(
        "Bad Redis URL: several comma-separated URLs name the seed nodes of a Redis Cluster; " +
          "set 'cluster' (--redis-cluster) or give one URL",
      );
    }
    const endpoints = cluster ? parseClusterUrls(options.url) : [parseRedisUrl(options.url)];
    const safeUrl = endpoints.map((endpoint) => endpoint.safeUrl).join(",");
    const layout = redisLayout(layoutName, options.prefix ?? "", endpoints[0].database);
    const links = {} as Record<Service, Link>;
    const tls = flag("insecureTls", options.insecureTls) ? { rejectUnauthorized: false } : {};
    if (cluster) {
      const link = new ClusterLink(endpoints, connectTimeoutMs, tls);
      for (const service of SERVICES) links[service] = link;
    } else {
      const byDatabase = new Map<number, RedisLink>();
      for (const service of SERVICES) {
        const db = layout.database(service);
        if (!byDatabase.has(db)) {
          byDatabase.set(db, createLink(endpoints[0], db, connectTimeoutMs, tls));
        }
        links[service] = byDatabase.get(db)!;
      }
    }
    const unique = [...new Set(Object.values(links))];
    try {
      await connectAll(unique, connectTimeoutMs);
    } catch (error) {
      await Promise.all(unique.map((link) => link.close(connectTimeoutMs)));
      const reason = error instanceof Error ? error.message : String(error);
      const what = cluster ? "Redis Cluster" : "Redis";
      throw new UnavailableError(`Cannot connect to ${what} at ${safeUrl}: ${reason}`, {
        cause: error,
      });
    }
    const first = endpoints[0];
    const clusterLink = cluster ? links.cache as ClusterLink : undefined;
    return new RedisBackend(layout, links, safeUrl, {
      commandTimeoutMs,
      waitReplicas,
      waitTimeoutMs,
    }, {
      // A PUBLISH reaches every node of a cluster: the subscriber may connect to any of them.
      nodes: () => [
        ...(clusterLink?.client.nodes("all") ?? []).map(({ options }) => ({
          host: options.host!,
          port: options.port!,
        })),
        ...endpoints.map(({ host, port }) => ({ host, port })),
      ],
      redisOptions: {
        username: first.username,
        password: first.password,
        tls: first.tls ? tls : undefined,
        connectTimeout: connectTimeoutMs,
      },
    });
  }

  /** Returns the value, or throws `NotFoundError` when absent or expired. */
  cacheGet(key: string): Promise<string> {
    return this.#run(
      "cache",
      key,
      (redis, k) => redis.get(k),
      () => `Cannot get cache key ${quote(key)}`,
    )
      .then((value) => value ?? Promise.reject(notFound("cache", key)));
  }

  /** Stores the value with `SET key value EX ttlSeconds`. */
  cacheSet(key: string, value: string, ttlSeconds: number): Promise<void> {
    return this.#write(
      "cache",
      key,
      (k) => ["set", k, value, "EX", ttlSeconds],
      () => `Cannot set cache key ${quote(key)}`,
    ).then(done);
  }

  /** Adds `amount` with `INCRBY`; Redis refuses a result outside int64. */
  counterIncrement(key: string, amount: bigint): Promise<bigint> {
    return this.#write(
      "counters",
      key,
      (k) => ["incrby", k, amount.toString()],
      () => `Cannot increment counter ${quote(key)} by ${amount}`,
    ).then((reply) => BigInt(reply as string));
  }

  /** Returns the counter, 0n when absent. */
  counterGet(key: string): Promise<bigint> {
    return this.#run(
      "counters",
      key,
      (redis, k) => redis.get(k),
      () => `Cannot get counter ${quote(key)}`,
    ).then((raw) => parseCounter(key, raw));
  }

  /** Returns the flag (read as Go's `strconv.ParseBool` does), false when absent. */
  flagGet(key: string): Promise<boolean> {
    return this.#run(
      "flags",
      key,
      (redis, k) => redis.get(k),
      () => `Cannot get flag ${quote(key)}`,
    )
      .then((raw) => parseFlag(key, raw));
  }

  /** Stores the string `true` or `false`. */
  flagSet(key: string, value: boolean): Promise<void> {
    return this.#write(
      "flags",
      key,
      (k) => ["set", k, value ? "true" : "false"],
      () => `Cannot set flag ${quote(key)}`,
    ).then(done);
  }

  /**
   * Returns a copy of the stored bytes and their version: the SHA-1 of the bytes (so a value
   * the original Go Purple wrote has one too), or throws `NotFoundError`.
   */
  kvGetEntry(key: string): Promise<KvEntry> {
    return this.#run(
      "kv",
      key,
      (redis, k) => redis.getBuffer(k),
      () => `Cannot get KV key ${quote(key)}`,
    )
      .then((value) =>
        value === null
          ? Promise.reject(notFound("kv", key))
          : { value: new Uint8Array(value), version: versionOf(value) }
      );
  }

  /** Stores a copy of the bytes; with a condition, one script checks it and writes. */
  kvPut(key: string, value: Uint8Array, condition?: KvCondition): Promise<void> {
    const copy = Buffer.from(value); // the caller may reuse its array before the write happens
    if (condition !== undefined) return this.#conditional("put", key, condition, copy);
    return this.#write("kv", key, (k) => ["set", k, copy], () => `Cannot put KV key ${quote(key)}`)
      .then(done);
  }

  /** Deletes the value, or throws `NotFoundError` when absent; if the condition holds. */
  kvDelete(key: string, condition?: KvCondition): Promise<void> {
    if (condition !== undefined) return this.#conditional("delete", key, condition);
    return this.#write("kv", key, (k) => ["del", k], () => `Cannot delete KV key ${quote(key)}`)
      .then((deleted) => Number(deleted) === 0 ? Promise.reject(notFound("kv", key)) : undefined);
  }

  /** Deletes the entry, or throws `NotFoundError` when absent (or expired). */
  cacheDelete(key: string): Promise<void> {
    return this.#delete("cache", key, "cache key");
  }

  /** Deletes the counter, or throws `NotFoundError` when absent. */
  counterDelete(key: string): Promise<void> {
    return this.#delete("counters", key, "counter");
  }

  /** Deletes the flag, or throws `NotFoundError` when it was never set. */
  flagDelete(key: string): Promise<void> {
    return this.#delete("flags", key, "flag");
  }

  /** Deletes the whole set, or throws `NotFoundError` when it holds no item. */
  setDelete(set: string): Promise<void> {
    return this.#delete("sets", set, "set");
  }

  /** Lists the keys of the entries that have not expired (`SCAN`). */
  cacheList(query: ListQuery): Promise<KeyPage> {
    return this.#list("cache", query);
  }

  /** Lists the keys of the counters (`SCAN`). */
  counterList(query: ListQuery): Promise<KeyPage> {
    return this.#list("counters", query);
  }

  /** Lists the keys of the flags (`SCAN`). */
  flagList(query: ListQuery): Promise<KeyPage> {
    return this.#list("flags", query);
  }

  /** Lists the keys of the values (`SCAN`). */
  kvList(query: ListQuery): Promise<KeyPage> {
    return this.#list("kv", query);
  }

  /** Lists the names of the sets (`SCAN`). */
  setList(query: ListQuery): Promise<KeyPage> {
    return this.#list("sets", query);
  }

  /**
   * Runs the operations all or nothing (see `_redis_atomic.ts`): one script reads the keys,
   * the batch runs over that snapshot here, one script writes the changes if no key changed in
   * between (else it runs again). On a cluster every key must be in one hash slot.
   */
  async atomic(operations: readonly BackendOperation[]): Promise<unknown[]> {
    const keys = touchedKeys(operations, this.#layout);
    if (keys.length === 0) return [];
    if (this.#unique[0] instanceof ClusterLink) oneSlot("Cannot run the atomic batch", keys);
    const redisKeys = keys.map(({ redisKey }) => redisKey);
    const anchor = keys[0].service;
    const describe = () => `Cannot run the atomic batch of ${operations.length} operations`;
    for (let attempt = 1; attempt <= MAX_ATOMIC_ATTEMPTS; attempt++) {
      const snapshot = await this.#run(
        anchor,
        keys[0].key,
        (redis) =>
          // ioredis makes a Buffer variant of every command; its types lack EVAL's.
          (redis as unknown as { evalBuffer: (...args: unknown[]) => Promise<unknown> })
            .evalBuffer(READ_STATE, redisKeys.length, ...redisKeys, ...readArguments(keys)),
        describe,
      ) as Array<[Buffer, Buffer | null | Buffer[]]>;
      const { results, applyArguments } = runOver(
        operations,
        keys,
        snapshot.map(([fingerprint, value]) => [fingerprint.toString(), value]),
      );
      const written = await this.#write(
        anchor,
        keys[0].key,
        () => ["eval", APPLY, redisKeys.length, ...redisKeys, ...applyArguments],
        describe,
      );
      if (Number(written) === 1) {
        for (const { service, key } of keys) this.#published(service, key);
        return results;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, attempt * 2)));
    }
    throw new UnavailableError(
      `${describe()}: its keys changed under it ${MAX_ATOMIC_ATTEMPTS} times in a row`,
    );
  }

  /**
   * Every entry, a page at a time: `SCAN` for each service's keys (on every master of a
   * cluster), then their values in pipelines; never `KEYS`, never a long command (see
   * `_export_redis.ts`). Keys that hold something Purple cannot read come as unreadable.
   */
  exportEntries(options?: ExportOptions): AsyncIterable<ExportPage> {
    const links = this.#links;
    return pages(
      readRedis({
        layout: this.#layout,
        clients: (service) => {
          const link = links[service];
          return link instanceof ClusterLink ? link.client.nodes("master") : [link.client];
        },
        run: (service, call) =>
          this.#run(service, "", () => call(), () => `Cannot export the ${service}`),
      }),
      options,
    );
  }

  /**
   * Writes the entries at once (ioredis sends the commands of one turn in one write per
   * connection, or per node of a cluster): `SET` (with `PX` for a cache entry's TTL), a set
   * replaced by one script (`DEL`, `SADD`). Each entry is one key, so on a cluster each goes
   * to its own slot's master. With `waitReplicas`, each waits for its replicas as writes do.
   */
  restore(entries: readonly StoredEntry[]): Promise<void> {
    // On a cluster, ioredis (cluster-key-slot) computes another slot than Redis for a key whose
    // first braces are empty (`cache:{}x}`: a Purple key that starts with `}`), and follows the
    // MOVED reply only when its command travels alone: such entries go one at a time, last.
    const cluster = this.#unique[0] instanceof ClusterLink;
    let alone = Promise.resolve();
    const written = restoreAll(entries, (entry) => {
      const write = () => this.#restoreOne(entry);
      if (!cluster || !emptyTag(this.#layout.key(entry.service, entry.key))) return write();
      const turn = alone.then(() => new Promise((resolve) => setTimeout(resolve, 0))).then(write);
      alone = turn.then(() => {}, () => {});
      return turn;
    });
    // Watchers are told once every write of the batch settled (written or not: a write whose
    // outcome is unknown may have been applied), not after each write as usual: a PUBLISH sent
    // in the same tick as a write that must travel alone would share its pipeline.
    const tell = () =>
      Promise.all(entries.map(({ service, key }) => this.#published(service, key)));
    return written.then(async () => {
      await tell();
    }, async (error) => {
      await tell();
      throw error;
    });
  }

  /** Writes one entry of a restore (its watchers are told by `restore`). */
  #restoreOne(entry: StoredEntry): Promise<unknown> {
    const { key } = entry;
    const describe = () => `Cannot import ${entry.service} key ${quote(key)}`;
    switch (entry.service) {
      case "cache": {
        const { value, ttlMs } = entry;
        return this.#send(
          "cache",
          key,
          (k) => ttlMs === null ? ["set", k, value] : ["set", k, value, "PX", ttlMs],
          describe,
        );
      }
      case "counters":
        return this.#send("counters", key, (k) => ["set", k, entry.value.toString()], describe);
      case "flags":
        return this.#send("flags", key, (k) => ["set", k, String(entry.value)], describe);
      case "kv": {
        const bytes = Buffer.from(entry.value);
        return this.#send("kv", key, (k) => ["set", k, bytes], describe);
      }
      case "sets": {
        const items = entry.value;
        return this.#send("sets", key, (k) => ["eval", REPLACE_SET, 1, k, ...items], describe);
      }
    }
  }

  /** Returns the sorted items, empty when absent. */
  setGet(set: string): Promise<string[]> {
    return this.#run(
      "sets",
      set,
      (redis, k) => redis.smembers(k),
      () => `Cannot get set ${quote(set)}`,
    )
      .then(sortItems);
  }

  /**
   * Adds the item and returns the sorted items: `SADD` and `SMEMBERS` in one script; with
   * `maxItems`, the script checks `SISMEMBER` and `SCARD` first (atomic in Redis).
   */
  setAdd(set: string, item: string, maxItems?: number): Promise<string[]> {
    const limited = maxItems !== undefined && maxItems !== Infinity;
    return this.#write(
      "sets",
      set,
      (k) => limited ? ["eval", ADD_WITHIN_LIMIT, 1, k, item, maxItems] : ["eval", ADD, 1, k, item],
      () => `Cannot add item ${quote(item)} to set ${quote(set)}`,
    ).then((reply) => {
      if (!Array.isArray(reply)) throw setFull(set, item, Number(reply), maxItems!);
      return sortItems(reply as string[]);
    });
  }

  /** Removes the item and returns the sorted items: `SREM` and `SMEMBERS` in one script. */
  setRemove(set: string, item: string): Promise<string[]> {
    return this.#write(
      "sets",
      set,
      (k) => ["eval", REMOVE, 1, k, item],
      () => `Cannot remove item ${quote(item)} from set ${quote(set)}`,
    ).then((reply) => sortItems(reply as string[]));
  }

  /**
   * Watches keys: every Purple process on this Redis publishes to a key's channel after writing
   * it, and the watchers' process, subscribed to the channels of the watched keys, reads the
   * key again (see `_watch_redis.ts` and docs/watch.md).
   */
  watch(targets: readonly WatchTarget[], signal?: AbortSignal): AsyncIterableIterator<WatchChange> {
    return this.#watch.open(targets, signal);
  }

  /** Closes every connection (politely with `QUIT` when connected) and stops all timers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch.close();
    this.#stopWatchdog();
    const timeoutMs = this.#commandTimeoutMs;
    await Promise.all(this.#unique.map((link) => link.close(timeoutMs)));
  }

  /** Deletes a key of a service, or throws `NotFoundError` when there is none. */
  #delete(service: Service, key: string, what: Parameters<typeof absent>[0]): Promise<void> {
    return this.#write(service, key, (k) => ["del", k], () => `Cannot delete ${what} ${quote(key)}`)
      .then((deleted) => Number(deleted) === 0 ? Promise.reject(absent(what, key)) : undefined);
  }

  /** A KV put or delete with a condition, checked and done in one script. */
  async #conditional(
    action: "put" | "delete",
    key: string,
    condition: KvCondition,
    value?: Buffer,
  ): Promise<void> {
    const reply = await this.#write(
      "kv",
      key,
      (k) => [
        "eval",
        CONDITIONAL_WRITE,
        1,
        k,
        action,
        condition.ifMatch ?? "",
        condition.ifNoneMatch ? "1" : "0",
        ...(value === undefined ? [] : [value]),
      ],
      () => `Cannot ${action} KV key ${quote(key)}`,
    );
    if (reply === "absent") throw notFound("kv", key);
    if (Array.isArray(reply)) {
      const version = String(reply[1]);
      checkCondition(action, key, condition, version === "" ? undefined : version);
    }
  }

  /**
   * A page of a service's keys: `SCAN ... MATCH` (never `KEYS`, which blocks Redis), from the
   * cursor's position, on every master of a cluster in turn. Keys that a SCAN gave beyond the
   * page's limit travel in the cursor. Redis gives each key present during the whole listing at
   * least once, in no order (a key may come twice).
   */
  async #list(service: Service, query: ListQuery): Promise<KeyPage> {
    const link = this.#links[service];
    const nodes = link instanceof ClusterLink
      ? link.client.nodes("master")
        .map((redis) => ({ redis, name: `${redis.options.host}:${redis.options.port}` }))
        .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
      : undefined;
    const start: ScanState = query.cursor === undefined
      ? { c: "0", n: nodes?.[0]?.name }
      : decodeCursor("redis", query.cursor, isScanState);
    let { c: cursor, n: node, d: done = false } = start;
    const carried = [...start.k ?? []];
    const keys: string[] = [];
    const pattern = this.#layout.match(service, query.prefix);
    const describe = () => `Cannot list the ${service} keys`;
    for (let scans = 0;; scans++) {
      keys.push(...carried.splice(0, query.limit - keys.length));
      if (done && carried.length === 0) return { keys };
      if (keys.length === query.limit || done || scans === MAX_SCANS_PER_PAGE) {
        return { keys, cursor: encodeCursor("redis", scanState(cursor, node, done, carried)) };
      }
      const redis = nodes?.find(({ name }) => name === node)?.redis;
      const [next, found] = await this.#run(
        service,
        "",
        (client) =>
          (redis ?? client).scan(cursor, "MATCH", pattern, "COUNT", Math.max(query.limit, 100)),
        describe,
      ) as [string, string[]];
      for (const redisKey of found) {
        const key = this.#layout.purpleKey(service, redisKey);
        if (key !== undefined && key.startsWith(query.prefix)) carried.push(key);
      }
      cursor = String(next);
      if (cursor !== "0") continue;
      // This node (or the only Redis) is scanned to its end: the next master, or the end.
      node = nodes?.find(({ name }) => name > (node ?? ""))?.name;
      done = node === undefined;
    }
  }

  /**
   * Runs one write: the command alone, or with `waitReplicas`, the command and `WAIT` in one
   * pipeline on the key's connection (WAIT covers the writes its connection sent before it).
   *
   * WAIT blocks its connection until it returns, so while a master lacks replicas every write
   * would hold the connection for the whole WAIT timeout, one after the other. Instead, once a
   * write on a master was not acknowledged in time, writes to that master are refused before
   * being sent (not written, UnavailableError) for the next `waitTimeoutMs`; then one more
   * write tries again.
   */
  #write(
    service: Service,
    key: string,
    command: (redisKey: string) => Command,
    describe: () => string,
  ): Promise<unknown> {
    const written = this.#send(service, key, command, describe);
    // Once the reply came, whatever it was (a write that failed may have been applied).
    const publish = () => this.#published(service, key);
    written.then(publish, publish);
    return written;
  }

  /** Tells the watchers of every Purple process on this Redis that a key was written. */
  #published(service: Service, key: string): Promise<void> {
    const channel = this.#watch.channel(service, key);
    return (this.#links[service].client as Redis).publish(channel, "").then(() => {}, () => {});
  }

  /** Sends one write (see `#write`). */
  #send(
    service: Service,
    key: string,
    command: (redisKey: string) => Command,
    describe: () => string,
  ): Promise<unknown> {
    const replicas = this.#waitReplicas;
    if (replicas === 0) {
      return this.#run(service, key, (redis, k) => redis.call(...command(k)), describe);
    }
    const timeoutMs = this.#waitTimeoutMs;
    return this.#run(service, key, async (redis, k) => {
      const master = this.#masterOf(redis, k);
      const until = this.#shortOfReplicas.get(master) ?? 0;
      if (Date.now() < until) {
        throw new UnavailableError(
          `${describe()}: not written, since a write on its Redis master was not acknowledged ` +
            `by ${replicas} replicas within ${timeoutMs} ms moments ago`,
        );
      }
      const [name, ...args] = command(k);
      const send = () => redis.pipeline().call(name, ...args).wait(replicas, timeoutMs).exec();
      let results = await send();
      // ioredis follows a MOVED reply only when every command of a pipeline got it, and WAIT
      // (keyless) never does: read the slot table again and send once more (MOVED means the
      // write was refused, so sending it again cannot apply it twice).
      if (isMoved(results?.[0]?.[0]) && "refreshSlotsCache" in redis) {
        await new Promise<void>((resolve) => redis.refreshSlotsCache(() => resolve()));
        results = await send();
      }
      if (!results) throw new Error("the pipeline was aborted");
      const [[error, reply], [waitError, acknowledged]] = results;
      if (error) throw error;
      if (waitError) throw waitError;
      if (Number(acknowledged) < replicas) {
        this.#shortOfReplicas.set(master, Date.now() + timeoutMs);
        throw new UnavailableError(
          `${describe()}: written, but ${acknowledged} of ${replicas} replicas acknowledged it ` +
            `within ${timeoutMs} ms (the write may be lost if its master fails now)`,
        );
      }
      this.#shortOfReplicas.delete(master);
      return reply;
    }, describe);
  }

  /** The master a key's commands go to: its node on a cluster (from ioredis' slot table). */
  #masterOf(redis: Redis | Cluster, redisKey: string): string {
    if (!("slots" in redis)) return "";
    const slot = slotOf(redisKey);
    return redis.slots[slot]?.[0] ?? `slot ${slot}`;
  }

  /**
   * Runs one command on the connection of a service's key, counts it for the watchdog and turns
   * a failure into a typed error. `command` gets the client and the Redis key; `describe` names
   * the action for messages and runs only on failure.
   */
  #run<T>(
    service: Service,
    key: string,
    command: (redis: Redis | Cluster, redisKey: string) => Promise<T>,
    describe: () => string,
  ): Promise<T> {
    const link = this.#links[service];
    if (link.pending++ === 0) link.progressAt = Date.now();
    let reply: Promise<T>;
    try {
      reply = command(link.client, this.#layout.key(service, key));
    } catch (error) {
      reply = Promise.reject(error);
    }
    return reply.then((value) => {
      link.pending--;
      link.progressAt = Date.now();
      return value;
    }, (error) => {
      link.pending--;
      link.progressAt = Date.now();
      throw toPurpleError(error, describe(), this.#unavailable(link, error));
    });
  }

  #unavailable(link: Link, error: unknown): string {
    if (link instanceof ClusterLink) {
      // The cluster's last problem may be another node's: the error of this call says more.
      const reason = link.explain(error, 2 * this.#commandTimeoutMs);
      return `Redis Cluster at ${this.#safeUrl} is unavailable (${reason})`;
    }
    const problem = link.problem ??
      (link.client.status === "ready" ? "the connection was lost" : "not connected");
    return `Redis at ${this.#safeUrl} is unavailable (${problem})`;
  }

  /**
   * When a connection got no reply for `commandTimeoutMs` while commands waited (and this process
   * was not itself too busy to read the replies), Redis hangs
   * (it serves one command at a time, so every connection is stuck): drops every connection,
   * which fails the waiting commands, makes the next ones fail at once, and reconnects. On a
   * cluster, only the nodes that hang are dropped.
   */
  #dropStalledConnections(): void {
    const now = Date.now();
    const timeout = this.#commandTimeoutMs;
    const links = this.#unique;
    // A late look means this process was busy (a burst of work): replies may wait unread in the
    // sockets. Count from now instead of blaming Redis for the process' own delay.
    const late = now - this.#lastTick > 2 * this.#tickMs;
    this.#lastTick = now;
    if (late) {
      for (const link of links) {
        if (link instanceof ClusterLink) link.forgetHeads();
        else link.progressAt = now;
      }
      return;
    }
    if (links[0] instanceof ClusterLink) return links[0].dropStalledNodes(now, timeout);
    if (!links.some((link) => link.pending > 0 && now - link.progressAt > timeout)) return;
    for (const link of links) {
      link.progressAt = now;
      if (link.client.status === "ready") link.drop(`no reply within ${timeout} ms`);
    }
  }
}

/**
 * Connects to a Redis server or a Redis Cluster and returns the backend. The default layout is
 * the original Go Purple's (cache in database 0, counters 1, flags 2, kv 3, sets 4); a cluster
 * uses the `prefixed` layout.
 *
 * @param options The URL (`redis://[user:password@]host:port`, or `rediss://` for TLS; with
 * `cluster`, seed URLs, comma-separated), the layout, the prefix, `WAIT` and the timeouts.
 * @returns The connected backend; call `close()` when done.
 * @throws {UnavailableError} When Redis cannot be reached (the message names the URL, never
 * the password).
 * @throws {InvalidArgumentError} When an option is bad (see {@linkcode RedisBackend.open}).
 *
 * @example
 * ```ts ignore
 * import { openRedisBackend } from "@purple/server/backends/redis";
 *
 * const backend = await openRedisBackend({ url: "redis://127.0.0.1:6379", commandTimeoutMs: 500 });
 * await backend.flagSet("beta", true);
 * await backend.close();
 * ```
 */
export function openRedisBackend(options: RedisBackendOptions): Promise<RedisBackend> {
  return RedisBackend.open(options);
}

/** Whether a Redis key's first braces are empty (Redis then hashes the whole key). */
function emptyTag(redisKey: string): boolean {
  const open = redisKey.indexOf("{");
  return open !== -1 && redisKey[open + 1] === "}";
}

/** Whether a command's error is a MOVED redirection of Redis Cluster. */
function isMoved(error: Error | null | undefined): boolean {
  return error?.name === "ReplyError" && error.message.startsWith("MOVED ");
}

/** Checks a timeout option. */
function milliseconds(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(
      `Bad '${name}': expected a positive number of milliseconds, found ${value}`,
    );
  }
  return value;
}

/** Checks `waitReplicas`: a whole number from 0 (do not wait). */
function replicas(value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(
      `Bad 'waitReplicas': expected a whole number of replicas (0 for none), found ${value}`,
    );
  }
  return value;
}

function flag(name: string, value: boolean | undefined): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    throw new InvalidArgumentError(`Bad '${name}': expected true or false, found ${value}`);
  }
  return value;
}

function createLink(
  endpoint: RedisEndpoint,
  db: number,
  connectTimeoutMs: number,
  tls: { rejectUnauthorized?: boolean },
): RedisLink {
  return new RedisLink({
    host: endpoint.host,
    port: endpoint.port,
    username: endpoint.username,
    password: endpoint.password,
    tls: endpoint.tls ? tls : undefined,
    db,
    connectTimeout: connectTimeoutMs,
    // Fail fast instead of queueing while disconnected, and fail what was in flight when the
    // connection drops (never resend: INCRBY is not idempotent).
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // Batch the commands of one event-loop turn into one write (several times the throughput
    // of concurrent callers, see tests/redis_test.ts).
    enableAutoPipelining: true,
    // Integer replies as strings, so counters stay exact past 2^53.
    stringNumbers: true,
  });
}

async function connectAll(links: Link[], timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([Promise.all(links.map((link) => link.connect())), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
