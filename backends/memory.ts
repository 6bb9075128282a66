/**
 * The memory backend: everything in Maps inside the server process. Fast; lost on restart.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { KeyPage, KeyService, KvEntry, WatchChange } from "@purple/protocol";
import type { WatchTarget } from "@purple/protocol/watch";
import {
  AtomicBatchError,
  type Backend,
  type BackendOperation,
  type ExportOptions,
  type ExportPage,
  type KvCondition,
  type ListQuery,
  RestoreError,
  type StoredEntry,
} from "./backend.ts";
import {
  absent,
  addInt64,
  backgroundInterval,
  checkCondition,
  notFound,
  setFull,
  sortItems,
} from "./_util.ts";
import { decodeCursor, encodeCursor, isAfterKey } from "./_cursor.ts";
import { type Exists, KeyIndex } from "./_key_index.ts";
import { pages } from "./_export_pages.ts";
import { WatchHub } from "./_watch_hub.ts";

/**
 * Options of {@linkcode MemoryBackend}.
 *
 * @example
 * ```ts
 * import { checked, DEFAULT_LIMITS, MemoryBackend } from "@purple/server/backends";
 * import type { MemoryBackendOptions } from "@purple/server/backends";
 *
 * let now = 0;
 * const options: MemoryBackendOptions = { now: () => now, sweepIntervalMs: 60_000 };
 * const ops = checked(new MemoryBackend(options), DEFAULT_LIMITS);
 * await ops.cacheSet("session", "a1b2c3", 5);
 * now += 5_000; // The entry has expired: cacheGet("session") now rejects with NotFoundError.
 * await ops.close();
 * ```
 */
export interface MemoryBackendOptions {
  /** How often expired cache entries are swept out, in milliseconds. Default 1000. */
  sweepIntervalMs?: number;
  /** The clock, in milliseconds since the epoch (tests replace it). Default `Date.now`. */
  now?: () => number;
}

interface CacheEntry {
  value: string;
  expiresAt: number;
}

/**
 * KV values up to this many bytes are kept as packed strings: a Uint8Array of its own costs
 * some 500 bytes besides its content (its object, its ArrayBuffer and the buffer's allocation),
 * a one-byte string 16. One million values of 100 bytes take about 600 MB less this way; and
 * for values this small, packing and unpacking cost no more than copying an array.
 */
const PACKED_BYTES = 256;

/**
 * A packed value starts with its version, in this many one-byte characters (48 bits: a new
 * version every nanosecond would last three days; one a microsecond, nine years).
 */
const VERSION_CHARS = 6;

/** A larger value: its own copy of the bytes, and its version. */
interface LargeValue {
  bytes: Uint8Array;
  version: number;
}

