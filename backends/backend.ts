/**
 * The storage side of the operations contract: what each backend implements.
 *
 * A backend receives input that `checked()` has already validated and normalised (a `bigint`
 * amount, a TTL in whole seconds greater than 0, KV values as bytes), so backends hold no
 * input checks of their own.
 *
 * @module
 */

import type { KeyPage, KvEntry, WatchChange } from "@purple/protocol";
import type { WatchTarget } from "@purple/protocol/watch";

/**
 * A listing, as backends receive it: the prefix (empty: every key), the page size (1 to 1000)
 * and the cursor of the previous page, as the client sent it (each backend reads its own
 * cursors and refuses anything else with `InvalidArgumentError`).
 *
 * @example
 * ```ts
 * import type { ListQuery } from "@purple/server/backends";
 *
 * const query: ListQuery = { prefix: "user:", limit: 100 };
 * console.log(query);
 * ```
 */
export interface ListQuery {
  /** Only keys that start with this; empty: every key. */
  prefix: string;
  /** The most keys in the page. */
  limit: number;
  /** The previous page's cursor; absent for the first page. */
  cursor?: string;
}

/**
 * The conditions of a KV write, as backends receive them: the version the value must have now
 * (`*`: any, the key must exist), and whether the key must be absent.
 *
 * @example
 * ```ts
 * import type { KvCondition } from "@purple/server/backends";
 *
 * const createOnly: KvCondition = { ifNoneMatch: true };
 * console.log(createOnly);
 * ```
 */
export interface KvCondition {
  /** The version the value must have (`*`: any version: the key must exist). */
  ifMatch?: string;
  /** The key must be absent. */
  ifNoneMatch?: boolean;
}

/**
 * One operation of an atomic batch, as backends receive it: its name and its normalised
 * arguments, as the backend's own method of that name takes them (`setAdd` with `maxItems`).
 *
 * @example
 * ```ts
 * import type { BackendOperation } from "@purple/server/backends";
 *
 * const operation: BackendOperation = { op: "counterIncrement", args: ["hits", 1n] };
 * console.log(operation.op);
 * ```
 */
export type BackendOperation = {
  [Op in BackendBatchable]: { op: Op; args: Parameters<Backend[Op]> };
}[BackendBatchable];

/**
 * The backend methods an atomic batch may call.
 *
 * @example
 * ```ts
 * import type { BackendBatchable } from "@purple/server/backends";
 *
 * const name: BackendBatchable = "kvPut";
 * console.log(name);
 * ```
 */
export type BackendBatchable =
  | "cacheGet"
  | "cacheSet"
  | "cacheDelete"
  | "counterIncrement"
  | "counterGet"
  | "counterDelete"
  | "flagGet"
  | "flagSet"
  | "flagDelete"
  | "kvGetEntry"
  | "kvPut"
  | "kvDelete"
  | "setGet"
  | "setAdd"
  | "setRemove"
  | "setDelete";

/**
 * One storage engine behind Purple (memory, disk, redis). Every method receives valid,
 * normalised input; see `checked()` for the checks.
 *
 * Deletes of anything absent throw `NotFoundError`, on every service. Listings give keys that
 * start with the query's prefix, a page at a time, with a cursor of the backend's own making.
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
  /**
   * Whether operations on one key, called one after the other without waiting, take effect in
   * the order they were called (memory: every call settles at once; Redis: one connection a
   * service, commands in order). A batch then calls them all at once; otherwise it waits for
   * an operation before the next one on the same key. Absent means false.
   */
  readonly keepsCallOrder?: boolean;
  /** Returns the value, or throws `NotFoundError` when absent or expired. */
  cacheGet(key: string): Promise<string>;
  /** Stores the value for `ttlSeconds` (a whole number, at least 1). */
  cacheSet(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Deletes the entry, or throws `NotFoundError` when absent or expired. */
  cacheDelete(key: string): Promise<void>;
  /** Lists the keys of the entries that have not expired. */
  cacheList(query: ListQuery): Promise<KeyPage>;
  /** Adds `amount` atomically; throws `InvalidArgumentError` when the result leaves int64. */
  counterIncrement(key: string, amount: bigint): Promise<bigint>;
  /** Returns the counter, 0n when absent. */
  counterGet(key: string): Promise<bigint>;
  /** Deletes the counter, or throws `NotFoundError` when absent. */
  counterDelete(key: string): Promise<void>;
  /** Lists the keys of the counters. */
  counterList(query: ListQuery): Promise<KeyPage>;
  /** Returns the flag, false when absent. */
  flagGet(key: string): Promise<boolean>;
  /** Sets the flag. */
  flagSet(key: string, value: boolean): Promise<void>;
  /** Deletes the flag, or throws `NotFoundError` when it was never set. */
  flagDelete(key: string): Promise<void>;
  /** Lists the keys of the flags that are set. */
  flagList(query: ListQuery): Promise<KeyPage>;
  /** Returns a copy of the stored bytes and their version, or throws `NotFoundError`. */
  kvGetEntry(key: string): Promise<KvEntry>;
  /**
   * Stores (a copy of) the bytes; with `condition`, only if it holds, else throws
   * `PreconditionFailedError` and changes nothing (the check and the write are one step).
   */
  kvPut(key: string, value: Uint8Array, condition?: KvCondition): Promise<void>;
  /**
   * Deletes the value, or throws `NotFoundError` when absent; with `condition`, only if it
   * holds (as `kvPut`).
   */
  kvDelete(key: string, condition?: KvCondition): Promise<void>;
  /** Lists the keys of the values. */
  kvList(query: ListQuery): Promise<KeyPage>;
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
  /** Deletes the whole set, or throws `NotFoundError` when it holds no item. */
  setDelete(set: string): Promise<void>;
  /** Lists the names of the sets that hold items. */
  setList(query: ListQuery): Promise<KeyPage>;
  /**
   * Runs the operations all or nothing: either every one succeeds and their results come back
   * in order, or none changes anything and this rejects with the error of the first one that
   * failed, wrapped by {@linkcode AtomicBatchError} (its index).
   */
  atomic(operations: readonly BackendOperation[]): Promise<unknown[]>;
  /**
   * Watches keys (checked, each once): first the state of each, then each new state, as
   * `Operations.watch` promises, for the writes of every process sharing the backend. The stream
   * ends when its consumer returns, when `signal` aborts (rejecting with its reason), and when
   * the backend closes.
   */
  watch(targets: readonly WatchTarget[], signal?: AbortSignal): AsyncIterableIterator<WatchChange>;
  /** Releases everything the backend holds. */
  close(): Promise<void>;
}

/**
 * The failure of one operation of an atomic batch: which one (`index`), and its error
 * (`cause`), whose kind the batch fails with.
 *
 * @example
 * ```ts
 * import { AtomicBatchError } from "@purple/server/backends";
 * import { NotFoundError } from "@purple/protocol/errors";
 *
 * const error = new AtomicBatchError(2, new NotFoundError("Cannot find kv key 'a': not found"));
 * console.log(error.index); // 2
 * ```
 */
export class AtomicBatchError extends Error {
  /** The position of the operation that failed, from 0. */
  readonly index: number;
  /** What it failed with. */
  override readonly cause: Error;

  /**
   * @param index The position of the operation that failed.
   * @param cause What it failed with.
   */
  constructor(index: number, cause: Error) {
    super(`Operation ${index} of the atomic batch failed: ${cause.message}`, { cause });
    this.name = "AtomicBatchError";
    this.index = index;
    this.cause = cause;
  }
}
