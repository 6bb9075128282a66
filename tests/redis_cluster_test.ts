// The redis backend on a real Redis Cluster (3 masters, 3 replicas, tests/_redis_cluster.ts):
// the whole conformance suite directly, over HTTP and over gRPC, then what only a cluster shows.
// One cluster serves every test of this file; the last test stops it. The failover under load
// is tests/redis_failover_test.ts.

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import type { Operations } from "@purple/client";
import {
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
  ValueTooLargeError,
} from "@purple/client/errors";
import { type BackendOptions, openBackend } from "../backends/mod.ts";
import { redisLayout, slotOf } from "../backends/_redis_layout.ts";
import { conformanceThreeWays } from "./_through.ts";
import { CLUSTER_MISSING, type RedisCluster, startRedisCluster } from "./_redis_cluster.ts";
import { freePort } from "./_redis.ts";

const ignore = CLUSTER_MISSING !== undefined;

// A node timeout long enough that a short pause (below) never starts a failover.
let shared: Promise<RedisCluster> | undefined;
const cluster = () => shared ??= startRedisCluster({ nodeTimeoutMs: 5000 });

function clusterOps(url: string, options: Partial<BackendOptions> = {}): Promise<Operations> {
  return openBackend({ kind: "redis", redisUrl: url, redisCluster: true, ...options });
}

/** A test that shares the cluster: ioredis' Cluster keeps timers of its own for a while. */
function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore, sanitizeOps: false, sanitizeResources: false, fn });
}

if (ignore) console.error(`!!! SKIPPING redis cluster: ${CLUSTER_MISSING} !!!`);
conformanceThreeWays("redis cluster", async () => {
  const { url } = await cluster();
  return { open: () => clusterOps(url), cleanup: async () => {} };
}, { ignore, listing: "scanned" });

test("the cluster spreads Purple keys over its masters, one slot for a key's services", async () => {
  const nodes = await cluster();
  const ops = await clusterOps(nodes.url, { redisPrefix: "spread:" });
  try {
    await Promise.all(Array.from({ length: 60 }, (_, i) => ops.kvPut(`doc-${i}`, "x")));
    const masters = await nodes.masters();
    const counts = await Promise.all(masters.map(async (master) => {
      const keys = await nodes.cli(master.port, "--scan", "--pattern", "spread:kv:{*}");
      return keys.trim().split("\n").filter((line) => line !== "").length;
    }));
    assert.equal(counts.reduce((a, b) => a + b), 60);
    assert.ok(counts.every((count) => count > 5), `keys on each master: ${counts}`);
    // slotOf() agrees with the cluster, and every service of one key is in one slot.
    const layout = redisLayout("prefixed", "spread:");
    for (const key of ["doc-1", "é", "a}b", "}x", "{t}:1", "😀"]) {
      const slots = await Promise.all(
        (["cache", "counters", "flags", "kv", "sets"] as const).map(async (service) => {
          const redisKey = layout.key(service, key);
          const slot = Number(await nodes.cli(masters[0].port, "cluster", "keyslot", redisKey));
          assert.equal(slotOf(redisKey), slot, redisKey);
          return slot;
        }),
      );
      if (!key.startsWith("}")) assert.equal(new Set(slots).size, 1, key);
    }
  } finally {
    await ops.close();
  }
});

test("openBackend() needs one live seed of the cluster and learns the rest", async () => {
  const nodes = await cluster();
  const dead = `redis://127.0.0.1:${freePort()}`;
  const ops = await clusterOps(`${dead},${nodes.nodes[4].url}`);
  try {
    assert.equal(await ops.counterIncrement("seeds", 1), 1n);
  } finally {
    await ops.close();
  }
  const started = performance.now();
  await assert.rejects(
    clusterOps(dead, { redisPrefix: "x:" }),
    (error: Error) =>
      error instanceof UnavailableError &&
      /^Cannot connect to Redis Cluster at redis:\/\/127\.0\.0\.1:\d+: /.test(error.message),
  );
  assert.ok(performance.now() - started < 1500, "gives up within the connect timeout");
});

test("the set-size limit (a Lua script) and WAIT work on the cluster", async () => {
  const nodes = await cluster();
  const ops = await clusterOps(nodes.url, {
    redisPrefix: "limits:",
    redisWaitReplicas: 1,
    limits: { maxSetItems: 2 },
  });
  try {
    for (const set of ["s1", "s2", "s3"]) {
      await ops.setAdd(set, "a");
      await ops.setAdd(set, "b");
      await assert.rejects(ops.setAdd(set, "c"), ValueTooLargeError);
      assert.deepEqual(await ops.setRemove(set, "a"), ["b"]);
    }
    assert.equal(await ops.counterIncrement("acked", 5), 5n);
    // Every write was acknowledged by a replica: the replica of its master holds it.
    const redisKey = redisLayout("prefixed", "limits:").key("counters", "acked");
    const master = await nodes.masterOf(slotOf(redisKey));
    const replicaPort = Number(
      /slave0:ip=[^,]+,port=(\d+)/.exec(await nodes.cli(master.port, "info", "replication"))?.[1],
    );
    const replica = new Redis({ port: replicaPort, host: "127.0.0.1", lazyConnect: true });
    await replica.connect();
    await replica.readonly();
    assert.equal(await replica.get(redisKey), "5");
    await replica.quit();
  } finally {
    await ops.close();
  }
});

