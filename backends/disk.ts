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

import type { Backend } from "./backend.ts";
import type { Limits } from "./limits.ts";
import { UnavailableError } from "@purple/protocol/errors";
import { notFound, quote, setFull, sortItems } from "./_util.ts";
import { KeyedLock } from "./_keyed_lock.ts";
import {
  CHUNK_BYTES,
  type ChunkRef,
  isChunkRef,
  readChunks,
  replaceHead,
  writeChunks,
} from "./_disk_blob.ts";
import { retryBusy } from "./_disk_busy.ts";
import { CounterBatcher, counterValue } from "./_disk_counter.ts";
import {
  assertDiskLimits,
  counterKey,
  flagKey,
  headKey,
  MAX_ITEM_BYTES,
  MAX_KEY_BYTES,
  setGuardKey,
  setPrefix,
} from "./_disk_keys.ts";

export type { Backend } from "./backend.ts";
export type { Limits } from "./limits.ts";
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
export interface DiskBackendOptions {
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

/** Cache values up to this many UTF-16 units are stored inline (2 bytes a unit at worst). */
const INLINE_CACHE_UNITS = (CHUNK_BYTES - 1024) / 2;

/** How often a read starts over because an overwrite removed the chunks it was reading. */
const MAX_READ_ATTEMPTS = 100;

/** A cache head: the value inline, or a reference to its UTF-8 chunks; and its expiry. */
type CacheHead = { value: string; expiresAt: number } | (ChunkRef & { expiresAt: number });

/** A KV head: the bytes inline, or a reference to their chunks. */
type KvHead = Uint8Array | ChunkRef;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function isDeploy(): boolean {
  try {
    return Deno.env.get("DENO_DEPLOYMENT_ID") !== undefined;
  } catch {
    return false; // No env permission: not on Deno Deploy, where env access is granted.
  }
}

async function digest(item: string): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(item)));
  let hex = "";
  for (const byte of hash) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

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
  return new DiskBackend(kv, options.limits);
}

