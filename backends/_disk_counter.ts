// Counter increments on Deno KV with group commit. Private to this folder.
//
// Each increment is a read-modify-write made atomic by a versionstamp check, retried on a
// conflict (another instance or process wrote the counter in between). Within one process,
// increments of one key that arrive while a commit for that key is in flight wait for it, then
// all go into the next single commit: each caller gets its own running result, in arrival
// order, and one caller's overflow is refused without touching the others. The last committed
// value and versionstamp of a key are remembered, so a batch usually costs one commit and no
// read; the check turns a stale memory into a retry.

import { addInt64 } from "./_util.ts";
import { retryBusy } from "./_disk_busy.ts";
import { counterKey } from "./_disk_keys.ts";
import type { Answer, BatchModel } from "./_disk_batch.ts";
import { UnitBuilder } from "./_disk_commits.ts";
import type { PointReader } from "./_disk_reads.ts";

interface Pending {
  amount: bigint;
  resolve: (value: bigint) => void;
  reject: (error: unknown) => void;
}

interface Known {
  value: bigint;
  versionstamp: string | null;
}

interface OldCounterState {
  /** Increments waiting for the next commit. */
  queue: Pending[];
  /** Whether a flush loop is running for this key. */
  busy: boolean;
  /** The value and versionstamp last read or committed, if trusted. */
  known?: Known;
}

/** How many keys' states are kept before idle ones are forgotten. */
const MAX_STATES = 4096;

function toBigInt(value: unknown): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return BigInt(value);
  throw new TypeError(`Cannot read a counter: found a stored ${typeof value}`);
}

/** Reads a stored counter value (absent is 0n). */
export function counterValue(value: unknown): bigint {
  return toBigInt(value);
}

/** Batches the increments of each key into as few atomic commits as possible. */
export class CounterBatcher {
  #kv: Deno.Kv;
  #states = new Map<string, OldCounterState>();
  #flushes = new Set<Promise<void>>();

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Adds `amount` to the counter and resolves with the result of this very increment. */
  increment(key: string, amount: bigint): Promise<bigint> {
    return new Promise((resolve, reject) => {
      let state = this.#states.get(key);
      if (state === undefined) {
        if (this.#states.size >= MAX_STATES) this.#forgetIdle();
        state = { queue: [], busy: false };
        this.#states.set(key, state);
      }
      state.queue.push({ amount, resolve, reject });
      if (!state.busy) {
        state.busy = true;
        const flush = this.#flush(key, state);
        this.#flushes.add(flush);
        flush.then(() => this.#flushes.delete(flush));
      }
    });
  }

  /** Resolves once no commit is in flight. */
  async drain(): Promise<void> {
    while (this.#flushes.size > 0) await Promise.all(this.#flushes);
  }

  async #flush(key: string, state: OldCounterState): Promise<void> {
    await undefined; // Let the callers of this same turn join the first batch.
    while (state.queue.length > 0) {
      const batch = state.queue;
      state.queue = [];
      await this.#commit(key, state, batch);
    }
    state.busy = false;
  }

  async #commit(key: string, state: OldCounterState, batch: Pending[]): Promise<void> {
    const kvKey = counterKey(key);
    const results: (bigint | Error)[] = new Array(batch.length);
    try {
      for (;;) {
        let known = state.known;
        if (known === undefined) {
          const entry = await retryBusy(() => this.#kv.get(kvKey));
          known = state.known = { value: toBigInt(entry.value), versionstamp: entry.versionstamp };
        }
        let value = known.value;
        for (let i = 0; i < batch.length; i++) {
          try {
            value = addInt64(key, value, batch[i].amount);
            results[i] = value;
          } catch (error) {
            results[i] = error as Error;
          }
        }
        // The check alone proves a batch that changes nothing (amounts 0, refusals) read the
        // current value.
        const op = this.#kv.atomic().check({ key: kvKey, versionstamp: known.versionstamp });
        const changed = value !== known.value;
        if (changed) op.set(kvKey, value);
        const result = await retryBusy(() => op.commit());
        if (!result.ok) {
          state.known = undefined;
          continue;
        }
        if (changed) state.known = { value, versionstamp: result.versionstamp };
        break;
      }
    } catch (error) {
      state.known = undefined;
      for (const pending of batch) pending.reject(error);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const result = results[i];
      if (typeof result === "bigint") batch[i].resolve(result);
      else batch[i].reject(result);
    }
  }

  #forgetIdle(): void {
    for (const [key, state] of this.#states) {
      if (!state.busy) this.#states.delete(key);
      if (this.#states.size < MAX_STATES / 2) return;
    }
  }
}

/** What is known of a counter: its value and its entry's versionstamp. */
export interface CounterState {
  value: bigint;
  versionstamp: string | null;
}

/**
 * The batch model of counters: the increments of one key, applied in order; each gets its own
 * running result, an increment that would leave int64 is refused alone.
 */
export function counterModel(reader: PointReader): BatchModel<bigint, CounterState, bigint> {
  return {
    async read(key) {
      const entry = await reader.get(counterKey(key));
      return { value: toBigInt(entry.value), versionstamp: entry.versionstamp };
    },
    plan(key, state, amounts) {
      let value = state.value;
      const answers: Answer<bigint>[] = amounts.map((amount) => {
        try {
          value = addInt64(key, value, amount);
          return { value };
        } catch (error) {
          return { error: error as Error };
        }
      });
      // The check alone proves that a batch which changes nothing (amounts 0, refusals) read
      // the current value.
      const unit = new UnitBuilder().check(counterKey(key), state.versionstamp);
      const changed = value !== state.value;
      if (changed) unit.set(counterKey(key), value);
      return {
        unit: unit.build(),
        answers,
        next: (versionstamp) => changed ? { value, versionstamp } : state,
      };
    },
  };
}
