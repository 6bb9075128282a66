/**
 * The operations contract: the operations of Purple, implemented by every backend and every
 * client: the original twelve (get and set of the cache, counters, flags, KV values and sets),
 * deletes for every service, listing keys by prefix in pages, versions of KV values with
 * compare-and-set, batches (in order, or atomic), and watching keys for changes.
 *
 * Counters are signed 64-bit integers. They come back as `bigint` (never rounded); an amount
 * may be given as a `bigint` or as a `number` that is a safe integer (an unsafe or fractional
 * number is refused with `InvalidArgumentError`, never rounded). A result outside
 * `[-2^63, 2^63-1]` is an `InvalidArgumentError`, never a wrap.
 *
 * @example Using any implementation
 * ```ts
 * import type { Operations } from "@purple/protocol";
 *
 * async function visit(ops: Operations, page: string): Promise<bigint> {
 *   return await ops.counterIncrement(`visits:${page}`, 1);
 * }
 * ```
 *
 * @module
 */

import type { KeyService } from "./listing.ts";

/**
 * An amount to add to a counter: a `bigint`, or a `number` that is a safe integer.
 *
 * @example
 * ```ts
 * import type { CounterAmount } from "@purple/protocol";
 *
 * const exact: CounterAmount = 9007199254740993n; // past 2^53: a bigint stays exact
 * const small: CounterAmount = 100; // a safe integer number is fine too
 * console.log(exact, small);
 * ```
 */
export type CounterAmount = bigint | number;

/**
 * A KV value: raw bytes, or a string stored as its UTF-8 bytes.
 *
 * @example
 * ```ts
 * import type { KvValue } from "@purple/protocol";
 *
 * const bytes: KvValue = new Uint8Array([0x89, 0x50, 0x4e, 0x47]);
 * const text: KvValue = "hello"; // stored as its UTF-8 bytes
 * console.log(bytes.length, text.length); // 4 5
 * ```
 */
export type KvValue = Uint8Array | string;

/**
 * Which keys a listing asks for: the keys (or set names) that start with `prefix`, at most
 * `limit` of them (default 100, at most 1000), after the page that gave `cursor`.
 *
 * @example
 * ```ts
 * import type { ListOptions } from "@purple/protocol";
 *
 * const firstPage: ListOptions = { prefix: "user:", limit: 50 };
 * console.log(firstPage);
 * ```
 */
export interface ListOptions {
  /** Only keys that start with this (default: every key). */
  prefix?: string;
  /** The most keys in the page: 1 to 1000, default 100. */
  limit?: number;
  /** The `cursor` of the previous page; absent for the first page. */
  cursor?: string;
}

/**
 * One page of a listing: its keys, and the cursor of the next page (absent on the last page).
 * Memory and disk list in key order (UTF-16 code units for memory, UTF-8 bytes for disk: the
 * same order but for keys past U+FFFF) and give each key present during the whole listing
 * exactly once; Redis lists in no order and may give a key twice (the clients' `keys()`
 * iterators drop repeats).
 *
 * @example
 * ```ts
 * import type { KeyPage } from "@purple/protocol";
 *
 * const page: KeyPage = { keys: ["user:1", "user:2"], cursor: "opaque" };
 * console.log(page.keys.length); // 2
 * ```
 */
export interface KeyPage {
  /** The keys (or set names) of the page. */
  keys: string[];
  /** Where the next page starts, opaque; absent when this is the last page. */
  cursor?: string;
}

/**
 * A KV value with its version: an opaque string that changes whenever the value changes, for
 * compare-and-set (`kvPut(key, value, { ifMatch: version })`).
 *
 * @example
 * ```ts
 * import type { KvEntry } from "@purple/protocol";
 *
 * const entry: KvEntry = { value: new TextEncoder().encode("v1"), version: "a1" };
 * console.log(entry.version);
 * ```
 */
export interface KvEntry {
  /** The stored bytes. */
  value: Uint8Array;
  /** The value's version. */
  version: string;
}