test("an atomic batch spans one slot: keys sharing a hash tag, else InvalidArgumentError", async () => {
  const nodes = await cluster();
  const ops = await clusterOps(nodes.url, { redisPrefix: "atomic:" });
  try {
    // Keys that share the text before a '}' share a slot, on every service.
    const outcomes = await ops.batch([
      { op: "kvPut", args: ["order-7}total", "42"] },
      { op: "counterIncrement", args: ["order-7}items", 3] },
      { op: "setAdd", args: ["order-7}tags", "paid"] },
    ], { atomic: true });
    assert.ok(outcomes.every((outcome) => outcome.ok));
    assert.equal(await ops.counterGet("order-7}items"), 3n);
    // Keys in different slots: refused whole, before anything is written, with the rule.
    assert.notEqual(slotOf("atomic:kv:{a}"), slotOf("atomic:counters:{b}"));
    await assert.rejects(
      ops.batch([
        { op: "kvPut", args: ["a", "x"] },
        { op: "counterIncrement", args: ["b", 1] },
      ], { atomic: true }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.match(
          error.message,
          /different Redis Cluster slots .* share the text before a '\}'/,
        );
        return true;
      },
    );
    await assert.rejects(ops.kvGet("a"), NotFoundError);
    // The same keys in order (not atomic) are fine: each is one step on its own slot.
    const inOrder = await ops.batch([
      { op: "kvPut", args: ["a", "x"] },
      { op: "counterIncrement", args: ["b", 1] },
    ]);
    assert.ok(inOrder.every((outcome) => outcome.ok));
  } finally {
    await ops.close();
  }
});

test("a master that hangs fails its keys' calls after the command timeout, not others", async () => {
  const nodes = await cluster();
  const ops = await openBackend({
    kind: "redis",
    redisUrl: nodes.url,
    redisCluster: true,
    redisPrefix: "hang:",
    limits: { backendTimeoutMs: 300 },
  });
  const layout = redisLayout("prefixed", "hang:");
  // Two keys on two different masters.
  const masters = await nodes.masters();
  const keyOn = async (port: number) => {
    for (let i = 0;; i++) {
      const master = await nodes.masterOf(slotOf(layout.key("counters", `k${i}`)));
      if (master.port === port) return `k${i}`;
    }
  };
  const [frozenKey, liveKey] = [await keyOn(masters[0].port), await keyOn(masters[1].port)];
  try {
    await ops.counterIncrement(frozenKey, 1);
    await ops.counterIncrement(liveKey, 1);
    masters[0].pause();
    const started = performance.now();
    await assert.rejects(
      ops.counterIncrement(frozenKey, 1),
      (error: Error) =>
        error instanceof UnavailableError &&
        /Redis Cluster at .* is unavailable \(Connection is closed: node [\d.:]+: no reply within 300 ms\)$/
          .test(error.message),
    );
    const detected = performance.now() - started;
    assert.ok(detected < 1000, `failed after ${detected.toFixed(0)} ms`);
    assert.equal(await ops.counterIncrement(liveKey, 1), 2n, "the other masters serve");
    masters[0].resume();
    const back = performance.now();
    while (true) {
      try {
        // The failed call was sent before the pause: the master runs it once it resumes, so a
        // 503 means "not known to be done", as everywhere.
        assert.ok([1n, 2n].includes(await ops.counterGet(frozenKey)));
        break;
      } catch (error) {
        if (!(error instanceof UnavailableError) || performance.now() - back > 3000) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    console.log(
      `  hang: detected after ${detected.toFixed(0)} ms, serving again ${
        (performance.now() - back).toFixed(0)
      } ms after resume`,
    );
  } finally {
    masters[0].resume();
    await ops.close();
  }
});

test("a cluster that is down entirely fails every call fast, and is served again after", async () => {
  const nodes = await cluster();
  const ops = await clusterOps(nodes.url, { redisPrefix: "down:" });
  try {
    await ops.counterIncrement("k", 1);
    for (const node of nodes.nodes) await node.kill();
    let slowest = 0;
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      await assert.rejects(
        ops.counterIncrement("k", 1),
        (error: Error) =>
          error instanceof UnavailableError &&
          /^Cannot increment counter 'k' by 1: Redis Cluster at .* is unavailable \(/.test(
            error.message,
          ),
      );
      slowest = Math.max(slowest, performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.ok(slowest < 250, `every call failed within ${slowest.toFixed(0)} ms`);
    for (const node of nodes.nodes) await node.start(); // empty, with their cluster configuration
    const back = performance.now();
    while (true) {
      try {
        assert.equal(await ops.counterIncrement("k", 1), 1n, "the restarted nodes are empty");
        break;
      } catch (error) {
        if (!(error instanceof UnavailableError) || performance.now() - back > 15_000) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    console.log(
      `  cluster down: slowest failure ${slowest.toFixed(1)} ms; serving again ${
        (performance.now() - back).toFixed(0)
      } ms after the nodes restarted`,
    );
  } finally {
    await ops.close();
  }
});

test("stop the shared Redis Cluster", async () => {
  if (shared) await (await shared).stop();
});