/** Bytes as a one-byte string, one character per byte (latin1), after the version's. */
function pack(version: number, bytes: Uint8Array): string {
  let header = "";
  for (let i = VERSION_CHARS - 1; i >= 0; i--) {
    header += String.fromCharCode(Math.floor(version / 2 ** (8 * i)) % 256);
  }
  return header + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** The bytes of a packed value, in a new array. */
function unpack(packed: string): Uint8Array {
  const bytes = new Uint8Array(packed.length - VERSION_CHARS);
  for (let i = 0; i < bytes.length; i++) bytes[i] = packed.charCodeAt(i + VERSION_CHARS);
  return bytes;
}

/** The version of a packed value. */
function packedVersion(packed: string): number {
  let version = 0;
  for (let i = 0; i < VERSION_CHARS; i++) version = version * 256 + packed.charCodeAt(i);
  return version;
}

/** A copy of a stored value's bytes. */
function bytesOf(value: string | LargeValue): Uint8Array {
  return typeof value === "string" ? unpack(value) : value.bytes.slice();
}

/** A value to store: packed when small, else a copy of its bytes. */
function stored(version: number, bytes: Uint8Array): string | LargeValue {
  return bytes.length <= PACKED_BYTES ? pack(version, bytes) : { bytes: bytes.slice(), version };
}

function versionOf(value: string | LargeValue): string {
  return (typeof value === "string" ? packedVersion(value) : value.version).toString(36);
}

/**
 * A service's Map and the order of its keys, for listings; its writes (`set`, `delete`,
 * `touch` for a value changed in place) tell the watchers.
 */
class Keyed<V> {
  readonly map = new Map<string, V>();
  readonly index = new KeyIndex();

  constructor(
    readonly service: KeyService,
    readonly changed: (service: KeyService, key: string) => void,
  ) {}

  set(key: string, value: V): void {
    if (!this.map.has(key)) this.index.add(key);
    this.map.set(key, value);
    this.changed(this.service, key);
  }

  delete(key: string): void {
    if (this.map.delete(key)) this.changed(this.service, key);
  }

  /** The value of `key` changed in place. */
  touch(key: string): void {
    this.changed(this.service, key);
  }

  clear(): void {
    this.map.clear();
    this.index.clear();
  }
}

/**
 * Keeps every service in its own Map. Expired cache entries are dropped when read and by a
 * periodic sweep, so a long-running server does not grow without bound. Every operation runs
 * in one turn of the event loop, so each is atomic, and an atomic batch is too (what it changed
 * is undone when one of its operations fails).
 *
 * @example
 * ```ts
 * import { checked, DEFAULT_LIMITS, MemoryBackend } from "@purple/server/backends";
 *
 * const ops = checked(new MemoryBackend(), DEFAULT_LIMITS);
 * console.log(await ops.counterIncrement("hits", 2)); // 2n
 * await ops.close();
 * ```
 */
export class MemoryBackend implements Backend {
  /** Always true: every operation settles before it returns (no I/O). */
  readonly settlesAtOnce = true;
  /** Always true: every operation takes effect when it is called. */
  readonly keepsCallOrder = true;
  #hub = new WatchHub({
    read: (targets) => Promise.resolve(targets.map((target) => this.#state(target))),
    now: () => this.#now(),
  });
  #changed = (service: KeyService, key: string) => this.#hub.changed(service, key);
  #cache = new Keyed<CacheEntry>("cache", this.#changed);
  #counters = new Keyed<bigint>("counters", this.#changed);
  #flags = new Keyed<boolean>("flags", this.#changed);
  /** Small values as packed strings (see `pack`), larger ones as their own copy. */
  #kv = new Keyed<string | LargeValue>("kv", this.#changed);
  #sets = new Keyed<Set<string>>("sets", this.#changed);
  /** The last KV version given. */
  #version = 0;
  #now: () => number;
  #stopSweeping: () => void;
  /** While an atomic batch runs: how to undo each change it made, in order. */
  #undo: Array<() => void> | undefined;

  /**
   * Creates an empty backend.
   *
   * @param options Sweep interval and clock.
   */
  constructor(options: MemoryBackendOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#stopSweeping = backgroundInterval(() => this.sweep(), options.sweepIntervalMs ?? 1000);
  }

  /** The number of cache entries held, expired or not (for tests and metrics). */
  get cacheSize(): number {
    return this.#cache.map.size;
  }

  /** Removes every expired cache entry now. */
  sweep(): void {
    const now = this.#now();
    for (const [key, entry] of this.#cache.map) {
      if (entry.expiresAt <= now) this.#cache.map.delete(key);
    }
  }

  /** Returns the value, or throws `NotFoundError` when absent or expired. */
  cacheGet(key: string): Promise<string> {
    return this.#run(() => this.#cacheGet(key));
  }

  /** Stores the value for `ttlSeconds`. */
  cacheSet(key: string, value: string, ttlSeconds: number): Promise<void> {
    return this.#run(() => this.#cacheSet(key, value, ttlSeconds));
  }

  /** Deletes the entry, or throws `NotFoundError` when absent or expired. */
  cacheDelete(key: string): Promise<void> {
    return this.#run(() => this.#cacheDelete(key));
  }

  /** Lists the keys of the entries that have not expired. */
  cacheList(query: ListQuery): Promise<KeyPage> {
    const now = this.#now();
    return this.#run(() =>
      this.#list(this.#cache, query, (key) => (this.#cache.map.get(key)?.expiresAt ?? 0) > now)
    );
  }

  /** Adds `amount`; the read and the write happen in one turn of the event loop. */
  counterIncrement(key: string, amount: bigint): Promise<bigint> {
    return this.#run(() => this.#counterIncrement(key, amount));
  }

  /** Returns the counter, 0n when absent. */
  counterGet(key: string): Promise<bigint> {
    return Promise.resolve(this.#counters.map.get(key) ?? 0n);
  }

  /** Deletes the counter, or throws `NotFoundError` when absent. */
  counterDelete(key: string): Promise<void> {
    return this.#run(() => this.#delete(this.#counters, key, "counter"));
  }

  /** Lists the keys of the counters. */
  counterList(query: ListQuery): Promise<KeyPage> {
    return this.#run(() => this.#list(this.#counters, query));
  }

  /** Returns the flag, false when absent. */
  flagGet(key: string): Promise<boolean> {
    return Promise.resolve(this.#flags.map.get(key) ?? false);
  }

  /** Sets the flag. */
  flagSet(key: string, value: boolean): Promise<void> {
    return this.#run(() => this.#write(this.#flags, key, value));
  }

  /** Deletes the flag, or throws `NotFoundError` when it was never set. */
  flagDelete(key: string): Promise<void> {
    return this.#run(() => this.#delete(this.#flags, key, "flag"));
  }

  /** Lists the keys of the flags that are set. */
  flagList(query: ListQuery): Promise<KeyPage> {
    return this.#run(() => this.#list(this.#flags, query));
  }

  /** Returns a copy of the bytes and their version, or throws `NotFoundError`. */
  kvGetEntry(key: string): Promise<KvEntry> {
    return this.#run(() => this.#kvGetEntry(key));
  }

  /** Stores a copy of the bytes under a new version, if the condition holds. */
  kvPut(key: string, value: Uint8Array, condition?: KvCondition): Promise<void> {
    return this.#run(() => this.#kvPut(key, value, condition));
  }

  /** Deletes the value, or throws `NotFoundError`; if the condition holds. */
  kvDelete(key: string, condition?: KvCondition): Promise<void> {
    return this.#run(() => this.#kvDelete(key, condition));
  }

  /** Lists the keys of the values. */
  kvList(query: ListQuery): Promise<KeyPage> {
    return this.#run(() => this.#list(this.#kv, query));
  }

  /** Returns the sorted items. */
  setGet(set: string): Promise<string[]> {
    return Promise.resolve(this.#items(set));
  }

  /** Adds the item and returns the sorted items; a full set refuses a new item. */
  setAdd(set: string, item: string, maxItems = Infinity): Promise<string[]> {
    return this.#run(() => this.#setAdd(set, item, maxItems));
  }

  /** Removes the item and returns the sorted items; an emptied set is dropped. */
  setRemove(set: string, item: string): Promise<string[]> {
    return this.#run(() => this.#setRemove(set, item));
  }

  /** Deletes the whole set, or throws `NotFoundError` when it holds no item. */
  setDelete(set: string): Promise<void> {
    return this.#run(() => this.#delete(this.#sets, set, "set"));
  }

  /** Lists the names of the sets that hold items. */
  setList(query: ListQuery): Promise<KeyPage> {
    return this.#run(() => this.#list(this.#sets, query));
  }

  /**
   * Runs the operations in one turn of the event loop; when one fails, undoes what the others
   * changed, in reverse order, and rejects with {@linkcode AtomicBatchError}.
   */
  atomic(operations: readonly BackendOperation[]): Promise<unknown[]> {
    const undo: Array<() => void> = [];
    this.#undo = undo;
    const results: unknown[] = [];
    try {
      for (const [index, operation] of operations.entries()) {
        try {
          results.push(this.#apply(operation));
        } catch (error) {
          for (const step of undo.reverse()) step();
          return Promise.reject(new AtomicBatchError(index, error as Error));
        }
      }
      return Promise.resolve(results);
    } finally {
      this.#undo = undefined;
    }
  }

  /** Every entry, a page at a time, in-process (entries written meanwhile may or may not be in it). */
  exportEntries(options?: ExportOptions): AsyncIterable<ExportPage> {
    return pages(this.#entries(), options);
  }

  /** Writes the entries in one turn of the event loop: a set is replaced by its items. */
  restore(entries: readonly StoredEntry[]): Promise<void> {
    for (const [index, entry] of entries.entries()) {
      try {
        this.#restore(entry);
      } catch (error) {
        return Promise.reject(new RestoreError(index, error as Error));
      }
    }
    return Promise.resolve();
  }

  /**
   * Watches keys: each write tells the watchers of its key at once (in the same turn), and a
   * watched cache entry is looked at again when it expires.
   */
  watch(targets: readonly WatchTarget[], signal?: AbortSignal): AsyncIterableIterator<WatchChange> {
    return this.#hub.open(targets, signal);
  }

  /** Stops the sweep, ends every watch and drops all data. */
  close(): Promise<void> {
    this.#stopSweeping();
    this.#hub.close();
    for (const keyed of [this.#cache, this.#counters, this.#flags, this.#kv, this.#sets]) {
      keyed.clear();
    }
    return Promise.resolve();
  }

  /** Every entry, read when asked for (cache entries that have not expired, by then). */
  *#entries(): Generator<StoredEntry> {
    for (const [key, { value, expiresAt }] of this.#cache.map) {
      const ttlMs = expiresAt - this.#now();
      if (ttlMs <= 0) continue;
      yield { service: "cache", key, value, ttlMs: Number.isFinite(ttlMs) ? ttlMs : null };
    }
    for (const [key, value] of this.#counters.map) yield { service: "counters", key, value };
    for (const [key, value] of this.#flags.map) yield { service: "flags", key, value };
    for (const [key, value] of this.#kv.map) {
      yield { service: "kv", key, value: bytesOf(value) };
    }
    for (const [key, items] of this.#sets.map) {
      yield { service: "sets", key, value: sortItems([...items]) };
    }
  }

  #restore(entry: StoredEntry): void {
    switch (entry.service) {
      case "cache": {
        const expiresAt = entry.ttlMs === null ? Infinity : this.#now() + entry.ttlMs;
        return this.#write(this.#cache, entry.key, { value: entry.value, expiresAt });
      }
      case "counters":
        return this.#write(this.#counters, entry.key, entry.value);
      case "flags":
        return this.#write(this.#flags, entry.key, entry.value);
      case "kv":
        return this.#storeKv(entry.key, entry.value);
      case "sets":
        return this.#write(this.#sets, entry.key, new Set(entry.value));
    }
  }

  /** Runs a synchronous operation as the async contract asks: its throw is a rejection. */
  #run<T>(operation: () => T): Promise<T> {
    try {
      return Promise.resolve(operation());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** One operation of an atomic batch, synchronously. */
  #apply(operation: BackendOperation): unknown {
    switch (operation.op) {
      case "cacheGet":
        return this.#cacheGet(...operation.args);
      case "cacheSet":
        return this.#cacheSet(...operation.args);
      case "cacheDelete":
        return this.#cacheDelete(...operation.args);
      case "counterIncrement":
        return this.#counterIncrement(...operation.args);
      case "counterGet":
        return this.#counters.map.get(operation.args[0]) ?? 0n;
      case "counterDelete":
        return this.#delete(this.#counters, operation.args[0], "counter");
      case "flagGet":
        return this.#flags.map.get(operation.args[0]) ?? false;
      case "flagSet":
        return this.#write(this.#flags, ...operation.args);
      case "flagDelete":
        return this.#delete(this.#flags, operation.args[0], "flag");
      case "kvGetEntry":
        return this.#kvGetEntry(...operation.args);
      case "kvPut":
        return this.#kvPut(...operation.args);
      case "kvDelete":
        return this.#kvDelete(...operation.args);
      case "setGet":
        return this.#items(operation.args[0]);
      case "setAdd":
        return this.#setAdd(operation.args[0], operation.args[1], operation.args[2] ?? Infinity);
      case "setRemove":
        return this.#setRemove(...operation.args);
      case "setDelete":
        return this.#delete(this.#sets, operation.args[0], "set");
    }
  }

  /** Writes a Map entry, noting how to undo it while a batch runs. */
  #write<V>(keyed: Keyed<V>, key: string, value: V): void {
    if (this.#undo !== undefined) this.#noteUndo(keyed, key);
    keyed.set(key, value);
  }

  /** Deletes a Map entry (NotFound when absent), noting how to undo it while a batch runs. */
  #delete<V>(keyed: Keyed<V>, key: string, what: Parameters<typeof absent>[0]): void {
    if (!keyed.map.has(key)) throw absent(what, key);
    if (this.#undo !== undefined) this.#noteUndo(keyed, key);
    keyed.delete(key);
  }

  #noteUndo<V>(keyed: Keyed<V>, key: string): void {
    const had = keyed.map.has(key);
    const before = keyed.map.get(key) as V;
    // A set is changed in place: undoing restores a copy of it.
    const copy = before instanceof Set ? new Set(before) as V : before;
    this.#undo!.push(() => had ? keyed.set(key, copy) : keyed.delete(key));
  }

  #cacheGet(key: string): string {
    const entry = this.#cache.map.get(key);
    if (entry === undefined) throw notFound("cache", key);
    if (entry.expiresAt <= this.#now()) {
      if (this.#undo === undefined) this.#cache.map.delete(key);
      throw notFound("cache", key);
    }
    return entry.value;
  }

  #cacheSet(key: string, value: string, ttlSeconds: number): void {
    this.#write(this.#cache, key, { value, expiresAt: this.#now() + ttlSeconds * 1000 });
  }

  #cacheDelete(key: string): void {
    const entry = this.#cache.map.get(key);
    if (entry !== undefined && entry.expiresAt <= this.#now()) {
      this.#cache.map.delete(key);
      throw absent("cache key", key);
    }
    this.#delete(this.#cache, key, "cache key");
  }

  #counterIncrement(key: string, amount: bigint): bigint {
    const value = addInt64(key, this.#counters.map.get(key) ?? 0n, amount);
    this.#write(this.#counters, key, value);
    return value;
  }

  /** A copy of the value's bytes and its version, `undefined` when absent. */
  #kvEntry(key: string): KvEntry | undefined {
    const value = this.#kv.map.get(key);
    return value === undefined ? undefined : { value: bytesOf(value), version: versionOf(value) };
  }

  #kvGetEntry(key: string): KvEntry {
    const entry = this.#kvEntry(key);
    if (entry === undefined) throw notFound("kv", key);
    return entry;
  }

  #kvPut(key: string, bytes: Uint8Array, condition?: KvCondition): void {
    const current = this.#kv.map.get(key);
    checkCondition("put", key, condition, current && versionOf(current));
    this.#storeKv(key, bytes);
  }

  /** Stores a copy of the bytes under a new version. */
  #storeKv(key: string, bytes: Uint8Array): void {
    this.#write(this.#kv, key, stored(++this.#version, bytes));
  }

  #kvDelete(key: string, condition?: KvCondition): void {
    const current = this.#kv.map.get(key);
    checkCondition("delete", key, condition, current && versionOf(current));
    if (current === undefined) throw notFound("kv", key);
    if (this.#undo !== undefined) this.#noteUndo(this.#kv, key);
    this.#kv.delete(key);
  }

  #setAdd(set: string, item: string, maxItems: number): string[] {
    const items = this.#sets.map.get(set);
    const size = items?.size ?? 0;
    if (items?.has(item)) return this.#items(set);
    if (size >= maxItems) throw setFull(set, item, size, maxItems);
    if (this.#undo !== undefined) this.#noteUndo(this.#sets, set);
    if (items === undefined) this.#sets.set(set, new Set([item]));
    else {
      items.add(item);
      this.#sets.touch(set);
    }
    return this.#items(set);
  }

  #setRemove(set: string, item: string): string[] {
    const items = this.#sets.map.get(set);
    if (items === undefined || !items.has(item)) return this.#items(set);
    if (this.#undo !== undefined) this.#noteUndo(this.#sets, set);
    items.delete(item);
    if (items.size === 0) this.#sets.delete(set);
    else this.#sets.touch(set);
    return this.#items(set);
  }

  /** The state of a watched key, now. */
  #state({ service, key }: WatchTarget): WatchChange {
    switch (service) {
      case "cache": {
        const entry = this.#cache.map.get(key);
        return entry !== undefined && entry.expiresAt > this.#now()
          ? { service, key, exists: true, value: entry.value, expiresAt: entry.expiresAt }
          : { service, key, exists: false };
      }
      case "counters": {
        const value = this.#counters.map.get(key);
        return { service, key, exists: value !== undefined, value: value ?? 0n };
      }
      case "flags": {
        const value = this.#flags.map.get(key);
        return { service, key, exists: value !== undefined, value: value ?? false };
      }
      case "kv": {
        const entry = this.#kvEntry(key);
        return entry === undefined
          ? { service, key, exists: false }
          : { service, key, exists: true, value: entry.value, version: entry.version };
      }
      case "sets": {
        const items = this.#items(key);
        return { service, key, exists: items.length > 0, items };
      }
    }
  }

  #items(set: string): string[] {
    return sortItems([...(this.#sets.map.get(set) ?? [])]);
  }

  #list<V>(keyed: Keyed<V>, query: ListQuery, exists?: Exists): KeyPage {
    const after = query.cursor === undefined
      ? undefined
      : decodeCursor("memory", query.cursor, isAfterKey).k;
    const { keys, more } = keyed.index.page(
      query.prefix,
      after,
      query.limit,
      exists ?? ((key) => keyed.map.has(key)),
    );
    return more ? { keys, cursor: encodeCursor("memory", { k: keys.at(-1)! }) } : { keys };
  }
}