/**
 * Conditions of a KV write: it happens only if they hold, else it fails with
 * `PreconditionFailedError` and changes nothing.
 *
 * @example
 * ```ts
 * import type { KvWriteOptions } from "@purple/protocol";
 *
 * const onlyIfUnchanged: KvWriteOptions = { ifMatch: "a1" };
 * const onlyIfAbsent: KvWriteOptions = { ifNoneMatch: "*" };
 * console.log(onlyIfUnchanged, onlyIfAbsent);
 * ```
 */
export interface KvWriteOptions {
  /** The version the value must have now (`*`: any, the key must exist). */
  ifMatch?: string;
  /** `*`: the key must not exist (a put then only creates). */
  ifNoneMatch?: "*";
}

/**
 * The keys a watch follows, by service (named as the HTTP routes name them): at most 100 in all
 * (the server's `--max-watch-keys`), each a key as its service's operations take it (a set's
 * name for `sets`). A key named twice is watched once.
 *
 * @example
 * ```ts
 * import type { WatchKeys } from "@purple/protocol";
 *
 * const keys: WatchKeys = { flags: ["dark-mode"], counters: ["signups"], kv: ["config"] };
 * console.log(keys.flags); // ["dark-mode"]
 * ```
 */
export type WatchKeys = { readonly [Service in KeyService]?: readonly string[] };

/**
 * How a watch runs: a signal that ends it (the iteration then rejects with the signal's reason,
 * and everything the watch held is released).
 *
 * @example
 * ```ts
 * import type { WatchOptions } from "@purple/protocol";
 *
 * const options: WatchOptions = { signal: AbortSignal.timeout(60_000) };
 * console.log(options.signal?.aborted); // false
 * ```
 */
export interface WatchOptions {
  /** Ends the watch when it aborts. */
  signal?: AbortSignal;
}

/**
 * A cache entry's state: its value and when it expires (milliseconds since the epoch), or
 * absent (never set, deleted, or expired: a watcher is told when its TTL passes).
 *
 * @example
 * ```ts
 * import type { CacheChange } from "@purple/protocol";
 *
 * const change: CacheChange = {
 *   service: "cache",
 *   key: "session",
 *   exists: true,
 *   value: "a1b2c3",
 *   expiresAt: Date.now() + 60_000,
 * };
 * if (change.exists) console.log(change.value); // "a1b2c3"
 * ```
 */
export type CacheChange =
  | { service: "cache"; key: string; exists: true; value: string; expiresAt: number }
  | { service: "cache"; key: string; exists: false };

/**
 * A counter's state: its value, and whether it exists (an absent counter is 0, as `counterGet`
 * reads it).
 *
 * @example
 * ```ts
 * import type { CounterChange } from "@purple/protocol";
 *
 * const change: CounterChange = { service: "counters", key: "signups", exists: true, value: 42n };
 * console.log(change.value); // 42n
 * ```
 */
export interface CounterChange {
  /** The service. */
  service: "counters";
  /** The counter's key. */
  key: string;
  /** Whether the counter exists (it was incremented, and not deleted since). */
  exists: boolean;
  /** Its value, exact; 0n when absent. */
  value: bigint;
}

/**
 * A flag's state: its value, and whether it is set (an absent flag is false, as `flagGet` reads
 * it; a flag set to false exists).
 *
 * @example
 * ```ts
 * import type { FlagChange } from "@purple/protocol";
 *
 * const change: FlagChange = { service: "flags", key: "dark-mode", exists: true, value: true };
 * console.log(change.value); // true
 * ```
 */
export interface FlagChange {
  /** The service. */
  service: "flags";
  /** The flag's key. */
  key: string;
  /** Whether the flag is set (to true or false). */
  exists: boolean;
  /** Its value; false when absent. */
  value: boolean;
}

/**
 * A KV value's state: its bytes and their version (as `kvGetEntry` gives them), or absent.
 *
 * @example
 * ```ts
 * import type { KvChange } from "@purple/protocol";
 *
 * const change: KvChange = { service: "kv", key: "config", exists: false };
 * console.log(change.exists); // false
 * ```
 */
