/**
 * The disk backend: every service in one Deno KV database, the SQLite file
 * `<dataDir>/purple.sqlite3` (on Deno Deploy, the platform's KV). Data survives restarts, and
 * several processes may share one file: every read-modify-write is atomic across them.
 *
 * Deno KV's own limits (64 KiB values, 800 KiB commits, 2 KiB keys) never reach users: large
 * cache and KV values are split into chunks and swapped in atomically, set items are keyed by
 * their SHA-256 digest, and limits that cannot fit are refused when the backend opens.
 * Needs `--unstable-kv` (or `"unstable": ["kv"]` in deno.json).
 *
 * ## Group commit
 *
 * Deno KV commits a local file one transaction at a time, each synced to disk (SQLite in WAL
 * mode, with SQLite's default `synchronous=FULL`: one fsync a commit), so a commit a write
 * would cap writes at the disk's fsync rate. Instead every write goes through one group
 * committer: each operation is an atomic unit (the versionstamps it was planned from, and its
 * writes), one commit is in flight at a time, and the units that arrive meanwhile go together
 * into the next one, as many as fit in one Deno KV commit (100 checks, 1000 mutations,
 * 800 KiB). The operations of one key that arrive together (increments and deletes of a
 * counter, puts and deletes of a KV or cache key, adds, removes and deletes of a set, flag
 * sets and deletes) make one unit, planned on the key's state as of its last commit and
 * checked against it. What it promises:
 *
 * - **Durable when acknowledged**: an operation is answered only once the commit holding it
 *   is on disk (synced), exactly as with a commit of its own; a crash loses no acknowledged
 *   write (tests/fault_sigkill_test.ts kills Purple mid-load to show it).
 * - **Atomic and exact, alone**: each operation applies whole or not at all. A refusal (a
 *   delete of something absent, a KV condition that does not hold, an increment leaving
 *   int64, an add to a set of `maxSetItems` items) answers only its caller; a unit whose check
 *   fails (another process wrote the key) is planned again from a fresh read, alone: the other
 *   units of its commit are committed without it.
 * - **Call order per key** (`keepsCallOrder`): the operations of one key take effect in the
 *   order they are called, reads too (a read waits for the writes of its key asked before it,
 *   a write for the reads asked before it), so in-order batches run all at once.
 * - **Reads see acknowledged writes**: a read starts after it is asked, and writes are
 *   acknowledged after they are on disk. Point reads go together too (at most two reads in
 *   flight; the reads asked meanwhile share the next ones).
 * - **Several processes on one file stay exact**: every unit checks the versionstamps it was
 *   planned from, so the counters, the set limits, the KV conditions and the chunk swaps stay
 *   exact across them.
 *
 * ## The data API v2
 *
 * - **Versions** of KV values are the versionstamps of their heads (20 hex digits), which
 *   every write of the key changes; a conditional put or delete is checked against the head
 *   as its unit was planned, in the commit that writes it (a large value's chunks are written
 *   first, the condition is checked when its head is swapped in).
 * - **Listings** read the entries of one service in Deno KV's key order (UTF-8 bytes) from the
 *   prefix, or from just after the cursor's key, and stop at the first key past the prefix:
 *   a page reads only what it lists, plus one entry (and the expired cache entries it skips).
 *   Sets are listed by their guard entries, deleted with their last item.
 * - **Atomic batches** (`_disk_atomic.ts`) read every entry they depend on, run over it, and
 *   submit one unit checking all of them: serialisable against every other write, in this
 *   process or another. Their large values are written as chunks first; a batch whose unit
 *   cannot fit one Deno KV commit (about 100 keys read, 1000 entries written, 800 KiB inline)
 *   is refused with `ValueTooLargeError`, nothing changed, nothing left behind.
 *
 * Large values: the chunks are written first, in commits of their own with a pending marker,
 * then the head swap goes through the group, checking the marker. Chunks a crash leaves
 * unreferenced (cut off between their commits and their head, or while old chunks were being
 * deleted) keep their marker; a sweep, right after opening and then every minute, deletes the
 * chunks of markers older than a minute (a write in progress in another process is younger).
 * Expired cache entries are hidden from the millisecond they expire and removed from the file
 * by Deno KV itself: when the database opens, then at the earliest expiry it knows of, looking
 * again at most 60 s later (its writes do not wake it earlier). See docs/disk.md.
 *
 * @example Opening the disk backend through `openBackend()`
 * ```ts ignore
 * import { openBackend } from "@purple/server/backends";
 *
 * const ops = await openBackend({ kind: "disk", dataDir: "./data" });
 * console.log(await ops.counterIncrement("visits", 1)); // 1n on a fresh directory
 * await ops.close();
 * ```
 *
 * @module
 */

