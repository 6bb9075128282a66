/**
 * The memory backend: everything in Maps inside the server process. Fast; lost on restart.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Backend } from "./backend.ts";
import { addInt64, backgroundInterval, notFound, setFull, sortItems } from "./_util.ts";

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

/** Bytes as a one-byte string, one character per byte (latin1), byte for byte. */
function pack(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** The bytes of a packed string, in a new array. */
function unpack(packed: string): Uint8Array {
  const bytes = new Uint8Array(packed.length);
  for (let i = 0; i < packed.length; i++) bytes[i] = packed.charCodeAt(i);
  return bytes;
}

/**
 * Keeps every service in its own Map. Expired cache entries are dropped when read and by a
 * periodic sweep, so a long-running server does not grow without bound.
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
  #cache = new Map<string, CacheEntry>();
  #counters = new Map<string, bigint>();
  #flags = new Map<string, boolean>();
  /** Small values as packed strings (see `pack`), larger ones as their own copy. */
  #kv = new Map<string, Uint8Array | string>();
  #sets = new Map<string, Set<string>>();
  #now: () => number;
  #stopSweeping: () => void;

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
    return this.#cache.size;
  }

  /** Removes every expired cache entry now. */
  sweep(): void {
    const now = this.#now();
    for (const [key, entry] of this.#cache) {
      if (entry.expiresAt <= now) this.#cache.delete(key);
    }
  }

  /** Returns the value, or throws `NotFoundError` when absent or expired. */
  cacheGet(key: string): Promise<string> {
    const entry = this.#cache.get(key);
    if (entry === undefined) return Promise.reject(notFound("cache", key));
    if (entry.expiresAt <= this.#now()) {
      this.#cache.delete(key);
      return Promise.reject(notFound("cache", key));
    }
    return Promise.resolve(entry.value);
  }

  /** Stores the value for `ttlSeconds`. */
  cacheSet(key: string, value: string, ttlSeconds: number): Promise<void> {
    this.#cache.set(key, { value, expiresAt: this.#now() + ttlSeconds * 1000 });
    return Promise.resolve();
  }

  /** Adds `amount`; the read and the write happen in one turn of the event loop. */
  counterIncrement(key: string, amount: bigint): Promise<bigint> {
    try {
      const value = addInt64(key, this.#counters.get(key) ?? 0n, amount);
      this.#counters.set(key, value);
      return Promise.resolve(value);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Returns the counter, 0n when absent. */
  counterGet(key: string): Promise<bigint> {
    return Promise.resolve(this.#counters.get(key) ?? 0n);
  }

  /** Returns the flag, false when absent. */
  flagGet(key: string): Promise<boolean> {
    return Promise.resolve(this.#flags.get(key) ?? false);
  }

  /** Sets the flag. */
  flagSet(key: string, value: boolean): Promise<void> {
    this.#flags.set(key, value);
    return Promise.resolve();
  }

  /** Returns a copy of the bytes, or throws `NotFoundError`. */
  kvGet(key: string): Promise<Uint8Array> {
    const value = this.#kv.get(key);
    if (value === undefined) return Promise.reject(notFound("kv", key));
    return Promise.resolve(typeof value === "string" ? unpack(value) : value.slice());
  }

  /** Stores a copy of the bytes. */
  kvPut(key: string, value: Uint8Array): Promise<void> {
    this.#kv.set(key, value.length <= PACKED_BYTES ? pack(value) : value.slice());
    return Promise.resolve();
  }

  /** Deletes the value, or throws `NotFoundError`. */
  kvDelete(key: string): Promise<void> {
    if (!this.#kv.delete(key)) return Promise.reject(notFound("kv", key));
    return Promise.resolve();
  }

  /** Returns the sorted items. */
  setGet(set: string): Promise<string[]> {
    return Promise.resolve(this.#items(set));
  }

  /** Adds the item and returns the sorted items; a full set refuses a new item. */
  setAdd(set: string, item: string, maxItems = Infinity): Promise<string[]> {
    let items = this.#sets.get(set);
    const size = items?.size ?? 0;
    if (size >= maxItems && !items!.has(item)) {
      return Promise.reject(setFull(set, item, size, maxItems));
    }
    if (items === undefined) this.#sets.set(set, items = new Set());
    items.add(item);
    return Promise.resolve(this.#items(set));
  }

  /** Removes the item and returns the sorted items; an emptied set is dropped. */
  setRemove(set: string, item: string): Promise<string[]> {
    const items = this.#sets.get(set);
    if (items !== undefined && items.delete(item) && items.size === 0) this.#sets.delete(set);
    return Promise.resolve(this.#items(set));
  }

  /** Stops the sweep and drops all data. */
  close(): Promise<void> {
    this.#stopSweeping();
    for (const map of [this.#cache, this.#counters, this.#flags, this.#kv, this.#sets]) {
      map.clear();
    }
    return Promise.resolve();
  }

  #items(set: string): string[] {
    return sortItems([...(this.#sets.get(set) ?? [])]);
  }
}