export type KvChange =
  | { service: "kv"; key: string; exists: true; value: Uint8Array; version: string }
  | { service: "kv"; key: string; exists: false };

/**
 * A set's state: its items, sorted (as `setGet` gives them); empty when it does not exist.
 *
 * @example
 * ```ts
 * import type { SetChange } from "@purple/protocol";
 *
 * const change: SetChange = { service: "sets", key: "team", exists: true, items: ["ann", "bob"] };
 * console.log(change.items.length); // 2
 * ```
 */
export interface SetChange {
  /** The service. */
  service: "sets";
  /** The set's name. */
  key: string;
  /** Whether the set holds any item. */
  exists: boolean;
  /** Its items, sorted; empty when absent. */
  items: string[];
}

/**
 * One state of a watched key: the service, the key, and its state in that service, typed per
 * service (narrow on `service`, then on `exists` for the cache and KV values).
 *
 * @example
 * ```ts
 * import type { WatchChange } from "@purple/protocol";
 *
 * function describe(change: WatchChange): string {
 *   switch (change.service) {
 *     case "counters":
 *       return `${change.key} = ${change.value}`;
 *     case "kv":
 *       return change.exists ? `${change.key} is at version ${change.version}` : "gone";
 *     default:
 *       return `${change.service} ${change.key} ${change.exists ? "set" : "absent"}`;
 *   }
 * }
 * console.log(describe({ service: "counters", key: "hits", exists: true, value: 3n }));
 * ```
 */
export type WatchChange = CacheChange | CounterChange | FlagChange | KvChange | SetChange;

/**
 * One operation of a batch: an operation's name and its arguments. Every operation but the
 * listings and `batch` itself may be in a batch.
 *
 * @example
 * ```ts
 * import type { BatchOperation } from "@purple/protocol";
 *
 * const increment: BatchOperation = { op: "counterIncrement", args: ["hits", 1] };
 * console.log(increment.op);
 * ```
 */
export type BatchOperation = {
  [Op in BatchableName]: { op: Op; args: Readonly<Parameters<Operations[Op]>> };
}[BatchableName];

/**
 * The operations a batch may hold: every operation but the listings, `watch` and `batch`.
 *
 * @example
 * ```ts
 * import type { BatchableName } from "@purple/protocol";
 *
 * const name: BatchableName = "kvPut";
 * console.log(name);
 * ```
 */
export type BatchableName = Exclude<
  keyof Operations,
  "close" | "batch" | "watch" | "cacheList" | "counterList" | "flagList" | "kvList" | "setList"
>;

/**
 * How a batch runs: in order, each operation on its own (the default: one that fails does not
 * stop the others), or `atomic`: all of them or none.
 *
 * @example
 * ```ts
 * import type { BatchOptions } from "@purple/protocol";
 *
 * const transaction: BatchOptions = { atomic: true };
 * console.log(transaction.atomic);
 * ```
 */
export interface BatchOptions {
  /**
   * All or nothing: the KV conditions are checked and every write applied in one step, or
   * nothing is changed and the batch fails with the error of the first operation that would
   * fail. Default false.
   */
  atomic?: boolean;
}

/**
 * What one operation of a batch gave: its result, or its error (one of the typed errors).
 *
 * @example
 * ```ts
 * import type { BatchOutcome } from "@purple/protocol";
 *
 * const outcome: BatchOutcome<"counterGet"> = { ok: true, value: 3n };
 * if (outcome.ok) console.log(outcome.value); // 3n
 * ```
 */
export type BatchOutcome<Op extends BatchableName> =
  | { ok: true; value: Awaited<ReturnType<Operations[Op]>> }
  | { ok: false; error: Error & { code: string } };

/**
 * The outcomes of a batch, in the order of its operations, each typed by its operation.
 *
 * @example
 * ```ts
 * import type { BatchOutcomes } from "@purple/protocol";
 *
 * type Two = BatchOutcomes<[{ op: "flagGet"; args: ["beta"] }, { op: "kvDelete"; args: ["k"] }]>;
 * ```
 */
