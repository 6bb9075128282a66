// Watches across processes: why the disk backend polls (Deno KV's own watch() does not see
// another process's writes to the same file), and a write through one `purple` process seen by
// a watcher on another within a second, sharing one disk directory, one Redis, one Redis
// Cluster; what a write to Redis by something else than Purple does; and SIGTERM with open
// watches.

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { HttpClient, type Operations, type WatchChange } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import { type Purple, startPurple } from "./_purple.ts";
import { REDIS_MISSING, type RedisServer, startRedis } from "./_redis.ts";
import { CLUSTER_MISSING, startRedisCluster } from "./_redis_cluster.ts";
import { goawayAbortRetried, ROOT } from "./_process.ts";
import { Watching } from "./_conformance_watch.ts";

/** The promise: a write by any process is seen within a second. */
const WITHIN_MS = 1_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("Deno KV's watch() on a file does not see another process's writes (so disk polls)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "purple_kv_watch_" });
  const path = `${dir}/kv.sqlite3`;
  const kv = await Deno.openKv(path);
  const stream = kv.watch([["k"]]);
  const reader = stream.getReader();
  try {
    await kv.set(["k"], 0);
    // The first state, and this process's own write (the watch may show one or both).
    for (;;) {
      const { value } = await reader.read();
      if (value?.[0].value === 0) break;
    }
    const writer = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        "--unstable-kv",
        `const kv = await Deno.openKv(${
          JSON.stringify(path)
        }); await kv.set(["k"], 1); kv.close();`,
      ],
    }).output();
    assert.ok(writer.success, new TextDecoder().decode(writer.stderr));
    assert.equal((await kv.get(["k"])).value, 1, "a read sees the other process's write");
    const next = reader.read();
    const seen = await Promise.race([next, sleep(1_500).then(() => "nothing")]);
    assert.equal(
      seen,
      "nothing",
      "Deno KV's watch() now sees another process's writes: the disk backend's poller " +
        "(backends/_watch_disk.ts) could be replaced by it",
    );
    await kv.set(["k"], 2);
    const { value } = await next;
    assert.equal(value?.[0].value, 2, "this process's own writes are seen");
  } finally {
    await reader.cancel();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Writes through `writer` and waits for each change on `watcher`: counters, flags, KV values and
 * sets, ten writes in all; each must be seen within a second of its answer. Returns the delays.
 */
async function seenAcross(writer: Operations, watchers: Operations[], tag: string) {
  const [counter, flag, doc, team] = ["counter", "flag", "doc", "team"].map((k) => `${tag}:${k}`);
  const keys = { counters: [counter], flags: [flag], kv: [doc], sets: [team] };
  const watches = watchers.map((ops) => new Watching(ops, keys));
  const delays: number[] = [];
  try {
    for (const watch of watches) await watch.take(4, 5_000);
    const writes: Array<[() => Promise<unknown>, (change: WatchChange) => boolean]> = [];
    for (let i = 1; i <= 4; i++) {
      writes.push([
        () => writer.counterIncrement(counter, 1),
        (c) => c.service === "counters" && c.value === BigInt(i),
      ]);
    }
    for (const value of [true, false]) {
      writes.push([
        () => writer.flagSet(flag, value),
        (c) => c.service === "flags" && c.value === value,
      ]);
    }
    for (const text of ["v1", "v2"]) {
      writes.push([
        () => writer.kvPut(doc, text),
        (c) => c.service === "kv" && c.exists && new TextDecoder().decode(c.value) === text,
      ]);
    }
    writes.push([() => writer.setAdd(team, "ann"), (c) => c.service === "sets" && c.exists]);
    writes.push([() => writer.kvDelete(doc), (c) => c.service === "kv" && !c.exists]);
    for (const [write, matches] of writes) {
      await write();
      const written = performance.now();
      for (const watch of watches) {
        await watch.until(matches, 3_000);
        delays.push(performance.now() - written);
      }
    }
  } finally {
    await Promise.all(watches.map((watch) => watch.close()));
  }
  const slowest = Math.max(...delays);
  assert.ok(slowest < WITHIN_MS, `a write was seen ${slowest.toFixed(0)} ms later: ${delays}`);
  return delays;
}

/** Two purple processes with `args`, and clients of each (closed before the processes stop). */
async function twoPurples(args: string[], env: Record<string, string> = {}) {
  const purples: Purple[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      purples.push(await startPurple([...args, "--http-port", "0", "--grpc-port", "0"], env));
    }
  } catch (error) {
    await Promise.all(purples.map((purple) => purple.stop("SIGKILL")));
    throw error;
  }
  const http = purples.map((purple) => new HttpClient(`http://127.0.0.1:${purple.httpPort}`));
  const grpc = purples.map((purple) => new GrpcClient(`127.0.0.1:${purple.grpcPort}`));
  return {
    http,
    grpc,
    async stop() {
      for (const client of [...http, ...grpc]) await client.close();
      const codes = await Promise.all(purples.map((purple) => purple.stop()));
      for (const { code, stderr } of codes) assert.equal(code, 0, stderr);
    },
  };
}

/** The delays, for the log: `p50 .. max`. */
function summary(delays: number[]): string {
  const sorted = [...delays].sort((a, b) => a - b);
  return `p50 ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} ms, max ${
    sorted.at(-1)!.toFixed(0)
  } ms`;
}

