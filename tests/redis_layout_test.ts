// The Redis layouts: the key mapping and hash slots (no Redis needed), the whole conformance
// suite on the prefixed layout of a plain redis-server (directly, over HTTP and over gRPC), and
// what the layouts and the prefix write, seen through a raw client.

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import type { Operations } from "@purple/client";
import {
  InvalidArgumentError,
  type PurpleError,
  UnavailableError,
  ValueTooLargeError,
} from "@purple/client/errors";
import { type BackendOptions, openBackend } from "../backends/mod.ts";
import { oneSlot, redisLayout, slotOf } from "../backends/_redis_layout.ts";
import { conformanceThreeWays } from "./_through.ts";
import { REDIS_MISSING, type RedisServer, startRedis } from "./_redis.ts";

const ignore = REDIS_MISSING !== undefined;

async function rejectsWith(
  promise: Promise<unknown>,
  kind: new (message: string) => PurpleError,
  pattern: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof kind, `expected ${kind.name}, got ${error}`);
    assert.match(error.message, pattern);
    return true;
  });
}

function redisOps(url: string, options: Partial<BackendOptions> = {}): Promise<Operations> {
  return openBackend({ kind: "redis", redisUrl: url, ...options });
}

async function raw(server: RedisServer, db = 0): Promise<Redis> {
  const client = new Redis({ port: server.port, host: "127.0.0.1", db, lazyConnect: true });
  await client.connect();
  return client;
}

// ---------------------------------------------------------------------------------------------
// The mapping, without Redis.

Deno.test("redisLayout() names keys: databases keeps the original's, prefixed tags the key", () => {
  const databases = redisLayout("databases", "");
  assert.deepEqual(
    ["cache", "counters", "flags", "kv", "sets"].map((s) => databases.database(s as "kv")),
    [0, 1, 2, 3, 4],
  );
  assert.equal(databases.key("kv", "user:1"), "user:1");
  assert.equal(redisLayout("databases", "shop:").key("sets", "a"), "shop:a");
  const prefixed = redisLayout("prefixed", "shop:", 6);
  assert.equal(prefixed.database("cache"), 6);
  assert.equal(prefixed.key("cache", "user:1"), "shop:cache:{user:1}");
  assert.equal(prefixed.key("counters", "é {x}"), "shop:counters:{é {x}}");
  assert.equal(redisLayout("prefixed", "").key("kv", "k"), "kv:{k}");
});

Deno.test("redisLayout() finds keys back from SCAN, with glob characters escaped", () => {
  const prefixed = redisLayout("prefixed", "a*b:");
  assert.equal(prefixed.match("kv"), "a\\*b:kv:{*}");
  assert.equal(prefixed.match("sets", "x?[1]\\"), "a\\*b:sets:{x\\?\\[1\\]\\\\*}");
  assert.equal(prefixed.purpleKey("kv", "a*b:kv:{user:1}"), "user:1");
  assert.equal(prefixed.purpleKey("kv", "a*b:cache:{user:1}"), undefined);
  assert.equal(prefixed.purpleKey("kv", "a*b:kv:{}"), undefined);
  const databases = redisLayout("databases", "p:");
  assert.equal(databases.match("kv", "us"), "p:us*");
  assert.equal(databases.purpleKey("kv", "p:user"), "user");
  assert.equal(databases.purpleKey("kv", "q:user"), undefined);
  assert.equal(redisLayout("databases", "").match("flags"), "*");
});

Deno.test("slotOf() computes Redis Cluster's hash slots, hash tags included", () => {
  // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
  assert.equal(slotOf("123456789"), 0x31c3 % 16384);
  assert.equal(slotOf("foo"), 12182);
  assert.equal(slotOf("{user1000}.following"), slotOf("user1000"));
  assert.equal(slotOf("foo{}{bar}"), slotOf("foo{}{bar}".slice(0))); // empty tag: whole key
  assert.equal(slotOf("foo{{bar}}zap"), slotOf("{bar"));
  assert.equal(slotOf("foo{bar}{zap}"), slotOf("bar"));
  const layout = redisLayout("prefixed", "shop:");
  for (const key of ["a", "user:1", "é", "😀", "a}b"]) {
    const slots = ["cache", "counters", "flags", "kv", "sets"].map((s) =>
      slotOf(layout.key(s as "kv", key))
    );
    assert.equal(new Set(slots).size, 1, `one slot for every service of ${key}`);
  }
  const spread = new Set(Array.from({ length: 100 }, (_, i) => slotOf(layout.key("kv", `k${i}`))));
  assert.ok(spread.size > 90, `different keys spread over slots (${spread.size} of 100)`);
});