export type BatchOutcomes<T extends readonly BatchOperation[]> = {
  -readonly [I in keyof T]: T[I] extends { op: infer Op extends BatchableName } ? BatchOutcome<Op>
    : never;
};

/**
 * The operations every Purple backend and client offers. All are async; failures are the
 * typed errors of `@purple/client/errors`.
 *
 * @example
 * ```ts
 * import type { Operations } from "@purple/protocol";
 *
 * async function remember(ops: Operations): Promise<string> {
 *   await ops.cacheSet("session", "abc", 60);
 *   return await ops.cacheGet("session");
 * }
 * ```
 */
export interface Operations {
  /**
   * Reads a cache entry.
   * @param key The entry's key.
   * @returns The value.
   * @throws {NotFoundError} When the key is absent or its TTL has passed.
   */
  cacheGet(key: string): Promise<string>;

  /**
   * Sets a cache entry, overwriting its value and TTL.
   * @param key The entry's key (non-empty).
   * @param value The value (non-empty).
   * @param ttl Seconds to live, a whole number; 0 or omitted means the default, 5 seconds.
   */
  cacheSet(key: string, value: string, ttl?: number): Promise<void>;

  /**
   * Adds to a counter atomically; a missing counter counts as 0.
   * @param key The counter's key.
   * @param amount What to add (may be negative).
   * @returns The new value.
   */
  counterIncrement(key: string, amount: CounterAmount): Promise<bigint>;

  /**
   * Reads a counter.
   * @param key The counter's key.
   * @returns Its value, 0 if it was never incremented.
   */
  counterGet(key: string): Promise<bigint>;

  /**
   * Reads a flag.
   * @param key The flag's key.
   * @returns Its value, `false` if it was never set.
   */
  flagGet(key: string): Promise<boolean>;

  /**
   * Sets a flag.
   * @param key The flag's key.
   * @param value The new value.
   */
  flagSet(key: string, value: boolean): Promise<void>;

  /**
   * Reads a KV value.
   * @param key The value's key.
   * @returns The stored bytes.
   * @throws {NotFoundError} When the key is absent.
   */
  kvGet(key: string): Promise<Uint8Array>;

  /**
   * Reads a KV value and its version.
   * @param key The value's key.
   * @returns The stored bytes and their version.
   * @throws {NotFoundError} When the key is absent.
   */
  kvGetEntry(key: string): Promise<KvEntry>;

  /**
   * Stores a KV value, overwriting any previous one; with `options`, only if the value's
   * version is the one given (`ifMatch`) or the key is absent (`ifNoneMatch: "*"`).
   * @param key The value's key.
   * @param value Non-empty bytes (a string is stored as UTF-8), within the size limit.
   * @param options The conditions of the write.
   * @throws {ValueTooLargeError} When the value is over the configured limit (default 1 MiB).
   * @throws {PreconditionFailedError} When a condition does not hold (nothing is written).
   */
  kvPut(key: string, value: KvValue, options?: KvWriteOptions): Promise<void>;

  /**
   * Deletes a KV value; with `options`, only if its version is the one given.
   * @param key The value's key.
   * @param options The conditions of the delete.
   * @throws {NotFoundError} When the key is absent.
   * @throws {PreconditionFailedError} When a condition does not hold (nothing is deleted).
   */
  kvDelete(key: string, options?: KvWriteOptions): Promise<void>;

  /**
   * Reads a set.
   * @param set The set's name.
   * @returns Its items, sorted; empty if the set does not exist.
   */
  setGet(set: string): Promise<string[]>;

  /**
   * Adds an item to a set (idempotent).
   * @param set The set's name.
   * @param item The item (non-empty).
   * @returns The resulting items, sorted.
   */
  setAdd(set: string, item: string): Promise<string[]>;

  /**
   * Removes an item from a set (idempotent).
   * @param set The set's name.
   * @param item The item (non-empty).
   * @returns The resulting items, sorted; empty if the set does not exist.
   */
  setRemove(set: string, item: string): Promise<string[]>;

