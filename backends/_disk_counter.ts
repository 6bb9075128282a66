// Counter increments and deletes on Deno KV, batched per key through the group committer.
// Private to this folder.
//
// Each batch of increments of one key is a read-modify-write made atomic by a versionstamp
// check, planned again from a fresh read on a conflict (another instance or process wrote the
// counter in between). The increments of one key that arrive while a unit for that key is on
// its way wait for it, then all go into the next unit: each caller gets its own running result,
// in arrival order, and one caller's overflow is refused without touching the others. The last
// committed value and versionstamp of a key are remembered, so a batch usually costs no read;
// the check turns a stale memory into a retry. The units of different counters share commits.

import { absent, addInt64 } from "./_util.ts";
import { counterKey } from "./_disk_keys.ts";
import type { Answer, BatchModel } from "./_disk_batch.ts";
import { UnitBuilder } from "./_disk_commits.ts";
import type { PointReader } from "./_disk_reads.ts";

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

/** What is known of a counter: its value and its entry's versionstamp (`null`: absent). */
export interface CounterState {
  value: bigint;
  versionstamp: string | null;
}

/** An increment of a counter, or its delete. */
export type CounterOp = { type: "increment"; amount: bigint } | { type: "delete" };

/**
 * The batch model of counters: the increments and deletes of one key, applied in order; each
 * increment gets its own running result, an increment that would leave int64 is refused alone,
 * and so is a delete of a counter that does not exist. A counter exists once incremented, even
 * by 0: an increment by 0 of an absent counter writes 0.
 */
export function counterModel(
  reader: PointReader,
): BatchModel<CounterOp, CounterState, bigint | undefined> {
  return {
    async read(key) {
      const entry = await reader.get(counterKey(key));
      return { value: toBigInt(entry.value), versionstamp: entry.versionstamp };
    },
    plan(key, state, ops) {
      let value = state.value;
      let exists = state.versionstamp !== null;
      const answers: Answer<bigint | undefined>[] = ops.map((op) => {
        if (op.type === "delete") {
          if (!exists) return { error: absent("counter", key) };
          [value, exists] = [0n, false];
          return { value: undefined };
        }
        try {
          value = addInt64(key, value, op.amount);
          exists = true;
          return { value };
        } catch (error) {
          return { error: error as Error };
        }
      });
      // The check alone proves that a batch which changes nothing (amounts 0, refusals) read
      // the current value.
      const unit = new UnitBuilder().check(counterKey(key), state.versionstamp);
      const changed = exists !== (state.versionstamp !== null) || value !== state.value;
      if (changed && exists) unit.set(counterKey(key), value);
      else if (changed) unit.delete(counterKey(key));
      return {
        unit: unit.build(),
        answers,
        next: (versionstamp) =>
          changed ? { value, versionstamp: exists ? versionstamp : null } : state,
      };
    },
  };
}