Deno.test("oneSlot() refuses keys in different slots, naming them", () => {
  const layout = redisLayout("prefixed", "");
  const entry = (service: "kv" | "cache", key: string) => ({
    service,
    key,
    redisKey: layout.key(service, key),
  });
  assert.equal(oneSlot("Cannot batch", [entry("kv", "a"), entry("cache", "a")]), slotOf("a"));
  assert.throws(
    () => oneSlot("Cannot batch", [entry("kv", "a"), entry("kv", "b")]),
    (error: Error) =>
      error instanceof InvalidArgumentError &&
      /^Cannot batch: kv key 'a' and kv key 'b' are in different Redis Cluster slots/.test(
        error.message,
      ),
  );
});

Deno.test("openBackend() refuses bad Redis layout options with clear errors", async () => {
  const url = "redis://127.0.0.1:1";
  await rejectsWith(
    redisOps(url, { redisLayout: "tables" as "prefixed" }),
    InvalidArgumentError,
    /^Bad Redis layout 'tables': expected 'databases' or 'prefixed'$/,
  );
  await rejectsWith(
    redisOps(url, { redisLayout: "databases", redisCluster: true }),
    InvalidArgumentError,
    /^Cannot use the 'databases' Redis layout on a Redis Cluster: a cluster has database 0 only/,
  );
  await rejectsWith(
    redisOps(url, { redisLayout: "prefixed", redisPrefix: "a{b}" }),
    InvalidArgumentError,
    /^Bad Redis key prefix 'a\{b\}': braces would change the Redis Cluster hash tags$/,
  );
  await rejectsWith(
    redisOps(`${url},redis://127.0.0.1:2`),
    InvalidArgumentError,
    /several comma-separated URLs name the seed nodes of a Redis Cluster/,
  );
  await rejectsWith(
    redisOps("redis://127.0.0.1:1/2,redis://127.0.0.1:2", { redisCluster: true }),
    InvalidArgumentError,
    /Redis Cluster has database 0 only, found database 2/,
  );
  await rejectsWith(
    redisOps("redis://a:x@127.0.0.1:1,redis://a:y@127.0.0.1:2", { redisCluster: true }),
    InvalidArgumentError,
    /^Bad Redis Cluster URLs 'redis:\/\/a:\*\*\*@127\.0\.0\.1:1,redis:\/\/a:\*\*\*@.*same user and password$/,
  );
  await rejectsWith(
    redisOps(url, { redisWaitReplicas: -1 }),
    InvalidArgumentError,
    /^Bad 'waitReplicas': expected a whole number of replicas/,
  );
  await rejectsWith(
    redisOps(url, {
      redisWaitReplicas: 1,
      redisWaitTimeoutMs: 1000,
      limits: { backendTimeoutMs: 1000 },
    }),
    InvalidArgumentError,
    /^Bad 'waitTimeoutMs': it must be shorter than 'commandTimeoutMs' \(1000 ms\)/,
  );
  await rejectsWith(
    redisOps("redis://127.0.0.1:1/x"),
    InvalidArgumentError,
    /expected a database number as the path, found 'x'/,
  );
});

// ---------------------------------------------------------------------------------------------
// The prefixed layout on a plain redis-server: the whole suite, three ways.

if (ignore) console.error(`!!! SKIPPING redis prefixed: ${REDIS_MISSING} !!!`);
conformanceThreeWays("redis prefixed", async () => {
  const server = await startRedis();
  return {
    // A database in the URL and a prefix, as a shared hosted Redis would be used.
    open: () => redisOps(`${server.url}/5`, { redisLayout: "prefixed", redisPrefix: "t1:" }),
    cleanup: () => server.stop(),
  };
}, { ignore, listing: "scanned" });

// ---------------------------------------------------------------------------------------------
// What each layout writes.