import type { KeyPage, KvEntry, WatchChange } from "@purple/protocol";
import type { WatchTarget } from "@purple/protocol/watch";
import type {
  Backend,
  BackendOperation,
  ExportOptions,
  ExportPage,
  KvCondition,
  ListQuery,
  StoredEntry,
} from "./backend.ts";
import type { Limits } from "./limits.ts";
import { backgroundInterval, checkCondition, notFound } from "./_util.ts";
import {
  type CacheHead,
  CHUNK_BYTES,
  type ChunkRef,
  headModel,
  type HeadOp,
  type HeadState,
  INLINE_CACHE_UNITS,
  readValue,
  writeChunks,
} from "./_disk_blob.ts";
import { retryBusy } from "./_disk_busy.ts";
import { KeyedBatcher } from "./_disk_batch.ts";
import { type CommitStats, GroupCommitter } from "./_disk_commits.ts";
import { PointReader } from "./_disk_reads.ts";
import { counterModel, type CounterOp, type CounterState, counterValue } from "./_disk_counter.ts";
import { flagModel, type FlagOp, type FlagState } from "./_disk_flag.ts";
import { readItems, setModel, type SetOp, type SetState } from "./_disk_set.ts";
import { AtomicBatches, type AtomicService } from "./_disk_atomic.ts";
import { type ListedService, listKeys } from "./_disk_list.ts";
import { sweepChunks, type SweepResult } from "./_disk_sweep.ts";
import { pages, restoreAll } from "./_export_pages.ts";
import {
  bulkReader,
  readEntries,
  type RestoreContext,
  restoreCounter,
  restoreHead,
  restoreSet,
} from "./_export_disk.ts";
import { DEFAULT_WATCH_POLL_MS, DiskWatch, type PollStats } from "./_watch_disk.ts";
import {
  assertDiskLimits,
  counterKey,
  flagKey,
  headKey,
  MAX_ITEM_BYTES,
  MAX_KEY_BYTES,
} from "./_disk_keys.ts";

export type { Backend } from "./backend.ts";
export type { Limits } from "./limits.ts";
export type { CommitStats } from "./_disk_commits.ts";
export type { SweepResult } from "./_disk_sweep.ts";
export type { PollStats } from "./_watch_disk.ts";
/**
 * The largest `maxKeyBytes` the disk backend supports: every key it writes (a key of that many
 * NUL characters, which Deno KV encodes in two bytes each, plus the service prefix and a digest
 * or chunk number) must fit Deno KV's 2048-byte key limit. 987 bytes.
 *
 * @example
 * ```ts
 * import { DISK_MAX_KEY_BYTES } from "./disk.ts";
 *
 * console.log(DISK_MAX_KEY_BYTES); // 987
 * ```
 */
export const DISK_MAX_KEY_BYTES: number = MAX_KEY_BYTES;

/**
 * The largest `maxItemBytes` the disk backend supports: a set item is one Deno KV value, at
 * most 64 KiB once serialized (two bytes a UTF-16 unit at worst).
 *
 * @example
 * ```ts
 * import { DISK_MAX_ITEM_BYTES } from "./disk.ts";
 *
 * console.log(DISK_MAX_ITEM_BYTES); // 32736
 * ```
 */
