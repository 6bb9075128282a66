/**
 * The storage side of the operations contract: what each backend implements.
 *
 * A backend receives input that `checked()` has already validated and normalised (a `bigint`
 * amount, a TTL in whole seconds greater than 0, KV values as bytes), so backends hold no
 * input checks of their own.
 *
 * @module
 */

/**
 * One storage engine behind Purple (memory, disk, redis). Every method receives valid,
 * normalised input; see `checked()` for the checks.
 *
 * @example
 * ```ts
 * import { type Backend, checked, DEFAULT_LIMITS, MemoryBackend } from "@purple/server/backends";
 *
 * const backend: Backend = new MemoryBackend();
 * // Servers call it through the input checks, which hand it normalised input.
 * const ops = checked(backend, DEFAULT_LIMITS);
 * console.log(await ops.setAdd("todos", "shopping")); // ["shopping"]
 * await ops.close();
 * ```
 */
export interface Backend {
  /**
   * Whether every operation settles before it returns: the backend does no I/O (the memory
   * backend). Such an operation cannot outlast a time limit (a timer runs only once it has
   * settled), so the servers do not time it. Absent means false.
   */
  readonly settlesAtOnce?: boolean;
  /** Returns the value, or throws `NotFoundError` when absent or expired. */
  cacheGet(key: string): Promise<string>;
  /** Stores the value for `ttlSeconds` (a whole number, at least 1). */
  cacheSet(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Adds `amount` atomically; throws `InvalidArgumentError` when the result leaves int64. */
  counterIncrement(key: string, amount: bigint): Promise<bigint>;
  /** Returns the counter, 0n when absent. */
  counterGet(key: string): Promise<bigint>;
  /** Returns the flag, false when absent. */
  flagGet(key: string): Promise<boolean>;
  /** Sets the flag. */
  flagSet(key: string, value: boolean): Promise<void>;
  /** Returns a copy of the stored bytes, or throws `NotFoundError`. */
  kvGet(key: string): Promise<Uint8Array>;
  /** Stores (a copy of) the bytes. */
  kvPut(key: string, value: Uint8Array): Promise<void>;
  /** Deletes the value, or throws `NotFoundError` when absent. */
  kvDelete(key: string): Promise<void>;
  /** Returns the sorted items, empty when absent. */
  setGet(set: string): Promise<string[]>;
  /**
   * Adds the item and returns the sorted items. With `maxItems`, adding an item the set does
   * not hold to a set of `maxItems` or more items throws `ValueTooLargeError` and changes
   * nothing; the check and the add are one atomic step.
   */
  setAdd(set: string, item: string, maxItems?: number): Promise<string[]>;
  /** Removes the item and returns the sorted items. */
  setRemove(set: string, item: string): Promise<string[]>;
  /** Releases everything the backend holds. */
  close(): Promise<void>;
}