Deno.test({
  name: "the prefixed layout writes one database, a prefix per service, the key as hash tag",
  ignore,
  async fn() {
    const server = await startRedis();
    const ops = await redisOps(`${server.url}/2`, { redisLayout: "prefixed", redisPrefix: "p:" });
    const db2 = await raw(server, 2);
    try {
      await ops.cacheSet("k", "cached", 30);
      await ops.counterIncrement("k", 9007199254740993n);
      await ops.flagSet("k", true);
      await ops.kvPut("k", new Uint8Array([0xff, 0x00, 0x80]));
      await ops.setAdd("k", "b");
      await ops.setAdd("k", "a");
      assert.deepEqual(
        (await db2.keys("*")).sort(),
        ["p:cache:{k}", "p:counters:{k}", "p:flags:{k}", "p:kv:{k}", "p:sets:{k}"],
      );
      const ttl = await db2.ttl("p:cache:{k}");
      assert.ok(ttl > 0 && ttl <= 30, `TTL ${ttl}`);
      assert.equal(await db2.get("p:counters:{k}"), "9007199254740993");
      assert.equal(await db2.get("p:flags:{k}"), "true");
      assert.deepEqual([...await db2.getBuffer("p:kv:{k}") ?? []], [0xff, 0x00, 0x80]);
      assert.deepEqual((await db2.smembers("p:sets:{k}")).sort(), ["a", "b"]);
      const db0 = await raw(server, 0);
      assert.equal(await db0.dbsize(), 0, "nothing outside the URL's database");
      await db0.quit();
      // What an operator (or an import) writes in that form is served.
      await db2.set("p:flags:{imported}", "1");
      assert.equal(await ops.flagGet("imported"), true);
      await ops.kvDelete("k");
      assert.equal(await db2.exists("p:kv:{k}"), 0);
    } finally {
      await db2.quit();
      await ops.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "prefixes keep Purple deployments apart in one Redis, in both layouts",
  ignore,
  async fn() {
    const server = await startRedis();
    const deployments = await Promise.all([
      redisOps(server.url, { redisLayout: "prefixed", redisPrefix: "a:" }),
      redisOps(server.url, { redisLayout: "prefixed", redisPrefix: "b:" }),
      redisOps(server.url, { redisLayout: "prefixed" }),
      redisOps(server.url, { redisPrefix: "a:" }),
      redisOps(server.url),
    ]);
    const kv = await raw(server, 3);
    try {
      const values = await Promise.all(
        deployments.map((ops, i) => ops.counterIncrement("shared", i + 1)),
      );
      assert.deepEqual(values, [1n, 2n, 3n, 4n, 5n]);
      for (const [i, ops] of deployments.entries()) {
        assert.equal(await ops.counterGet("shared"), BigInt(i + 1));
        await ops.kvPut("doc", `deployment ${i}`);
      }
      for (const [i, ops] of deployments.entries()) {
        assert.equal(new TextDecoder().decode(await ops.kvGet("doc")), `deployment ${i}`);
      }
      // The databases layout with a prefix: the same databases, prefixed keys.
      assert.deepEqual((await kv.keys("*")).sort(), ["a:doc", "doc"]);
    } finally {
      await kv.quit();
      await Promise.all(deployments.map((ops) => ops.close()));
      await server.stop();
    }
  },
});

Deno.test({
  name: "the set-size limit (a Lua script) holds in the prefixed layout",
  ignore,
  async fn() {
    const server = await startRedis();
    const ops = await redisOps(server.url, {
      redisLayout: "prefixed",
      limits: { maxSetItems: 2 },
    });
    try {
      await ops.setAdd("s", "a");
      await ops.setAdd("s", "b");
      await rejectsWith(ops.setAdd("s", "c"), ValueTooLargeError, /holds 2 items, the limit is 2/);
      assert.deepEqual(await ops.setAdd("s", "a"), ["a", "b"]);
      assert.deepEqual(await ops.setRemove("s", "a"), ["b"]);
      assert.deepEqual(await ops.setAdd("s", "c"), ["b", "c"]);
    } finally {
      await ops.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "redisWaitReplicas on a Redis without replicas fails writes, then refuses them for a while",
  ignore,
  async fn() {
    const server = await startRedis();
    const ops = await redisOps(server.url, { redisWaitReplicas: 1, redisWaitTimeoutMs: 50 });
    try {
      const started = performance.now();
      await rejectsWith(
        ops.counterIncrement("k", 1),
        UnavailableError,
        /^Cannot increment counter 'k' by 1: written, but 0 of 1 replicas acknowledged it within 50 ms/,
      );
      assert.ok(performance.now() - started >= 45);
      assert.equal(await ops.counterGet("k"), 1n, "the write itself happened");
      // Then writes are refused before being sent, for one WAIT timeout, instead of each
      // holding the connection for the whole timeout.
      const refusedAt = performance.now();
      await rejectsWith(ops.setAdd("s", "x"), UnavailableError, /: not written, since a write/);
      assert.ok(performance.now() - refusedAt < 40, "refused at once");
      assert.deepEqual(await ops.setGet("s"), [], "reads still work");
      await new Promise((resolve) => setTimeout(resolve, 60));
      await rejectsWith(ops.setAdd("s", "x"), UnavailableError, /written, but 0 of 1 replicas/);
      assert.deepEqual(await ops.setGet("s"), ["x"]);
    } finally {
      await ops.close();
      await server.stop();
    }
  },
});