/**
 * Keeps every service in one Deno KV database, each under its own key prefix. Opened by
 * {@linkcode openDiskBackend}, which picks the file; or built on any open `Deno.Kv`.
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
  #kv: Deno.Kv;
  #counters: CounterBatcher;
  #setLocks = new KeyedLock();
  #closed = false;

  /**
   * Builds the backend on an open database.
   *
   * @param kv The open database; the backend closes it on `close()`.
   * @param limits The limits in force, checked against Deno KV's own.
   * @throws {InvalidArgumentError} When the limits do not fit Deno KV.
   */
  constructor(kv: Deno.Kv, limits: Limits) {
    assertDiskLimits(limits);
    this.#kv = kv;
    this.#counters = new CounterBatcher(kv);
  }

  /** Returns the value, or throws `NotFoundError` when absent or expired (exact to the ms). */
  async cacheGet(key: string): Promise<string> {
    for (let attempt = 1;; attempt++) {
      const head = (await this.#get<CacheHead>(headKey("cache", key))).value;
      if (head === null || head.expiresAt <= Date.now()) throw notFound("cache", key);
      if (!isChunkRef(head)) return head.value;
      const bytes = await readChunks(this.#kv, "cache", key, head);
      if (bytes !== null) return decoder.decode(bytes);
      if (attempt >= MAX_READ_ATTEMPTS) throw this.#busy("cache", key);
    }
  }

  /** Stores the value for `ttlSeconds`; Deno KV removes it some time after it expires. */
  async cacheSet(key: string, value: string, ttlSeconds: number): Promise<void> {
    const expiresAt = Date.now() + ttlSeconds * 1000;
    let head: CacheHead;
    if (value.length <= INLINE_CACHE_UNITS) head = { value, expiresAt };
    else {
      const ref = await writeChunks(this.#kv, "cache", key, encoder.encode(value), { expiresAt });
      head = { ...ref, expiresAt };
    }
    await replaceHead(this.#kv, "cache", key, head, { expiresAt });
  }

  /** Adds `amount` atomically, batching the concurrent increments of one key. */
  counterIncrement(key: string, amount: bigint): Promise<bigint> {
    return this.#counters.increment(key, amount);
  }

  /** Returns the counter, 0n when absent. */
  async counterGet(key: string): Promise<bigint> {
    return counterValue((await this.#get(counterKey(key))).value);
  }

  /** Returns the flag, false when absent. */
  async flagGet(key: string): Promise<boolean> {
    return (await this.#get<boolean>(flagKey(key))).value === true;
  }

  /** Sets the flag. */
  async flagSet(key: string, value: boolean): Promise<void> {
    await retryBusy(() => this.#kv.set(flagKey(key), value));
  }

  /** Returns the bytes, or throws `NotFoundError`. */
  async kvGet(key: string): Promise<Uint8Array> {
    for (let attempt = 1;; attempt++) {
      const head = (await this.#get<KvHead>(headKey("kv", key))).value;
      if (head === null) throw notFound("kv", key);
      if (!isChunkRef(head)) return head;
      const bytes = await readChunks(this.#kv, "kv", key, head);
      if (bytes !== null) return bytes;
      if (attempt >= MAX_READ_ATTEMPTS) throw this.#busy("kv", key);
    }
  }

  /** Stores the bytes: inline up to 64 KiB, else as chunks swapped in atomically. */
  async kvPut(key: string, value: Uint8Array): Promise<void> {
    const head: KvHead = value.length <= CHUNK_BYTES
      ? value
      : await writeChunks(this.#kv, "kv", key, value);
    await replaceHead(this.#kv, "kv", key, head);
  }

  /** Deletes the value and its chunks, or throws `NotFoundError`. */
  async kvDelete(key: string): Promise<void> {
    if (!await replaceHead(this.#kv, "kv", key, undefined)) throw notFound("kv", key);
  }

  /** Returns the sorted items, empty when absent. */
  setGet(set: string): Promise<string[]> {
    return retryBusy(() => this.#items(set));
  }

  async #items(set: string): Promise<string[]> {
    const items: string[] = [];
    for await (
      const entry of this.#kv.list<string>({ prefix: setPrefix(set) }, { batchSize: 500 })
    ) {
      items.push(entry.value);
    }
    return sortItems(items);
  }

  /**
   * Adds the item (one entry, keyed by its digest) and returns the sorted items. A set of
   * `maxItems` items refuses a new one: the items are read and the item written in one
   * atomic step, checked against the set's guard entry.
   */
  async setAdd(set: string, item: string, maxItems = Infinity): Promise<string[]> {
    const entry = [...setPrefix(set), await digest(item)];
    return await this.#setLocks.run(set, () => this.#changeSet(set, item, entry, maxItems));
  }

  /** Removes the item and returns the sorted items. */
  async setRemove(set: string, item: string): Promise<string[]> {
    const entry = [...setPrefix(set), await digest(item)];
    return await this.#setLocks.run(set, () => this.#changeSet(set, item, entry, undefined));
  }

  /**
   * Adds (with `maxItems`) or removes (without) an item: reads the guard, then the items;
   * commits the change only if the guard is unchanged (no other change of the set came in
   * between, from this process or another), else reads again. Returns the items right after.
   */
  async #changeSet(
    set: string,
    item: string,
    entry: Deno.KvKey,
    maxItems: number | undefined,
  ): Promise<string[]> {
    const adding = maxItems !== undefined;
    while (true) {
      const guard = await this.#get<number>(setGuardKey(set));
      const items = await retryBusy(() => this.#items(set));
      const index = items.indexOf(item);
      if (adding === index >= 0) return items;
      if (adding && items.length >= maxItems) throw setFull(set, item, items.length, maxItems);
      const committed = await retryBusy(() => {
        const atomic = this.#kv.atomic().check(guard);
        if (adding) atomic.set(entry, item);
        else atomic.delete(entry);
        return atomic.set(setGuardKey(set), items.length + (adding ? 1 : -1)).commit();
      });
      if (committed.ok) {
        if (adding) return sortItems([...items, item]);
        items.splice(index, 1);
        return items;
      }
    }
  }

  /** Waits for the counter commits in flight, then closes the database. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#counters.drain();
    this.#kv.close();
  }

  #get<T>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>> {
    return retryBusy(() => this.#kv.get<T>(key));
  }

  #busy(service: "cache" | "kv", key: string): UnavailableError {
    return new UnavailableError(
      `Cannot read ${service} key ${
        quote(key)
      }: it was overwritten during ${MAX_READ_ATTEMPTS} reads in a row`,
    );
  }
}
