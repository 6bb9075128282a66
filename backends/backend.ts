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
 * The services of Purple, as entries of an export name them (the names of their HTTP routes).
 *
 * @example
 * ```ts
 * import type { EntryService } from "@purple/server/backends";
 *
 * const service: EntryService = "counters";
 * console.log(service);
 * ```
 */
export type EntryService = "cache" | "counters" | "flags" | "kv" | "sets";

/**
 * One stored entry, whole: what `purple export` writes as one line and `purple import` restores.
 * A cache entry carries its remaining time to live in milliseconds (`null`: it never expires,
 * which only a Redis written by another client can hold); a counter is an int64; a set, its
 * items (at least one, none twice).
 *
 * @example
 * ```ts
 * import type { StoredEntry } from "@purple/server/backends";
 *
 * const entries: StoredEntry[] = [
 *   { service: "cache", key: "session", value: "a1b2", ttlMs: 60_000 },
 *   { service: "counters", key: "hits", value: 42n },
 *   { service: "sets", key: "team", value: ["ann", "bob"] },
 * ];
 * console.log(entries.length);
 * ```
 */
export type StoredEntry =
  | { service: "cache"; key: string; value: string; ttlMs: number | null }
  | { service: "counters"; key: string; value: bigint }
  | { service: "flags"; key: string; value: boolean }
  | { service: "kv"; key: string; value: Uint8Array }
  | { service: "sets"; key: string; value: string[] };

/**
 * Something a backend holds under a service's key but cannot read as an entry of that service:
 * only a Redis written by other clients holds such keys (a hash where a cache entry would be, a
 * counter that is not an int64, a flag that is not a boolean). Purple's own operations refuse
 * them too.
 *
 * @example
 * ```ts
 * import type { UnreadableEntry } from "@purple/server/backends";
 *
 * const odd: UnreadableEntry = {
 *   service: "counters",
 *   key: "hits",
 *   reason: "the stored value 'abc' is not an int64 integer",
 * };
 * console.log(odd.reason);
 * ```
 */
export interface UnreadableEntry {
  /** The service whose key it is. */
  service: EntryService;
  /** The Purple key. */
  key: string;
  /** Why it cannot be read, in words. */
  reason: string;
}

/**
 * One page of an export: entries, and the keys that could not be read as entries (Redis only).
 *
 * @example
 * ```ts
 * import type { ExportPage } from "@purple/server/backends";
 *
 * const page: ExportPage = { entries: [{ service: "flags", key: "beta", value: true }], unreadable: [] };
 * console.log(page.entries.length);
 * ```
 */
export interface ExportPage {
  /** The entries, in no promised order. */
  entries: StoredEntry[];
  /** What was found but cannot be read as an entry. */
  unreadable: UnreadableEntry[];
}

/**
 * How large the pages of an export may be: an export holds one page (and what reads it) at a
 * time, so these bound its memory, whatever the number of entries.
 *
 * @example
 * ```ts
 * import type { ExportOptions } from "@purple/server/backends";
 *
 * const options: ExportOptions = { pageEntries: 500, pageBytes: 4 * 1024 * 1024 };
 * console.log(options.pageEntries);
 * ```
 */
export interface ExportOptions {
  /** The most entries a page holds. Default 1000. */
  pageEntries?: number;
  /**
   * About how many bytes of keys and values a page holds at most (one entry larger than this
   * is a page of its own). Default 8 MiB.
   */
  pageBytes?: number;
}

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
   * Every entry the backend holds, a page at a time (see {@linkcode ExportOptions}), for
   * `purple export`: cache entries that have not expired with their remaining TTL, counters,
   * flags, KV values (large ones read whole), sets with their items. Not a snapshot: an entry
   * written or deleted during the export may or may not be in it; each entry is read as it was
   * at one moment (a set larger than one read excepted, as `setGet`). Redis is read with
   * `SCAN` and pipelined reads, never blocking it.
   */
  exportEntries(options?: ExportOptions): AsyncIterable<ExportPage>;
  /**
   * Writes entries as they are given, for `purple import`: a KV value is put, a counter set to
   * its value (not incremented), a flag set, a cache entry set with its TTL in ms (`null`:
   * none), a set replaced by the items given. Writing the same entries twice gives the same
   * state. The entries go in as few commits, pipelines or round trips as the backend can; they
   * are not one atomic step, and writes of the same keys by others meanwhile may land in
   * between. Rejects with {@linkcode RestoreError} naming the first entry that could not be
   * written (the others may be).
   */
  restore(entries: readonly StoredEntry[]): Promise<void>;
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
   * Creates the error.
   *
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

/**
 * The failure of one entry of a restore: which one (`index`, from 0), and its error (`cause`).
 *
 * @example
 * ```ts
 * import { RestoreError } from "@purple/server/backends";
 * import { InvalidArgumentError } from "@purple/protocol/errors";
 *
 * const error = new RestoreError(3, new InvalidArgumentError("Bad key: 600 bytes, the limit is 512"));
 * console.log(error.index); // 3
 * ```
 */
export class RestoreError extends Error {
  /** The position of the entry that failed, from 0. */
  readonly index: number;
  /** What it failed with. */
  override readonly cause: Error;

  /**
   * Creates the error of one entry of a restore.
   *
   * @param index The position of the entry that failed.
   * @param cause What it failed with.
   */
  constructor(index: number, cause: Error) {
    super(`Entry ${index} of the restore failed: ${cause.message}`, { cause });
    this.name = "RestoreError";
    this.index = index;
    this.cause = cause;
  }
}
