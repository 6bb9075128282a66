// The scenarios of the bench: what each one sends over HTTP (wrk) and over gRPC (h2load), how
// it prepares the data it reads, and how it checks the data it wrote. Private to the bench.
//
// The gRPC request frames are files in bench/grpc/, built from Purple's own codecs by
// `deno run bench/_grpc_frames.ts` (and checked against them on every run).

import type { OperationName, Operations } from "@purple/protocol";
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
   * The DATA bytes that `n` successful gRPC calls receive, given the state before the run
   * (a counter increment's reply grows with the counter).
   */
  replyBytes(n: number, before: Snapshot): number;
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

/** The bytes of a gRPC reply carrying `message`: a 5-byte prefix and the message. */
/** The response message of an operation's result, as the server encodes it. */
function reply<Op extends OperationName>(operation: Op, result: Result<Op>): Uint8Array {
  const binding = GRPC_BINDINGS[operation] as { response(result: unknown): unknown };
  return grpcMethod(operation).responseSerialize(binding.response(result) as never);
}

function frameBytes(message: Uint8Array): number {
  return 5 + message.length;
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

/** Every scenario, by name. */
export const SCENARIOS: Record<ScenarioName, Scenario> = {
  "counter-increment": {
    name: "counter-increment",
    writes: true,
    http: { method: "PUT", path: `/counters/${DATA.counterKey}?increment=1` },
    grpc: { path: "/proto.Counter/CounterIncrement", frame: "counter_increment.bin" },
    prepare: () => Promise.resolve(),
    replyBytes: (n, before) => incrementReplyBytes(n, before.counter),
    async check(ops, before, acked, slack) {
      const after = await readCounter(ops);
      const grown = after - before.counter;
      if (grown < BigInt(acked)) {
        return `LOST WRITES: the counter grew by ${grown}, ${acked} increments were acknowledged`;
      }
      if (grown > BigInt(acked + slack)) {
        return `the counter grew by ${grown}, more than the ${acked} increments acknowledged` +
          (slack > 0 ? ` and ${slack} in flight` : "");
      }
      return undefined;
    },
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
    replyBytes: (n) => n * frameBytes(reply("kvGet", DATA.kvValue)),
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
