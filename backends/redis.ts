/**
 * The Redis backend: Purple's data in a Redis server, laid out exactly as the original Go
 * Purple did, so a Redis it filled is served as it is and several Purple servers can share one
 * Redis.
 *
 * | service  | database | stored as                                   |
 * | -------- | -------- | ------------------------------------------- |
 * | cache    | 0        | a string, `SET key value EX ttl`            |
 * | counters | 1        | an integer string, `INCRBY`                 |
 * | flags    | 2        | the string `true` or `false`                |
 * | kv       | 3        | the raw bytes                               |
 * | sets     | 4        | a Redis set (`SADD`, `SREM`, `SMEMBERS`)    |
 *
 * A Redis that is down or stops answering makes every operation fail fast with
 * `UnavailableError` (no queueing, no waiting), and the backend reconnects by itself when Redis
 * is back. What Redis holds but Purple cannot read (a counter that is not an int64, a flag that
 * is not a boolean, a key of another Redis type) is an `InvalidArgumentError` naming the key.
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
 * @module
 */

import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import { InternalError, InvalidArgumentError, UnavailableError } from "@purple/protocol/errors";
import type { Backend } from "./backend.ts";
import { backgroundInterval, notFound, quote, setFull, sortItems } from "./_util.ts";
import { RedisLink } from "./_redis_link.ts";
import {
  parseCounter,
  parseFlag,
  parseRedisUrl,
  type RedisEndpoint,
  toPurpleError,
} from "./_redis_util.ts";

export type { Backend } from "./backend.ts";

/**
 * Options of {@linkcode openRedisBackend}.
 *
 * @example
 * ```ts
 * import type { RedisBackendOptions } from "@purple/server/backends/redis";
 *
 * const options: RedisBackendOptions = {
 *   url: "rediss://:secret@redis.example.com:6380",
 *   commandTimeoutMs: 2_000,
 *   connectTimeoutMs: 2_000,
 * };
 * console.log(options.url); // then: await openRedisBackend(options)
 * ```
 */
export interface RedisBackendOptions {
  /**
   * The server: `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. The port
   * defaults to 6379. A database number in the path is ignored: the layout fixes databases
   * 0 to 4 (cache, counters, flags, kv, sets).
   */
  url: string;
  /**
   * How long a connection may leave commands without any reply before it is dropped: its
   * waiting commands then fail with `UnavailableError` and it reconnects. Milliseconds, default
   * 1000. It catches a Redis that hangs; a Redis that is stopped is noticed at once.
   */
  commandTimeoutMs?: number;
  /** How long connecting (TCP, TLS, authentication) may take, in milliseconds. Default 1000. */
  connectTimeoutMs?: number;
}

/** Resolves a write's promise to nothing. */
const done = (): void => {};

/**
 * `SADD` unless the set is full: the item count (a number) when refused, else the members.
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

/** The database of each service: the original Go Purple's layout. */
const DATABASES = { cache: 0, counters: 1, flags: 2, kv: 3, sets: 4 } as const;
type Service = keyof typeof DATABASES;