  /**
   * Deletes a cache entry.
   * @param key The entry's key.
   * @throws {NotFoundError} When the key is absent (or its TTL has passed), as for every delete.
   */
  cacheDelete(key: string): Promise<void>;

  /**
   * Deletes a counter: a get then returns 0, an increment starts from 0.
   * @param key The counter's key.
   * @throws {NotFoundError} When the counter does not exist (it was never incremented, or
   * deleted), as for every delete.
   */
  counterDelete(key: string): Promise<void>;

  /**
   * Deletes a flag: a get then returns false.
   * @param key The flag's key.
   * @throws {NotFoundError} When the flag was never set (or deleted), as for every delete.
   */
  flagDelete(key: string): Promise<void>;

  /**
   * Deletes a whole set.
   * @param set The set's name.
   * @throws {NotFoundError} When the set does not exist (it has no item), as for every delete.
   */
  setDelete(set: string): Promise<void>;

  /**
   * Lists the keys of cache entries that have not expired, a page at a time.
   * @param options The prefix, the page size and the cursor of the previous page.
   * @returns The page, with the cursor of the next one.
   */
  cacheList(options?: ListOptions): Promise<KeyPage>;

  /**
   * Lists the keys of counters, a page at a time.
   * @param options The prefix, the page size and the cursor of the previous page.
   * @returns The page, with the cursor of the next one.
   */
  counterList(options?: ListOptions): Promise<KeyPage>;

  /**
   * Lists the keys of flags that are set (true or false), a page at a time.
   * @param options The prefix, the page size and the cursor of the previous page.
   * @returns The page, with the cursor of the next one.
   */
  flagList(options?: ListOptions): Promise<KeyPage>;

  /**
   * Lists the keys of KV values, a page at a time.
   * @param options The prefix, the page size and the cursor of the previous page.
   * @returns The page, with the cursor of the next one.
   */
  kvList(options?: ListOptions): Promise<KeyPage>;

  /**
   * Lists the names of sets that hold at least one item, a page at a time.
   * @param options The prefix, the page size and the cursor of the previous page.
   * @returns The page, with the cursor of the next one.
   */
  setList(options?: ListOptions): Promise<KeyPage>;

  /**
   * Runs several operations in one call. By default in order, each on its own: one that
   * fails does not stop the others, and each outcome says what it gave. With `atomic`, all or
   * nothing: if any would fail (a KV condition that does not hold, a counter past int64, ...),
   * nothing changes and the batch rejects with that operation's error.
   * @param operations At most 1000 operations (each `{ op, args }`).
   * @param options `atomic`.
   * @returns The outcome of each operation, in order.
   * @throws {ValueTooLargeError} For more than 1000 operations (or a batch larger than the
   * body limit).
   */
  batch<const T extends readonly BatchOperation[]>(
    operations: T,
    options?: BatchOptions,
  ): Promise<BatchOutcomes<T>>;

  /**
   * Watches keys for changes: the stream gives first the current state of each key, then each
   * new state as it changes (a write by this process or by any other sharing the backend, seen
   * within a second; a cache entry also when its TTL passes). Fast changes may be coalesced (the
   * latest state wins), but the last state of a key always comes, and the states of one key come
   * in order. The watch lasts until the iteration stops (`break`), `options.signal` aborts
   * (the iteration then rejects with its reason), or the other side ends it.
   * @param keys Up to 100 keys, by service (`{ flags: ["beta"], kv: ["config"] }`).
   * @param options A signal that ends the watch.
   * @returns The changes, for `for await`; errors come from its first step.
   * @throws {InvalidArgumentError} When no key is given, or one is empty or too long.
   * @throws {ValueTooLargeError} When more keys are given than the limit (default 100).
   * @throws {UnavailableError} When the server watches for as many watchers as it may, or the
   * backend cannot be reached; during the watch, when the server shuts down or the connection
   * is lost (watch again: the first states catch up).
   */
  watch(keys: WatchKeys, options?: WatchOptions): AsyncIterable<WatchChange>;

  /** Releases connections, timers and files. The object must not be used afterwards. */
  close(): Promise<void>;
}
