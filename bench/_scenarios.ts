// The scenarios of the bench: what each one sends over HTTP (wrk) and over gRPC (h2load), how
// it prepares the data it reads, and how it checks the data it wrote. Private to the bench.
//
// The gRPC request frames are files in bench/grpc/, built from Purple's own codecs by
// `deno run bench/_grpc_frames.ts` (and checked against them on every run).

import type { Operations, WireOperationName } from "@purple/protocol";
import { GRPC_BINDINGS, grpcMethod, type Result } from "@purple/protocol/wire";
import type { HttpRequest } from "./_wrk.ts";

/** The keys and values the scenarios use. */
export const DATA = {
  counterKey: "bench-counter",
  kvKey: "bench-kv",
  /** 1 KiB of printable bytes, so the JSON and the raw forms carry the same content. */
  kvValue: new TextEncoder().encode("purple-bench-kv-".repeat(64)),
  setName: "bench-set",
  setItem: "member",
  cacheKey: "bench-cache",
  cacheValue: "c".repeat(64),
  /** The key the cache-set scenario writes (cache-get reads its own). */
  cacheSetKey: "bench-cache-set",
  flagKey: "bench-flag",
  /** Cache entries of the bench live long enough for any run. */
  cacheTtlSeconds: 3600,
} as const;

/** The scenario names, in table order. */
export const SCENARIO_NAMES = [
  "counter-increment",
  "counter-get",
  "kv-put",
  "kv-get",
  "set-add",
  "cache-get",
  "cache-set",
  "flag-set",
  "counter-batch-100",
] as const;

/** A scenario name. */
export type ScenarioName = typeof SCENARIO_NAMES[number];

/** The state a scenario reads before a run, to check it after. */
export interface Snapshot {
  counter: bigint;
}

/** One scenario, over both protocols. */
export interface Scenario {
  name: ScenarioName;
  /** Whether it writes (its result is checked against what was acknowledged). */
  writes: boolean;
  /** What wrk sends. */
  http: HttpRequest;
  /** The gRPC method and the frame file's name in bench/grpc/. */
  grpc: { path: string; frame: string };
  /** Puts the data it reads in place. */
  prepare(ops: Operations): Promise<void>;
  /**
   * Whether a server (one that `--against` measures, possibly older) has what the scenario
   * calls; absent means every Purple has it.
   */
  supportedBy?(ops: Operations): Promise<boolean>;
  /**
   * The DATA bytes that `n` successful gRPC calls receive, given the state before the run
   * (a counter increment's reply grows with the counter).
   */
  replyBytes(n: number, before: Snapshot): number | { atLeast: number };
  /**
   * Checks the data after calls that were acknowledged. `acked` is exact (h2load, drained wrk
   * runs) or a lower bound with up to `slack` more calls that reached the server unanswered
   * (plain wrk runs stop with one request in flight per connection). Returns a problem, or
   * `undefined` when the data is right.
   */
  check(
    ops: Operations,
    before: Snapshot,
    acked: number,
    slack: number,
  ): Promise<string | undefined>;
}

/** The response message of an operation's result, as the server encodes it. */
function reply<Op extends WireOperationName>(operation: Op, result: Result<Op>): Uint8Array {
  const binding = GRPC_BINDINGS[operation] as unknown as { response(result: unknown): unknown };
  return grpcMethod(operation).responseSerialize(binding.response(result) as never);
}

function frameBytes(message: Uint8Array): number {
  return 5 + message.length;
}

/** How many increments one call of the batch scenario makes. */
export const BATCH_SIZE = 100;

/**
 * The bytes of the replies to `n` batches of {@linkcode BATCH_SIZE} counter increments from
 * `start` (exclusive): each reply is a 5-byte prefix and one `BatchResult` per increment, 4 bytes
 * of tags and lengths around the increment's own `GetCounterResponse`.
 */
