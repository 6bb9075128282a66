/**
 * The checked front of a backend: validates and normalises every input once, then calls the
 * backend. Everything that serves users (servers, `openBackend()`) goes through it.
 *
 * @module
 */

import type { CounterAmount, KvValue, Operations } from "@purple/client";
import type { Backend } from "./backend.ts";
import type { Limits } from "./limits.ts";
import { MemoryBackend } from "./memory.ts";
import {
  assertCacheValue,
  assertFlag,
  assertItem,
  assertKey,
  normalizeAmount,
  normalizeKvValue,
  normalizeTtl,
} from "./validate.ts";

/**
 * Wraps a backend so that every input is validated against `limits` before it reaches it.
 *
 * @param backend The backend to protect.
 * @param limits The limits in force.
 * @returns The operations, ready to serve.
 *
 * @example
 * ```ts
 * import { checked, DEFAULT_LIMITS, MemoryBackend } from "@purple/server/backends";
 *
 * const ops = checked(new MemoryBackend(), DEFAULT_LIMITS);
 * await ops.flagSet("beta", true);
 * await ops.close();
 * ```
 */
export function checked(backend: Backend, limits: Limits): Operations {
  return new CheckedOperations(backend, limits);
}

/**
 * Whether every operation of `ops` settles before it returns: the memory backend behind the
 * checks, which does no I/O. Such an operation cannot outlast a time limit (a timer runs only
 * once it has settled), so the servers do not wrap it in one.
 *
 * @param ops Operations from `checked()` (anything else, a wrapper of them included, answers
 * `false`).
 * @returns Whether they are the checked memory backend itself.
 */
export function settlesAtOnce(ops: Operations): boolean {
  return CheckedOperations.settlesAtOnce(ops);
}

class CheckedOperations implements Operations {
  #backend: Backend;
  #limits: Limits;
  /** The memory backend itself (not a subclass): see {@linkcode settlesAtOnce}. */
  #atOnce: boolean;

  constructor(backend: Backend, limits: Limits) {
    this.#backend = backend;
    this.#limits = limits;
    this.#atOnce = backend.constructor === MemoryBackend;
  }

  /** A brand check, which a wrapper (such as a Proxy that delays calls) does not pass. */
  static settlesAtOnce(ops: Operations): boolean {
    return #atOnce in ops && ops.#atOnce;
  }

  async cacheGet(key: string): Promise<string> {
    assertKey(key, this.#limits);
    return await this.#backend.cacheGet(key);
  }

  async cacheSet(key: string, value: string, ttl?: number): Promise<void> {
    assertKey(key, this.#limits);
    assertCacheValue(value, this.#limits);
    return await this.#backend.cacheSet(key, value, normalizeTtl(ttl));
  }

  async counterIncrement(key: string, amount: CounterAmount): Promise<bigint> {
    assertKey(key, this.#limits);
    return await this.#backend.counterIncrement(key, normalizeAmount(amount));
  }

  async counterGet(key: string): Promise<bigint> {
    assertKey(key, this.#limits);
    return await this.#backend.counterGet(key);
  }

  async flagGet(key: string): Promise<boolean> {
    assertKey(key, this.#limits);
    return await this.#backend.flagGet(key);
  }

  async flagSet(key: string, value: boolean): Promise<void> {
    assertKey(key, this.#limits);
    assertFlag(value);
    return await this.#backend.flagSet(key, value);
  }

  async kvGet(key: string): Promise<Uint8Array> {
    assertKey(key, this.#limits);
    return await this.#backend.kvGet(key);
  }

  async kvPut(key: string, value: KvValue): Promise<void> {
    assertKey(key, this.#limits);
    return await this.#backend.kvPut(key, normalizeKvValue(value, this.#limits));
  }

  async kvDelete(key: string): Promise<void> {
    assertKey(key, this.#limits);
    return await this.#backend.kvDelete(key);
  }

  async setGet(set: string): Promise<string[]> {
    assertKey(set, this.#limits);
    return await this.#backend.setGet(set);
  }

  async setAdd(set: string, item: string): Promise<string[]> {
    assertKey(set, this.#limits);
    assertItem(item, this.#limits);
    return await this.#backend.setAdd(set, item, this.#limits.maxSetItems);
  }

  async setRemove(set: string, item: string): Promise<string[]> {
    assertKey(set, this.#limits);
    assertItem(item, this.#limits);
    return await this.#backend.setRemove(set, item);
  }

  async close(): Promise<void> {
    return await this.#backend.close();
  }
}
