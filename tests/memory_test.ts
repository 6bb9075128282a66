import assert from "node:assert/strict";
import { checked, DEFAULT_LIMITS, MemoryBackend, openBackend } from "../backends/mod.ts";
import { NotFoundError } from "@purple/client/errors";
import { conformance } from "./conformance.ts";

conformance("memory", async () => {
  const ops = await openBackend({ kind: "memory" });
  return { ops, listing: "sorted", close: () => ops.close() };
});

Deno.test("MemoryBackend drops an entry after the default TTL of 5 s", async () => {
  let now = 1_000_000;
  const backend = new MemoryBackend({ now: () => now });
  const ops = checked(backend, DEFAULT_LIMITS);
  try {
    await ops.cacheSet("k", "v");
    now += 4_999;
    assert.equal(await ops.cacheGet("k"), "v");
    now += 1;
    await assert.rejects(ops.cacheGet("k"), NotFoundError);
  } finally {
    await ops.close();
  }
});

Deno.test("MemoryBackend sweep() removes expired entries nobody reads", async () => {
  let now = 0;
  const backend = new MemoryBackend({ now: () => now });
  try {
    for (let i = 0; i < 1000; i++) await backend.cacheSet(`k${i}`, "v", i < 600 ? 1 : 60);
    assert.equal(backend.cacheSize, 1000);
    now += 1_000;
    backend.sweep();
    assert.equal(backend.cacheSize, 400);
  } finally {
    await backend.close();
  }
});

Deno.test("MemoryBackend sweeps on its own timer", async () => {
  const backend = new MemoryBackend({ sweepIntervalMs: 20 });
  try {
    await backend.cacheSet("k", "v", 1);
    assert.equal(backend.cacheSize, 1);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    assert.equal(backend.cacheSize, 0);
  } finally {
    await backend.close();
  }
});

Deno.test("MemoryBackend hands out copies of KV values", async () => {
  const ops = checked(new MemoryBackend(), DEFAULT_LIMITS);
  try {
    const value = new Uint8Array([1, 2, 3]);
    await ops.kvPut("k", value);
    value[0] = 9;
    const read = await ops.kvGet("k");
    read[1] = 9;
    assert.deepEqual(await ops.kvGet("k"), new Uint8Array([1, 2, 3]));
  } finally {
    await ops.close();
  }
});

Deno.test("a batch on a backend that keeps no call order still applies one key's operations in order", async () => {
  // A backend whose later calls finish first (keepsCallOrder absent): the checked layer must
  // wait for each operation of a key before the next one on it.
  const memory = new MemoryBackend();
  let calls = 0;
  const unordered = new Proxy(memory, {
    get(target, property, receiver) {
      if (property === "keepsCallOrder") return undefined;
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      if (!String(property).startsWith("counter")) return value.bind(target);
      return async (...args: unknown[]) => {
        const delay = Math.max(0, 40 - 10 * calls++);
        await new Promise((resolve) => setTimeout(resolve, delay));
        return await value.apply(target, args);
      };
    },
  });
  const ops = checked(unordered, DEFAULT_LIMITS);
  try {
    const outcomes = await ops.batch([
      { op: "counterIncrement", args: ["k", 1] },
      { op: "counterGet", args: ["k"] },
      { op: "counterIncrement", args: ["k", 2] },
      { op: "counterGet", args: ["k"] },
      { op: "counterGet", args: ["other"] },
    ]);
    assert.deepEqual(outcomes.map((outcome) => outcome.ok && outcome.value), [1n, 1n, 3n, 3n, 0n]);
  } finally {
    await ops.close();
  }
});