export function batchReplyBytes(n: number, start: bigint): number {
  const increments = n * BATCH_SIZE;
  return incrementReplyBytes(increments, start) - 5 * increments + 4 * increments + 5 * n;
}

/** The bytes of the replies to counter increments from `start` (exclusive) to `start + n`. */
export function incrementReplyBytes(n: number, start: bigint): number {
  let total = 0;
  let value = start;
  // Replies of one size come in long runs: count them by size, not one by one.
  let remaining = BigInt(n);
  while (remaining > 0n) {
    const next = value + 1n;
    const size = frameBytes(reply("counterIncrement", next));
    // The largest value with the same varint size as `next` (for positive values).
    let limit = next;
    if (next > 0n) {
      const bits = BigInt(next.toString(2).length);
      limit = (1n << (((bits + 6n) / 7n) * 7n)) - 1n;
    }
    const count = limit - value < remaining ? limit - value : remaining;
    total += Number(count) * size;
    remaining -= count;
    value += count;
  }
  return total;
}

async function readCounter(ops: Operations): Promise<bigint> {
  return await ops.counterGet(DATA.counterKey);
}

const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((byte, i) => byte === b[i]);

/** Checks that the counter grew by `per` for each acknowledged call (`slack` more in flight). */
async function checkCounterGrowth(
  ops: Operations,
  before: Snapshot,
  acked: number,
  slack: number,
  per: number,
): Promise<string | undefined> {
  const grown = await readCounter(ops) - before.counter;
  const expected = BigInt(acked * per);
  if (grown < expected) {
    return `LOST WRITES: the counter grew by ${grown}, ${expected} increments were acknowledged`;
  }
  if (grown > BigInt((acked + slack) * per)) {
    return `the counter grew by ${grown}, more than the ${expected} increments acknowledged` +
      (slack > 0 ? ` and ${slack * per} in flight` : "");
  }
  return undefined;
}