Deno.test({
  name: "two purple processes on one disk directory: each sees the other's writes within 1 s",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "purple_watch_disk_" });
    const two = await twoPurples(["--backend", "disk", "--data-dir", dataDir]);
    try {
      const delays = [
        ...await seenAcross(two.http[1], [two.http[0], two.grpc[0]], "a"),
        ...await seenAcross(two.grpc[0], [two.http[1], two.grpc[1], two.http[0]], "b"),
      ];
      console.log(`disk, across processes: ${summary(delays)}`);
    } finally {
      await two.stop();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "two purple processes on one Redis: each sees the other's writes within 1 s",
  ignore: REDIS_MISSING !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    for (const layout of ["databases", "prefixed"]) {
      const redis = await startRedis();
      const two = await twoPurples([
        "--backend",
        "redis",
        "--redis-url",
        redis.url,
        "--redis-layout",
        layout,
        "--redis-prefix",
        "shop:",
      ]);
      try {
        const delays = [
          ...await seenAcross(two.http[1], [two.http[0], two.grpc[0]], "a"),
          ...await seenAcross(two.grpc[0], [two.http[1], two.grpc[1]], "b"),
        ];
        console.log(`redis (${layout}), across processes: ${summary(delays)}`);
      } finally {
        await two.stop();
        await redis.stop();
      }
    }
  },
});

Deno.test({
  name: "Redis: a write by another client is not seen, until it publishes to the key's channel",
  ignore: REDIS_MISSING !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const redis: RedisServer = await startRedis();
    const purple = await startPurple(
      ["http", "--backend", "redis", "--redis-url", redis.url, "--port", "0"],
    );
    const client = new HttpClient(`http://127.0.0.1:${purple.httpPort}`);
    const other = new Redis(redis.port, "127.0.0.1", { db: 2, lazyConnect: true });
    const watch = new Watching(client, { flags: ["beta"] });
    try {
      await other.connect();
      assert.deepEqual(await watch.next(), {
        service: "flags",
        key: "beta",
        exists: false,
        value: false,
      });
      // Once Redis has the subscription, Purple reads the key once more (a write between its
      // first read and the subscription is not missed): let that read pass first.
      while (Number(((await other.pubsub("NUMSUB", "watch:flags:{beta}")) as unknown[])[1]) < 1) {
        await sleep(10);
      }
      await sleep(300);
      await other.set("beta", "true"); // The databases layout: flags in database 2.
      await watch.quiet(1_500);
      await other.publish("watch:flags:{beta}", "");
      assert.deepEqual(await watch.next(WITHIN_MS), {
        service: "flags",
        key: "beta",
        exists: true,
        value: true,
      });
    } finally {
      await watch.close();
      other.disconnect();
      await client.close();
      await purple.stop();
      await redis.stop();
    }
  },
});

Deno.test({
  name: "two purple processes on one Redis Cluster: each sees the other's writes within 1 s",
  ignore: CLUSTER_MISSING !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const cluster = await startRedisCluster();
    try {
      const two = await twoPurples([
        "--backend",
        "redis",
        "--redis-cluster",
        "--redis-url",
        cluster.url,
      ]);
      try {
        // Keys in different slots, on different masters.
        const delays = [];
        for (const tag of ["a", "b", "c", "d"]) {
          delays.push(...await seenAcross(two.http[1], [two.http[0], two.grpc[0]], tag));
        }
        console.log(`redis cluster, across processes: ${summary(delays)}`);
      } finally {
        await two.stop();
      }
    } finally {
      await cluster.stop();
    }
  },
});

/** gRPC watchers in their own process (see tests/watch_test.ts: denoland/deno#36788). */
const GRPC_WATCHER = `
  import { GrpcClient } from "@purple/client/grpc";
  const client = new GrpcClient(Deno.args[0]);
  const watch = client.watch({ kv: ["k"] });
  await watch.next();
  console.log("ready");
  console.log(await watch.next().then(() => "a change", (error) => error.name + ": " + error.message));
  await client.close();
`;

Deno.test({
  name: "SIGTERM with open watches: every stream ends at once with its reason, purple exits 0",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    for (let attempt = 1;; attempt++) {
      const purple = await startPurple([
        "--backend",
        "memory",
        "--http-port",
        "0",
        "--grpc-port",
        "0",
      ]);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          "--config",
          `${ROOT}/deno.json`,
          GRPC_WATCHER,
          `127.0.0.1:${purple.grpcPort}`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      const client = new HttpClient(`http://127.0.0.1:${purple.httpPort}`);
      const watches = Array.from({ length: 3 }, () => new Watching(client, { kv: ["k"] }));
      try {
        for (const watch of watches) await watch.next(5_000);
        const ends = watches.map((watch) => watch.next(5_000).catch((error) => error));
        const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let out = "";
        while (!out.includes("ready\n")) {
          const { value, done } = await lines.read();
          if (done) break;
          out += value;
        }
        const start = performance.now();
        const { code } = await purple.stop("SIGTERM");
        const took = performance.now() - start;
        assert.equal(code, 0);
        for (const end of await Promise.all(ends)) {
          assert.match(String(end), /UnavailableError: Purple is shutting down/);
        }
        for (;;) {
          const { value, done } = await lines.read();
          if (done) break;
          out += value;
        }
        const childCode = (await child.status).code;
        const errors = await stderr;
        if (goawayAbortRetried(childCode, errors, attempt)) continue;
        assert.equal(childCode, 0, errors);
        assert.match(out.split("\n")[1], /^UnavailableError: .*shutting down/);
        assert.ok(took < 3_000, `purple took ${took.toFixed(0)} ms to stop`);
        return;
      } finally {
        await Promise.all(watches.map((watch) => watch.close()));
        await client.close();
        try {
          child.kill("SIGKILL");
        } catch { /* ended */ }
        await child.status;
        await purple.stop("SIGKILL").catch(() => {});
      }
    }
  },
});