export const DISK_MAX_ITEM_BYTES: number = MAX_ITEM_BYTES;

/**
 * How the disk backend reclaims the chunks of large values that a crash left behind (see the
 * module doc).
 *
 * @example
 * ```ts
 * import type { DiskSweepOptions } from "./disk.ts";
 *
 * const sweep: DiskSweepOptions = { sweepIntervalMs: 60_000, chunkGraceMs: 60_000 };
 * ```
 */
export interface DiskSweepOptions {
  /** How often the sweep runs in the background, in ms (the first run is right after opening);
   * 0 runs none (call `sweep()`). Default 60,000. */
  sweepIntervalMs?: number;
  /** How old unreferenced chunks must be before the sweep deletes them, in ms: a large write
   * in progress in another process on the same file is younger. Default 60,000. */
  chunkGraceMs?: number;
}

/**
 * How the disk backend's watches see the writes of other processes on the same file (see
 * docs/watch.md): by reading the versionstamps of the watched keys every `watchPollMs`.
 *
 * @example
 * ```ts
 * import type { DiskWatchOptions } from "./disk.ts";
 *
 * const watch: DiskWatchOptions = { watchPollMs: 250 };
 * ```
 */
export interface DiskWatchOptions {
  /** How often the watched keys are polled, in ms. Default 250. */
  watchPollMs?: number;
}

/**
 * Options of {@linkcode openDiskBackend}.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS } from "@purple/server/backends";
 * import type { DiskBackendOptions } from "./disk.ts";
 *
 * const options: DiskBackendOptions = { dataDir: "./data", limits: DEFAULT_LIMITS };
 * ```
 */
export interface DiskBackendOptions extends DiskSweepOptions, DiskWatchOptions {
  /** The directory of the database file `purple.sqlite3`; created when missing. */
  dataDir: string;
  /** The limits in force; keys and items must fit Deno KV's key and value limits. */
  limits: Limits;
  /** A full KV path, overrides dataDir (tests). */
  path?: string;
}

/**
 * The name of the database file inside the data directory.
 *
 * @example
 * ```ts
 * import { DISK_FILE_NAME } from "./disk.ts";
 *
 * console.log(`./data/${DISK_FILE_NAME}`); // "./data/purple.sqlite3"
 * ```
 */
export const DISK_FILE_NAME = "purple.sqlite3";

/** How long a grace and how often a sweep by default, in ms. */
const DEFAULT_SWEEP_MS = 60_000;

/** Reads of one key in flight, which the next write of the key waits for. */
interface ReadGroup {
  /** How many are still in flight. */
  pending: number;
  /** Resolves once none is (made when a write waits for them). */
  closed?: Promise<void>;
  done?: () => void;
}

const encoder = new TextEncoder();

function isDeploy(): boolean {
  try {
    return Deno.env.get("DENO_DEPLOYMENT_ID") !== undefined;
  } catch {
    return false; // No env permission: not on Deno Deploy, where env access is granted.
  }
}

/** How each service's keys are listed: the first part of its entries' keys, and which exist. */
const LISTED: Readonly<Record<AtomicService, ListedService>> = {
  cache: {
    part: "cache",
    exists: (head, now) => (head as { expiresAt: number }).expiresAt > now,
  },
  counter: { part: "counter" },
  flag: { part: "flag" },
  kv: { part: "kv" },
  // A set's guard: written with its items, deleted with the last (older files may hold guards
  // of a count of 0, left by sets emptied before guards were deleted).
  set: { part: "set-guard", exists: (count) => count !== 0 },
};

