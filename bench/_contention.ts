// Compare-and-set under contention: many read-modify-write loops on one KV key, each reading the
// value and its version, then writing the value plus one on the condition that the version is
// unchanged, and starting over when another loop got there first. Driven from the bench process
// through a client (so the client's work shares the machine with the server's). Private to the
// bench.

import type { Operations } from "@purple/protocol";
import { PreconditionFailedError } from "@purple/protocol/errors";

/** What one run of the loops measured. */
export interface ContentionResult {
  /** Updates that went through. */
  updates: number;
  /** Writes refused because another loop had changed the value (412, FAILED_PRECONDITION). */
  conflicts: number;
  /** Any other failure. */
  errors: number;
  /** Updates a second. */
  rps: number;
  /** Milliseconds from an update's first read to its write going through, retries included. */
  p50Ms: number;
  p99Ms: number;
  /** Why the value read back is wrong, or `undefined` when it counts every update exactly. */
  problem?: string;
}

const decoder = new TextDecoder();

/**
 * Runs `loops` read-modify-write loops on `key` for `seconds`, then checks that the value grew by
 * exactly the number of updates that went through.
 */
export async function casContention(
  ops: Operations,
  key: string,
  loops: number,
  seconds: number,
): Promise<ContentionResult> {
  await ops.kvPut(key, "0");
  const latencies: number[] = [];
  let conflicts = 0;
  let errors = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(Array.from({ length: loops }, async () => {
    while (performance.now() < until) {
      const begun = performance.now();
      for (;;) {
        try {
          const { value, version } = await ops.kvGetEntry(key);
          await ops.kvPut(key, String(Number(decoder.decode(value)) + 1), { ifMatch: version });
          latencies.push(performance.now() - begun);
          break;
        } catch (error) {
          if (error instanceof PreconditionFailedError) conflicts++;
          else errors++;
          if (performance.now() >= until) return;
        }
      }
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  const value = Number(decoder.decode(await ops.kvGet(key)));
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return {
    updates: latencies.length,
    conflicts,
    errors,
    rps: latencies.length / elapsed,
    p50Ms: at(0.5) ?? NaN,
    p99Ms: at(0.99) ?? NaN,
    problem: value === latencies.length
      ? undefined
      : `LOST OR EXTRA UPDATES: the value is ${value}, ${latencies.length} updates went through`,
  };
}
