/**
 * The operations contract: the twelve operations of Purple, implemented by every backend and
 * every client.
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
   * Stores a KV value, overwriting any previous one.
   * @param key The value's key.
   * @param value Non-empty bytes (a string is stored as UTF-8), within the size limit.
   * @throws {ValueTooLargeError} When the value is over the configured limit (default 1 MiB).
   */
  kvPut(key: string, value: KvValue): Promise<void>;

  /**
   * Deletes a KV value.
   * @param key The value's key.
   * @throws {NotFoundError} When the key is absent.
   */
  kvDelete(key: string): Promise<void>;

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

  /** Releases connections, timers and files. The object must not be used afterwards. */
  close(): Promise<void>;
}
