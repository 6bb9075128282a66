/**
 * Contended work for the disk backend's tests, run at once by a test and by a child process on
 * the same file: compare-and-set loops on one KV key, atomic transfers between two counters,
 * and versioned atomic transfers between two KV balances.
 *
 * @module
 */

import type { Operations } from "@purple/client";
import { PreconditionFailedError } from "@purple/client/errors";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** `loops` loops each adding 1 to the number at KV key "cas" `each` times; returns the
 * conflicts they met. */
export async function casLoops(ops: Operations, loops: number, each: number): Promise<number> {
  let conflicts = 0;
  await Promise.all(Array.from({ length: loops }, async () => {
    for (let done = 0; done < each;) {
      const { value, version } = await ops.kvGetEntry("cas");
      try {
        await ops.kvPut("cas", String(Number(text(value)) + 1), { ifMatch: version });
        done++;
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
        conflicts++;
      }
    }
  }));
  return conflicts;
}

/** `count` atomic batches at once, each moving 1 from counter "from" to counter "to". */
export async function transfers(ops: Operations, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, () =>
    ops.batch([
      { op: "counterIncrement", args: ["from", -1] },
      { op: "counterIncrement", args: ["to", 1] },
    ], { atomic: true })));
}

/** `loops` loops each moving 1 from KV balance "a" to "b" `each` times, with versions. */
export async function balances(ops: Operations, loops: number, each: number): Promise<void> {
  await Promise.all(Array.from({ length: loops }, async () => {
    for (let moved = 0; moved < each;) {
      const [a, b] = await Promise.all([ops.kvGetEntry("a"), ops.kvGetEntry("b")]);
      try {
        await ops.batch([
          { op: "kvPut", args: ["a", String(Number(text(a.value)) - 1), { ifMatch: a.version }] },
          { op: "kvPut", args: ["b", String(Number(text(b.value)) + 1), { ifMatch: b.version }] },
        ], { atomic: true });
        moved++;
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
      }
    }
  }));
}