/**
 * Opens the disk backend: the Deno KV database `<dataDir>/purple.sqlite3` (creating the
 * directory), or `path` when given, or the platform's KV on Deno Deploy.
 *
 * @param options The data directory, the limits and an optional full path.
 * @returns The backend; call `close()` when done.
 * @throws {InvalidArgumentError} When the limits do not fit Deno KV (a key limit above
 * `DISK_MAX_KEY_BYTES`, an item limit above `DISK_MAX_ITEM_BYTES`).
 * @throws {Error} When Deno KV is unavailable (run with `--unstable-kv`).
 *
 * @example
 * ```ts
 * import { checked, DEFAULT_LIMITS } from "@purple/server/backends";
 * import { openDiskBackend } from "./disk.ts";
 *
 * const dataDir = await Deno.makeTempDir();
 * const ops = checked(await openDiskBackend({ dataDir, limits: DEFAULT_LIMITS }), DEFAULT_LIMITS);
 * await ops.kvPut("greeting", "hello");
 * console.log(new TextDecoder().decode(await ops.kvGet("greeting"))); // "hello"
 * await ops.close();
 * await Deno.remove(dataDir, { recursive: true });
 * ```
 */
export async function openDiskBackend(options: DiskBackendOptions): Promise<DiskBackend> {
  assertDiskLimits(options.limits);
  if (typeof Deno.openKv !== "function") {
    throw new Error(
      `Cannot open the disk backend: Deno KV is unavailable, run Deno with --unstable-kv or add "unstable": ["kv"] to deno.json`,
    );
  }
  let kv: Deno.Kv;
  if (options.path !== undefined) kv = await Deno.openKv(options.path);
  else if (isDeploy()) kv = await Deno.openKv();
  else {
    await Deno.mkdir(options.dataDir, { recursive: true });
    kv = await Deno.openKv(`${options.dataDir}/${DISK_FILE_NAME}`);
  }
  return new DiskBackend(kv, options.limits, options);
}

/**
 * Keeps every service in one Deno KV database, each under its own key prefix, and commits
 * every write through one group committer. Opened by {@linkcode openDiskBackend}, which picks
 * the file; or built on any open `Deno.Kv`.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS } from "@purple/server/backends";
 * import { DiskBackend } from "./disk.ts";
 *
 * const backend = new DiskBackend(await Deno.openKv(":memory:"), DEFAULT_LIMITS);
 * console.log(await backend.counterIncrement("hits", 2n)); // 2n
 * await backend.close();
 * ```
 */
