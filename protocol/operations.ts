/**
 * The operations contract: the operations of Purple, implemented by every backend and every
 * client: the original twelve (get and set of the cache, counters, flags, KV values and sets),
 * deletes for every service, listing keys by prefix in pages, versions of KV values with
 * compare-and-set, and batches (in order, or atomic).
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
 * The operations a batch may hold: every operation but the listings and `batch`.
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
  "close" | "batch" | "cacheList" | "counterList" | "flagList" | "kvList" | "setList"
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

  /** Releases connections, timers and files. The object must not be used afterwards. */
  close(): Promise<void>;
}
