/**
 * The checked front of a backend: validates and normalises every input once, then calls the
 * backend. Everything that serves users (servers, `openBackend()`) goes through it.
 *
 * @module
 */

import type { CounterAmount, KvValue, Operations } from "@purple/protocol";
import type { Backend } from "./backend.ts";
import type { Limits } from "./limits.ts";
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
 * The operations of a backend behind the input checks, and what the servers need to know about
 * the backend.
 *
 * @example
 * ```ts
 * import { type CheckedOperations, openBackend } from "@purple/server/backends";
 *
 * const ops: CheckedOperations = await openBackend({ kind: "memory" });
 * console.log(ops.settlesAtOnce); // true: the memory backend does no I/O
 * await ops.close();
 * ```
 */
export interface CheckedOperations extends Operations {
  /**
   * Whether every operation settles before it returns (see `Backend.settlesAtOnce`): the
   * servers then give it no time limit, which it could not outlast.
   */
  readonly settlesAtOnce: boolean;
}

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
export function checked(backend: Backend, limits: Limits): CheckedOperations {
  return new CheckedBackend(backend, limits);
}

class CheckedBackend implements CheckedOperations {
  readonly settlesAtOnce: boolean;
  #backend: Backend;
  #limits: Limits;

  constructor(backend: Backend, limits: Limits) {
    this.#backend = backend;
    this.#limits = limits;
    this.settlesAtOnce = backend.settlesAtOnce === true;
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