/** Every scenario, by name. */
export const SCENARIOS: Record<ScenarioName, Scenario> = {
  "counter-increment": {
    name: "counter-increment",
    writes: true,
    http: { method: "PUT", path: `/counters/${DATA.counterKey}?increment=1` },
    grpc: { path: "/proto.Counter/CounterIncrement", frame: "counter_increment.bin" },
    prepare: () => Promise.resolve(),
    replyBytes: (n, before) => incrementReplyBytes(n, before.counter),
    check: (ops, before, acked, slack) => checkCounterGrowth(ops, before, acked, slack, 1),
  },
  "counter-batch-100": {
    name: "counter-batch-100",
    writes: true,
    http: {
      method: "POST",
      path: "/batch",
      body: new TextEncoder().encode(JSON.stringify({
        operations: Array.from(
          { length: BATCH_SIZE },
          () => ({ op: "counterIncrement", key: DATA.counterKey, amount: "1" }),
        ),
      })),
      headers: { "Content-Type": "application/json" },
    },
    grpc: { path: "/proto.Batch/Batch", frame: "counter_batch_100.bin" },
    prepare: () => Promise.resolve(),
    async supportedBy(ops) {
      try {
        await ops.batch([]);
        return true;
      } catch {
        return false;
      }
    },
    replyBytes: (n, before) => batchReplyBytes(n, before.counter),
    check: (ops, before, acked, slack) => checkCounterGrowth(ops, before, acked, slack, BATCH_SIZE),
  },
  "counter-get": {
    name: "counter-get",
    writes: false,
    http: { method: "GET", path: `/counters/${DATA.counterKey}` },
    grpc: { path: "/proto.Counter/CounterGet", frame: "counter_get.bin" },
    async prepare(ops) {
      if (await readCounter(ops) === 0n) await ops.counterIncrement(DATA.counterKey, 1);
    },
    replyBytes: (n, before) => n * frameBytes(reply("counterGet", before.counter)),
    async check(ops, before) {
      const after = await readCounter(ops);
      return after === before.counter
        ? undefined
        : `the counter changed from ${before.counter} to ${after}`;
    },
  },
  "kv-put": {
    name: "kv-put",
    writes: true,
    http: {
      method: "PUT",
      path: `/kv/${DATA.kvKey}`,
      body: DATA.kvValue,
      headers: { "Content-Type": "application/octet-stream" },
    },
    grpc: { path: "/proto.KV/KVPut", frame: "kv_put.bin" },
    prepare: () => Promise.resolve(),
    replyBytes: (n) => n * frameBytes(reply("kvPut", undefined)),
    async check(ops) {
      const value = await ops.kvGet(DATA.kvKey);
      return sameBytes(value, DATA.kvValue) ? undefined : `the KV value read back differs`;
    },
  },
  "kv-get": {
    name: "kv-get",
    writes: false,
    http: {
      method: "GET",
      path: `/kv/${DATA.kvKey}`,
      headers: { "Accept": "application/octet-stream" },
    },
    grpc: { path: "/proto.KV/KVGet", frame: "kv_get.bin" },
    async prepare(ops) {
      await ops.kvPut(DATA.kvKey, DATA.kvValue);
    },
    // The reply also carries the value's version, of each backend's own length (none from a
    // Purple older than versions, when the bench compares with one).
    replyBytes: (n) => ({
      atLeast: n * frameBytes(reply("kvGetEntry", { value: DATA.kvValue, version: "" })),
    }),
    check: () => Promise.resolve(undefined),
  },
  "set-add": {
    name: "set-add",
    writes: true,
    http: { method: "PUT", path: `/sets/${DATA.setName}?item=${DATA.setItem}` },
    grpc: { path: "/proto.Set/SetAdd", frame: "set_add.bin" },
    prepare: () => Promise.resolve(),
    replyBytes: (n) => n * frameBytes(reply("setAdd", [DATA.setItem])),
    async check(ops) {
      const items = await ops.setGet(DATA.setName);
      return items.length === 1 && items[0] === DATA.setItem
        ? undefined
        : `the set holds ${JSON.stringify(items)}, expected ["${DATA.setItem}"]`;
    },
  },
  "cache-get": {
    name: "cache-get",
    writes: false,
    http: { method: "GET", path: `/cache/${DATA.cacheKey}` },
    grpc: { path: "/proto.Cache/CacheGet", frame: "cache_get.bin" },
    async prepare(ops) {
      await ops.cacheSet(DATA.cacheKey, DATA.cacheValue, DATA.cacheTtlSeconds);
    },
    replyBytes: (n) => n * frameBytes(reply("cacheGet", DATA.cacheValue)),
    check: () => Promise.resolve(undefined),
  },
  "cache-set": {
    name: "cache-set",
    writes: true,
    http: {
      method: "PUT",
      path: `/cache/${DATA.cacheSetKey}?value=${DATA.cacheValue}&ttl=${DATA.cacheTtlSeconds}`,
    },
    grpc: { path: "/proto.Cache/CacheSet", frame: "cache_set.bin" },
    prepare: () => Promise.resolve(),
    replyBytes: (n) => n * frameBytes(reply("cacheSet", undefined)),
    async check(ops) {
      const value = await ops.cacheGet(DATA.cacheSetKey);
      return value === DATA.cacheValue ? undefined : `the cache value read back differs`;
    },
  },
  "flag-set": {
    name: "flag-set",
    writes: true,
    http: { method: "PUT", path: `/flags/${DATA.flagKey}?value=true` },
    grpc: { path: "/proto.Flag/FlagSet", frame: "flag_set.bin" },
    prepare: () => Promise.resolve(),
    replyBytes: (n) => n * frameBytes(reply("flagSet", undefined)),
    async check(ops) {
      return await ops.flagGet(DATA.flagKey) ? undefined : "the flag reads false";
    },
  },
};

/** Reads the state a scenario checks against. */
export async function snapshot(ops: Operations): Promise<Snapshot> {
  return { counter: await readCounter(ops) };
}