/**
 * Purple's data in Redis, one database per service (see the module doc for the layout).
 * Obtain one with {@linkcode openRedisBackend}, which connects before returning.
 *
 * Counters are exact signed 64-bit integers: Redis refuses an overflow itself, and the value
 * stays unchanged. Set changes and the read of the resulting items run in one `MULTI`, so the
 * items returned are the state right after the change.
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
  #links: Record<Service, RedisLink>;
  #endpoint: RedisEndpoint;
  #commandTimeoutMs: number;
  #stopWatchdog: () => void;
  #closed = false;

  private constructor(
    links: Record<Service, RedisLink>,
    endpoint: RedisEndpoint,
    commandTimeoutMs: number,
  ) {
    this.#links = links;
    this.#endpoint = endpoint;
    this.#commandTimeoutMs = commandTimeoutMs;
    this.#stopWatchdog = backgroundInterval(
      () => this.#dropStalledConnections(),
      Math.max(10, Math.floor(commandTimeoutMs / 5)),
    );
  }

  /**
   * Connects to every database and returns the backend; the same as
   * {@linkcode openRedisBackend}.
   *
   * @param options The URL and the timeouts.
   * @returns The connected backend; call `close()` when done.
   * @throws {UnavailableError} When Redis cannot be reached (the message names the URL, never
   * the password).
   * @throws {InvalidArgumentError} When the URL is not a `redis://` or `rediss://` URL, or a
   * timeout is not a positive number of milliseconds.
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
    const endpoint = parseRedisUrl(options.url);
    const connectTimeoutMs = milliseconds("connectTimeoutMs", options.connectTimeoutMs);
    const commandTimeoutMs = milliseconds("commandTimeoutMs", options.commandTimeoutMs);
    const links = {} as Record<Service, RedisLink>;
    for (const service of Object.keys(DATABASES) as Service[]) {
      links[service] = createLink(endpoint, DATABASES[service], connectTimeoutMs);
    }
    try {
      await connectAll(Object.values(links), connectTimeoutMs);
    } catch (error) {
      await Promise.all(Object.values(links).map((link) => link.close(connectTimeoutMs)));
      const reason = error instanceof Error ? error.message : String(error);
      throw new UnavailableError(`Cannot connect to Redis at ${endpoint.safeUrl}: ${reason}`, {
        cause: error,
      });
    }
    return new RedisBackend(links, endpoint, commandTimeoutMs);
  }

  /** Returns the value, or throws `NotFoundError` when absent or expired. */
  cacheGet(key: string): Promise<string> {
    return this.#run("cache", (redis) => redis.get(key), () => `Cannot get cache key ${quote(key)}`)
      .then((value) => value ?? Promise.reject(notFound("cache", key)));
  }

  /** Stores the value with `SET key value EX ttlSeconds`. */
  cacheSet(key: string, value: string, ttlSeconds: number): Promise<void> {
    return this.#run(
      "cache",
      (redis) => redis.set(key, value, "EX", ttlSeconds),
      () => `Cannot set cache key ${quote(key)}`,
    ).then(done);
  }

  /** Adds `amount` with `INCRBY`; Redis refuses a result outside int64. */
  counterIncrement(key: string, amount: bigint): Promise<bigint> {
    return this.#run(
      "counters",
      (redis) => redis.incrby(key, amount.toString()),
      () => `Cannot increment counter ${quote(key)} by ${amount}`,
    ).then(BigInt);
  }

  /** Returns the counter, 0n when absent. */
  counterGet(key: string): Promise<bigint> {
    return this.#run(
      "counters",
      (redis) => redis.get(key),
      () => `Cannot get counter ${quote(key)}`,
    )
      .then((raw) => parseCounter(key, raw));
  }

  /** Returns the flag (read as Go's `strconv.ParseBool` does), false when absent. */
  flagGet(key: string): Promise<boolean> {
    return this.#run("flags", (redis) => redis.get(key), () => `Cannot get flag ${quote(key)}`)
      .then((raw) => parseFlag(key, raw));
  }

  /** Stores the string `true` or `false`. */
  flagSet(key: string, value: boolean): Promise<void> {
    return this.#run(
      "flags",
      (redis) => redis.set(key, value ? "true" : "false"),
      () => `Cannot set flag ${quote(key)}`,
    ).then(done);
  }

  /** Returns a copy of the stored bytes, or throws `NotFoundError`. */
  kvGet(key: string): Promise<Uint8Array> {
    return this.#run("kv", (redis) => redis.getBuffer(key), () => `Cannot get KV key ${quote(key)}`)
      .then((value) =>
        value === null ? Promise.reject(notFound("kv", key)) : new Uint8Array(value)
      );
  }

  /** Stores a copy of the bytes. */
  kvPut(key: string, value: Uint8Array): Promise<void> {
    const copy = Buffer.from(value); // the caller may reuse its array before the write happens
    return this.#run("kv", (redis) => redis.set(key, copy), () => `Cannot put KV key ${quote(key)}`)
      .then(done);
  }

  /** Deletes the value, or throws `NotFoundError` when absent. */
  kvDelete(key: string): Promise<void> {
    return this.#run("kv", (redis) => redis.del(key), () => `Cannot delete KV key ${quote(key)}`)
      .then((deleted) => deleted === 0 ? Promise.reject(notFound("kv", key)) : undefined);
  }

  /** Returns the sorted items, empty when absent. */
  setGet(set: string): Promise<string[]> {
    return this.#run("sets", (redis) => redis.smembers(set), () => `Cannot get set ${quote(set)}`)
      .then(sortItems);
  }

  /**
   * Adds the item and returns the sorted items: `SADD` and `SMEMBERS` in one `MULTI`; with
   * `maxItems`, one script that also checks `SISMEMBER` and `SCARD` first (atomic in Redis).
   */
  setAdd(set: string, item: string, maxItems?: number): Promise<string[]> {
    if (maxItems === undefined || maxItems === Infinity) return this.#changeSet(set, item, "add");
    const describe = () => `Cannot add item ${quote(item)} to set ${quote(set)}`;
    return this.#run(
      "sets",
      (redis) => redis.eval(ADD_WITHIN_LIMIT, 1, set, item, maxItems) as Promise<unknown>,
      describe,
    ).then((reply) => {
      if (typeof reply === "number") throw setFull(set, item, reply, maxItems);
      return sortItems(reply as string[]);
    });
  }

  /** Removes the item and returns the sorted items: `SREM` and `SMEMBERS` in one `MULTI`. */
  setRemove(set: string, item: string): Promise<string[]> {
    return this.#changeSet(set, item, "remove");
  }

  /** Closes every connection (politely with `QUIT` when connected) and stops all timers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatchdog();
    const timeoutMs = this.#commandTimeoutMs;
    await Promise.all(Object.values(this.#links).map((link) => link.close(timeoutMs)));
  }

  async #changeSet(set: string, item: string, change: "add" | "remove"): Promise<string[]> {
    const describe = () =>
      `Cannot ${change} item ${quote(item)} ${change === "add" ? "to" : "from"} set ${quote(set)}`;
    const results = await this.#run("sets", (redis) => {
      const multi = redis.multi();
      return (change === "add" ? multi.sadd(set, item) : multi.srem(set, item))
        .smembers(set)
        .exec();
    }, describe);
    if (results === null) throw new InternalError(`${describe()}: Redis aborted the transaction`);
    for (const [error] of results) {
      if (error) throw toPurpleError(error, describe(), this.#unavailable(this.#links.sets));
    }
    return sortItems(results[1][1] as string[]);
  }

  /**
   * Runs one command on a service's connection, counts it for the watchdog and turns a failure
   * into a typed error. `describe` names the action for messages; it runs only on failure.
   */
  #run<T>(
    service: Service,
    command: (redis: Redis) => Promise<T>,
    describe: () => string,
  ): Promise<T> {
    const link = this.#links[service];
    if (link.pending++ === 0) link.progressAt = Date.now();
    let reply: Promise<T>;
    try {
      reply = command(link.client);
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
      throw toPurpleError(error, describe(), this.#unavailable(link));
    });
  }

  #unavailable(link: RedisLink): string {
    const problem = link.problem ??
      (link.client.status === "ready" ? "the connection was lost" : "not connected");
    return `Redis at ${this.#endpoint.safeUrl} is unavailable (${problem})`;
  }

  /**
   * When a connection got no reply for `commandTimeoutMs` while commands waited, Redis hangs
   * (it serves one command at a time, so every connection is stuck): drops every connection,
   * which fails the waiting commands, makes the next ones fail at once, and reconnects.
   */
  #dropStalledConnections(): void {
    const now = Date.now();
    const links = Object.values(this.#links);
    const timeout = this.#commandTimeoutMs;
    if (!links.some((link) => link.pending > 0 && now - link.progressAt > timeout)) return;
    for (const link of links) {
      link.progressAt = now;
      if (link.client.status === "ready") link.drop(`no reply within ${timeout} ms`);
    }
  }
}