export class DiskBackend implements Backend {
  /**
   * Always true: the operations of one key take effect in the order they are called (each
   * key's writes are queued at once, its reads wait for the writes asked before them and the
   * writes for the reads), so a batch runs them all at once.
   */
  readonly keepsCallOrder = true;
  #kv: Deno.Kv;
  #reader: PointReader;
  #committer: GroupCommitter;
  #counters: KeyedBatcher<CounterOp, CounterState, bigint | undefined>;
  #sets: KeyedBatcher<SetOp, SetState, string[] | undefined>;
  #cache: KeyedBatcher<HeadOp, HeadState, void>;
  #values: KeyedBatcher<HeadOp, HeadState, void>;
  #flags: KeyedBatcher<FlagOp, FlagState, void>;
  #batchers: {
    readonly [S in AtomicService]: {
      settled(key: string): Promise<void> | undefined;
      forget(key: string): void;
    };
  };
  /** The open groups of reads in flight, by service and key (see `#read`). */
  #reads: Record<AtomicService, Map<string, ReadGroup>> = {
    cache: new Map(),
    counter: new Map(),
    flag: new Map(),
    kv: new Map(),
    set: new Map(),
  };
  #atomic: AtomicBatches;
  #restoring: RestoreContext;
  /** The atomic batches on their way (close() waits for them). */
  #batches = new Set<Promise<unknown>>();
  /** Generations of chunks this backend is writing: the sweep leaves them alone. */
  #writing = new Set<string>();
  #maxKeyBytes: number;
  #graceMs: number;
  #stopSweeps: () => void = () => {};
  #sweeping: Promise<unknown> | undefined;
  #watch: DiskWatch;
  #closed = false;

  /**
   * Builds the backend on an open database and starts its background sweep.
   *
   * @param kv The open database; the backend closes it on `close()`.
   * @param limits The limits in force, checked against Deno KV's own.
   * @param sweep How the sweep runs (defaults: every minute, a minute's grace), and how often
   * watched keys are polled.
   * @throws {InvalidArgumentError} When the limits do not fit Deno KV.
   */
  constructor(kv: Deno.Kv, limits: Limits, sweep: DiskSweepOptions & DiskWatchOptions = {}) {
    assertDiskLimits(limits);
    this.#kv = kv;
    const reader = this.#reader = new PointReader(kv);
    const committer = this.#committer = new GroupCommitter(kv, reader);
    const watch = this.#watch = new DiskWatch(
      kv,
      reader,
      sweep.watchPollMs ?? DEFAULT_WATCH_POLL_MS,
    );
    committer.onCommitted = (mutations) => watch.committed(mutations);
    this.#counters = new KeyedBatcher(committer, counterModel(reader));
    // A remembered set holds its items: at most about a million of them in all.
    this.#sets = new KeyedBatcher(committer, setModel(kv, reader), { maxWeight: 1_000_000 });
    this.#cache = new KeyedBatcher(committer, headModel(reader, committer, "cache"));
    this.#values = new KeyedBatcher(committer, headModel(reader, committer, "kv"));
    this.#flags = new KeyedBatcher(committer, flagModel(reader));
    const batchers = this.#batchers = {
      cache: this.#cache,
      counter: this.#counters,
      flag: this.#flags,
      kv: this.#values,
      set: this.#sets,
    };
    this.#atomic = new AtomicBatches({
      kv,
      reader,
      committer,
      writing: this.#writing,
      changed: (service, key) => batchers[service].forget(key),
    });
    this.#restoring = {
      kv,
      committer,
      changed: (service, key) => batchers[service].forget(key),
    };
    this.#maxKeyBytes = limits.maxKeyBytes;
    this.#graceMs = sweep.chunkGraceMs ?? DEFAULT_SWEEP_MS;
    const interval = sweep.sweepIntervalMs ?? DEFAULT_SWEEP_MS;
    if (interval > 0) {
      const run = () => {
        if (this.#closed) return;
        this.#sweeping ??= this.sweep().catch(() => {}).finally(() => this.#sweeping = undefined);
      };
      this.#stopSweeps = backgroundInterval(run, interval);
      queueMicrotask(run);
    }
  }

  /** Returns the value, or throws `NotFoundError` when absent or expired (exact to the ms). */
  cacheGet(key: string): Promise<string> {
    return this.#read("cache", key, async () => {
      const found = await readValue(this.#kv, "cache", key, () => this.#get(headKey("cache", key)));
      if (found === null) throw notFound("cache", key);
      return found.value;
    });
  }

  /** Stores the value for `ttlSeconds`; Deno KV removes it once it has expired. */
  cacheSet(key: string, value: string, ttlSeconds: number): Promise<void> {
    return this.#cachePut(key, value, Date.now() + ttlSeconds * 1000);
  }

  /** Deletes the entry and its chunks, or throws `NotFoundError` when absent or expired. */
  async cacheDelete(key: string): Promise<void> {
    await this.#write(this.#cache, "cache", key, { type: "delete" });
  }

  /** Lists the keys of the entries that have not expired, in key order. */
  cacheList(query: ListQuery): Promise<KeyPage> {
    return this.#list("cache", query);
  }

  /** Adds `amount` atomically, in one commit with the increments that arrive with it. */
  counterIncrement(key: string, amount: bigint): Promise<bigint> {
    return this.#write(this.#counters, "counter", key, { type: "increment", amount }) as Promise<
      bigint
    >;
  }

  /** Returns the counter, 0n when absent. */
  counterGet(key: string): Promise<bigint> {
    return this.#read(
      "counter",
      key,
      async () => counterValue((await this.#get(counterKey(key))).value),
    );
  }

  /** Deletes the counter, or throws `NotFoundError` when absent. */
  async counterDelete(key: string): Promise<void> {
    await this.#write(this.#counters, "counter", key, { type: "delete" });
  }

  /** Lists the keys of the counters, in key order. */
  counterList(query: ListQuery): Promise<KeyPage> {
    return this.#list("counter", query);
  }

  /** Returns the flag, false when absent. */
  flagGet(key: string): Promise<boolean> {
    return this.#read(
      "flag",
      key,
      async () => (await this.#get<boolean>(flagKey(key))).value === true,
    );
  }

  /** Sets the flag, in one commit with the writes that arrive with it. */
  flagSet(key: string, value: boolean): Promise<void> {
    return this.#write(this.#flags, "flag", key, { type: "set", value });
  }

  /** Deletes the flag, or throws `NotFoundError` when it was never set. */
  flagDelete(key: string): Promise<void> {
    return this.#write(this.#flags, "flag", key, { type: "delete" });
  }

  /** Lists the keys of the flags that are set, in key order. */
  flagList(query: ListQuery): Promise<KeyPage> {
    return this.#list("flag", query);
  }

  /**
   * Returns a copy of the bytes and their version (the versionstamp of the key's head, which
   * every write of the key changes), or throws `NotFoundError`.
   */
  kvGetEntry(key: string): Promise<KvEntry> {
    return this.#read("kv", key, async () => {
      // Reads of one key at once share the head read: each gets its own copy of the value.
      const found = await readValue(this.#kv, "kv", key, () => this.#get(headKey("kv", key)));
      if (found === null) throw notFound("kv", key);
      return { value: found.value, version: found.versionstamp };
    });
  }

  /**
   * Stores the bytes: inline up to 64 KiB, else as chunks swapped in atomically; with a
   * condition, only if it holds when the head is swapped (checked in the same commit).
   */
  async kvPut(key: string, value: Uint8Array, condition?: KvCondition): Promise<void> {
    if (value.length <= CHUNK_BYTES) {
      return await this.#write(this.#values, "kv", key, { type: "put", head: value, condition });
    }
    await this.#putChunked(this.#values, "kv", key, value, { condition });
  }

  /** Deletes the value and its chunks, or throws `NotFoundError`; if the condition holds. */
  async kvDelete(key: string, condition?: KvCondition): Promise<void> {
    await this.#write(this.#values, "kv", key, { type: "delete", condition });
  }

  /** Lists the keys of the values, in key order. */
  kvList(query: ListQuery): Promise<KeyPage> {
    return this.#list("kv", query);
  }

  /** Returns the sorted items, empty when absent. */
  setGet(set: string): Promise<string[]> {
    return this.#read("set", set, () => retryBusy(() => readItems(this.#kv, set)));
  }

  /**
   * Adds the item (one entry, keyed by its digest) and returns the sorted items. A set of
   * `maxItems` items refuses a new one: the add is planned on the set's items as of its guard
   * entry, and committed only if the guard is unchanged.
   */
  async setAdd(set: string, item: string, maxItems = Infinity): Promise<string[]> {
    return (await this.#write(this.#sets, "set", set, { type: "add", item, maxItems }))!;
  }

  /** Removes the item and returns the sorted items. */
  async setRemove(set: string, item: string): Promise<string[]> {
    return (await this.#write(this.#sets, "set", set, { type: "remove", item }))!;
  }

  /**
   * Deletes the whole set (its items and its guard), or throws `NotFoundError` when it holds
   * no item. A set too large for one commit is deleted in several, one after the other.
   */
  async setDelete(set: string): Promise<void> {
    await this.#write(this.#sets, "set", set, { type: "delete" });
  }

  /** Lists the names of the sets that hold items, in key order. */
  setList(query: ListQuery): Promise<KeyPage> {
    return this.#list("set", query);
  }

  /**
   * Runs the operations all or nothing, in one commit: see `_disk_atomic.ts` and
   * docs/disk.md. A batch that cannot fit one Deno KV commit is refused with
   * `ValueTooLargeError`, nothing changed.
   */
  atomic(operations: readonly BackendOperation[]): Promise<unknown[]> {
    const batch = this.#atomic.run(operations);
    const settled = batch.catch(() => {});
    this.#batches.add(settled);
    settled.then(() => this.#batches.delete(settled));
    return batch;
  }

  /**
   * Every entry, a page at a time: each service's entries in key order, large values read whole
   * from their chunks (see `_export_disk.ts`).
   */
  exportEntries(options?: ExportOptions): AsyncIterable<ExportPage> {
    return pages(readEntries(this.#kv), options);
  }

  /**
   * Writes the entries at once through the group committer (their units share commits), after
   * reading what they replace all at once: a counter set blindly, a flag as `flagSet`, an
   * inline KV or cache value in a unit checked against the head it replaces (a chunked one,
   * or one that replaces chunks, as `kvPut` and `cacheSet` write them), a set replaced in
   * units checked against its guard.
   */
  restore(entries: readonly StoredEntry[]): Promise<void> {
    const read = bulkReader(this.#kv);
    const context = this.#restoring;
    return restoreAll(entries, async (entry) => {
      const { key } = entry;
      switch (entry.service) {
        case "cache": {
          const { value, ttlMs } = entry;
          const expiresAt = ttlMs === null ? Infinity : Date.now() + ttlMs;
          const expiry = ttlMs === null ? undefined : expiresAt;
          const inline = value.length <= INLINE_CACHE_UNITS &&
            await restoreHead(context, read, "cache", key, { value, expiresAt }, expiry);
          return inline || await this.#cachePut(key, value, expiresAt);
        }
        case "counters":
          return await restoreCounter(context, key, entry.value);
        case "flags":
          return await this.flagSet(key, entry.value);
        case "kv": {
          const inline = entry.value.length <= CHUNK_BYTES &&
            await restoreHead(context, read, "kv", key, entry.value, undefined);
          return inline || await this.kvPut(key, entry.value);
        }
        case "sets":
          return await restoreSet(context, read, key, entry.value);
      }
    });
  }

  /**
   * Watches keys: this process's writes are told to the watchers when they are committed, and
   * every process's (on the same file) by polling the watched keys' versionstamps every
   * `watchPollMs` while any is watched (see `_watch_disk.ts`).
   */
  watch(targets: readonly WatchTarget[], signal?: AbortSignal): AsyncIterableIterator<WatchChange> {
    return this.#watch.open(targets, signal);
  }

  /** What the watch poller did so far: polls, reads, keys found changed. */
  get watchStats(): PollStats {
    return { ...this.#watch.stats };
  }

  /** What the group committer did so far: commits, units committed and refused, reads. */
  get commitStats(): CommitStats {
    return { ...this.#committer.stats };
  }

  /**
   * Deletes the chunks of large values that a crash left unreferenced (older than the grace
   * period); the backend runs it in the background too.
   *
   * @returns How many generations of chunks, and chunks, it deleted.
   */
  sweep(): Promise<SweepResult> {
    return sweepChunks(this.#kv, this.#committer, {
      graceMs: this.#graceMs,
      writing: this.#writing,
    });
  }

  /** Waits for the writes in flight and a running sweep, then closes the database. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopSweeps();
    await this.#watch.close();
    await this.#sweeping;
    await Promise.all(this.#batches);
    await Promise.all(
      [this.#counters, this.#sets, this.#cache, this.#values, this.#flags].map((b) => b.drain()),
    );
    await this.#committer.drain();
    this.#kv.close();
  }

  /**
   * Stores a cache value until `expiresAt` (ms since the epoch; Infinity: it never expires,
   * which only a restore writes). Deno KV removes it once it has expired.
   */
  async #cachePut(key: string, value: string, expiresAt: number): Promise<void> {
    const expiry = Number.isFinite(expiresAt) ? expiresAt : undefined; // Deno KV's expireIn
    if (value.length <= INLINE_CACHE_UNITS) {
      const head: CacheHead = { value, expiresAt };
      return await this.#write(this.#cache, "cache", key, {
        type: "put",
        head,
        expiresAt: expiry,
      });
    }
    await this.#putChunked(this.#cache, "cache", key, encoder.encode(value), {
      expiresAt: expiry,
      headExpiresAt: expiresAt,
    });
  }

  /**
   * Puts a large value: its operation takes its place among its key's at once, and waits there
   * while the chunks are written (a conditional put first checks its condition, once the key's
   * earlier operations are done: not worth writing the chunks of a put refused now; the head's
   * unit checks it again); then the head swap goes through the batcher.
   */
  async #putChunked(
    batcher: KeyedBatcher<HeadOp, HeadState, void>,
    service: "cache" | "kv",
    key: string,
    bytes: Uint8Array,
    options: { expiresAt?: number; headExpiresAt?: number; condition?: KvCondition },
  ): Promise<void> {
    const { expiresAt, headExpiresAt, condition } = options;
    const gen = crypto.randomUUID();
    this.#writing.add(gen);
    const ref: ChunkRef = {
      gen,
      chunks: Math.ceil(bytes.length / CHUNK_BYTES),
      size: bytes.length,
    };
    const head = headExpiresAt === undefined ? ref : { ...ref, expiresAt: headExpiresAt };
    const op: HeadOp = { type: "put", head, expiresAt, condition };
    const earlier = batcher.settled(key);
    const staged = (async () => {
      if (condition !== undefined) {
        await earlier;
        const { versionstamp } = await this.#get(headKey(service, key));
        checkCondition("put", key, condition, versionstamp ?? undefined);
      }
      op.chunks = await writeChunks(this.#kv, service, key, bytes, { gen, expiresAt });
    })();
    try {
      await this.#write(batcher, service, key, op, staged);
    } finally {
      this.#writing.delete(gen);
    }
  }

  /**
   * Reads `key` of `service` once the writes of the key asked before have their answers, and
   * counts the read in its key's open group until it is done: the next write of the key closes
   * the group and waits for its reads. So the operations of one key take effect in the order
   * they are called (`keepsCallOrder`). (A write need not wait for the reads of earlier groups:
   * the write that closed each of them waited, and is ahead of it in the key's queue.)
   */
  #read<T>(service: AtomicService, key: string, read: () => Promise<T>): Promise<T> {
    const written = this.#batchers[service].settled(key);
    const groups = this.#reads[service];
    let group = groups.get(key);
    if (group === undefined) groups.set(key, group = { pending: 0 });
    group.pending++;
    return this.#counted(written === undefined ? read() : written.then(read), group, groups, key);
  }

  async #counted<T>(
    result: Promise<T>,
    group: ReadGroup,
    groups: Map<string, ReadGroup>,
    key: string,
  ): Promise<T> {
    try {
      return await result;
    } finally {
      if (--group.pending === 0) {
        if (groups.get(key) === group) groups.delete(key);
        group.done?.();
      }
    }
  }

  /** Runs a write of `key` once the reads of the key asked before it are done (and `ready`). */
  #write<O, S, R>(
    batcher: KeyedBatcher<O, S, R>,
    service: AtomicService,
    key: string,
    op: O,
    ready?: Promise<void>,
  ): Promise<R> {
    const groups = this.#reads[service];
    const group = groups.size === 0 ? undefined : groups.get(key);
    if (group === undefined) return batcher.run(key, op, ready);
    groups.delete(key); // Closed: the reads asked from now on wait for this write.
    const reads = group.closed ??= new Promise<void>((resolve) => group.done = resolve);
    return batcher.run(key, op, ready === undefined ? reads : Promise.all([reads, ready]).then());
  }

  #list(service: AtomicService, query: ListQuery): Promise<KeyPage> {
    return listKeys(this.#kv, LISTED[service], query, this.#maxKeyBytes);
  }

  #get<T>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>> {
    return this.#reader.get<T>(key);
  }
}