/**
 * Connects to a Redis server and returns the backend, using the original Go Purple's layout
 * (cache in database 0, counters 1, flags 2, kv 3, sets 4). The database number of the URL is
 * ignored.
 *
 * @param options The URL (`redis://[user:password@]host:port`, or `rediss://` for TLS) and the
 * timeouts.
 * @returns The connected backend; call `close()` when done.
 * @throws {UnavailableError} When Redis cannot be reached (the message names the URL, never
 * the password).
 * @throws {InvalidArgumentError} When the URL is not a `redis://` or `rediss://` URL, or a
 * timeout is not a positive number of milliseconds.
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

/** Checks a timeout option; the default is 1000 ms. */
function milliseconds(name: string, value: number | undefined): number {
  if (value === undefined) return 1000;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(
      `Bad '${name}': expected a positive number of milliseconds, found ${value}`,
    );
  }
  return value;
}

function createLink(endpoint: RedisEndpoint, db: number, connectTimeoutMs: number): RedisLink {
  return new RedisLink({
    host: endpoint.host,
    port: endpoint.port,
    username: endpoint.username,
    password: endpoint.password,
    tls: endpoint.tls ? {} : undefined,
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
    stringNumbers: db === DATABASES.counters,
  });
}

async function connectAll(links: RedisLink[], timeoutMs: number): Promise<void> {
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
