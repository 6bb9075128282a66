import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import type { Operations } from "@purple/client";
import {
  InvalidArgumentError,
  PreconditionFailedError,
  type PurpleError,
  UnavailableError,
} from "@purple/client/errors";
import { createHash } from "node:crypto";
import { checked } from "../backends/checked.ts";
import { DEFAULT_LIMITS } from "../backends/limits.ts";
import { openRedisBackend, type RedisBackendOptions } from "../backends/redis.ts";
import { conformance } from "./conformance.ts";
import { Watching } from "./_conformance_watch.ts";
import { freePort, REDIS_MISSING, type RedisServer, startRedis } from "./_redis.ts";

const ignore = REDIS_MISSING !== undefined;

async function open(url: string, options: Partial<RedisBackendOptions> = {}): Promise<Operations> {
  return checked(await openRedisBackend({ url, ...options }), DEFAULT_LIMITS);
}

/** A plain ioredis client on one database, as the original Go server (or an operator) uses. */
async function raw(server: RedisServer, db: number): Promise<Redis> {
  const client = new Redis({ port: server.port, host: "127.0.0.1", db, lazyConnect: true });
  await client.connect();
  return client;
}

/** Runs `fn` with a private redis-server and raw clients on databases 0-4, then stops it. */
async function withRedis(
  fn: (server: RedisServer, dbs: Redis[]) => Promise<void>,
): Promise<void> {
  const server = await startRedis();
  const dbs: Redis[] = [];
  try {
    for (let db = 0; db <= 4; db++) dbs.push(await raw(server, db));
    await fn(server, dbs);
  } finally {
    await Promise.all(dbs.map((client) => client.quit()));
    await server.stop();
  }
}

async function rejectsWith(
  promise: Promise<unknown>,
  kind: new (message: string) => PurpleError,
  pattern?: RegExp,
): Promise<string> {
  let message = "";
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof kind, `expected ${kind.name}, got ${error}`);
    if (pattern) assert.match(error.message, pattern);
    message = error.message;
    return true;
  });
  return message;
}

/** Every operation once, each expected to fail the same way. */
function everyOperation(ops: Operations): [string, () => Promise<unknown>][] {
  return [
    ["cacheGet", () => ops.cacheGet("k")],
    ["cacheSet", () => ops.cacheSet("k", "v", 10)],
    ["counterIncrement", () => ops.counterIncrement("k", 1)],
    ["counterGet", () => ops.counterGet("k")],
    ["flagGet", () => ops.flagGet("k")],
    ["flagSet", () => ops.flagSet("k", true)],
    ["kvGet", () => ops.kvGet("k")],
    ["kvPut", () => ops.kvPut("k", "v")],
    ["kvDelete", () => ops.kvDelete("k")],
    ["setGet", () => ops.setGet("k")],
    ["setAdd", () => ops.setAdd("k", "i")],
    ["setRemove", () => ops.setRemove("k", "i")],
  ];
}

/** Runs every operation against a Redis that is away: each must fail fast and unavailable. */
async function assertAllUnavailable(ops: Operations, withinMs: number): Promise<number> {
  let slowest = 0;
  for (const [name, call] of everyOperation(ops)) {
    const started = performance.now();
    await rejectsWith(
      call(),
      UnavailableError,
      /Redis at redis:\/\/127\.0\.0\.1:\d+ is unavailable/,
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed < withinMs, `${name} took ${elapsed.toFixed(0)} ms to fail`);
    slowest = Math.max(slowest, elapsed);
  }
  return slowest;
}

/** Waits until every service answers again; returns how long that took. */
async function waitUntilServing(ops: Operations, withinMs: number): Promise<number> {
  const started = performance.now();
  while (true) {
    try {
      await Promise.all([
        ops.cacheSet("back", "yes", 10),
        ops.counterIncrement("back", 1),
        ops.flagSet("back", true),
        ops.kvPut("back", "yes"),
        ops.setAdd("back", "yes"),
      ]);
      return performance.now() - started;
    } catch (error) {
      if (!(error instanceof UnavailableError)) throw error;
      const elapsed = performance.now() - started;
      assert.ok(elapsed < withinMs, `still unavailable after ${elapsed.toFixed(0)} ms: ${error}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

async function kvVersion(ops: Operations, key: string): Promise<string> {
  return (await ops.kvGetEntry(key)).version;
}

conformance("redis", async () => {
  const server = await startRedis();
  let ops = await open(server.url);
  return {
    ops,
    listing: "scanned",
    reopen: async () => {
      await ops.close();
      ops = await open(server.url);
      return ops;
    },
    close: async () => {
      await ops.close();
      await server.stop();
    },
  };
}, { ignore });

Deno.test({
  name: "RedisBackend serves a Redis filled by the original Go Purple as it is",
  ignore,
  fn: () =>
    withRedis(async (server, [cache, counters, flags, kv, sets]) => {
      const bytes = new Uint8Array([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x0a, 0x80]);
      await cache.set("page", "<html>", "EX", 60);
      await counters.incrby("hits", 41);
      await counters.incrby("big", "9007199254740993");
      await counters.set("plus", "+7");
      for (const [key, value] of Object.entries({ on: "true", off: "false", one: "1", T: "T" })) {
        await flags.set(key, value);
      }
      await flags.set("zero", "0");
      await flags.set("False", "False");
      await kv.set("blob", Buffer.from(bytes));
      await sets.sadd("todos", "shopping", "running", "Zebra", "été");

      const ops = await open(server.url);
      try {
        assert.equal(await ops.cacheGet("page"), "<html>");
        assert.equal(await ops.counterGet("hits"), 41n);
        assert.equal(await ops.counterIncrement("hits", 1), 42n);
        assert.equal(await ops.counterGet("big"), 9007199254740993n);
        assert.equal(await ops.counterGet("plus"), 7n);
        for (const key of ["on", "one", "T"]) assert.equal(await ops.flagGet(key), true, key);
        for (const key of ["off", "zero", "False", "never"]) {
          assert.equal(await ops.flagGet(key), false, key);
        }
        assert.deepEqual(await ops.kvGet("blob"), bytes);
        assert.deepEqual(await ops.setGet("todos"), ["Zebra", "running", "shopping", "été"]);
        // Each key lives in its own service's database only.
        await ops.kvDelete("blob");
        assert.equal(await cache.exists("blob", "hits", "on", "todos"), 0);

        // The data API v2 on the original's data, which has no version field: a KV value's
        // version is the SHA-1 of its bytes, computed by Redis from the value itself.
        await kv.set("doc", "written by Go");
        const entry = await ops.kvGetEntry("doc");
        assert.equal(entry.version, createHash("sha1").update("written by Go").digest("hex"));
        await ops.kvPut("doc", "updated", { ifMatch: entry.version });
        await kv.set("doc", "changed behind Purple's back");
        await assert.rejects(
          ops.kvPut("doc", "lost update", { ifMatch: entry.version }),
          PreconditionFailedError,
        );
        assert.equal(await kv.get("doc"), "changed behind Purple's back");
        assert.deepEqual((await ops.counterList({})).keys.sort(), ["big", "hits", "plus"]);
        assert.deepEqual((await ops.setList({ prefix: "to" })).keys, ["todos"]);
        assert.deepEqual((await ops.flagList({ prefix: "o" })).keys.sort(), ["off", "on", "one"]);
        await ops.flagDelete("on");
        await ops.counterDelete("plus");
        await ops.setDelete("todos");
        await ops.cacheDelete("page");
        assert.equal(await flags.exists("on") + await counters.exists("plus"), 0);
        assert.equal(await sets.exists("todos") + await cache.exists("page"), 0);
        const [increment, put] = await ops.batch([
          { op: "counterIncrement", args: ["hits", 1] },
          { op: "kvPut", args: ["doc", "atomic", { ifMatch: await kvVersion(ops, "doc") }] },
        ], { atomic: true });
        assert.deepEqual([increment, put], [{ ok: true, value: 43n }, {
          ok: true,
          value: undefined,
        }]);
        assert.equal(await counters.get("hits"), "43");
        assert.equal(await kv.get("doc"), "atomic");
      } finally {
        await ops.close();
      }
    }),
});

Deno.test({
  name: "RedisBackend writes the original layout: one database per service, TTL on the cache",
  ignore,
  fn: () =>
    withRedis(async (server, [cache, counters, flags, kv, sets]) => {
      // The database number of the URL is ignored: the layout fixes databases 0-4.
      const ops = await open(`${server.url}/7`);
      const bytes = new Uint8Array(256).map((_, i) => 255 - i);
      try {
        await ops.cacheSet("k", "cached", 30);
        await ops.cacheSet("default", "cached");
        await ops.counterIncrement("k", 9007199254740993n);
        await ops.flagSet("k", true);
        await ops.flagSet("other", false);
        await ops.kvPut("k", bytes);
        await ops.setAdd("k", "b");
        await ops.setAdd("k", "a");
      } finally {
        await ops.close();
      }
      assert.equal(await cache.type("k"), "string");
      assert.equal(await cache.get("k"), "cached");
      const ttl = await cache.ttl("k");
      assert.ok(ttl > 0 && ttl <= 30, `TTL of the cache key is ${ttl}`);
      const defaultTtl = await cache.ttl("default");
      assert.ok(defaultTtl > 0 && defaultTtl <= 5, `TTL of the default is ${defaultTtl}`);
      assert.equal(await counters.type("k"), "string");
      assert.equal(await counters.get("k"), "9007199254740993");
      assert.equal(await counters.ttl("k"), -1);
      assert.equal(await flags.get("k"), "true");
      assert.equal(await flags.get("other"), "false");
      assert.deepEqual(new Uint8Array(await kv.getBuffer("k") ?? []), bytes);
      assert.equal(await sets.type("k"), "set");
      assert.deepEqual((await sets.smembers("k")).sort(), ["a", "b"]);
      assert.deepEqual(
        await Promise.all([cache, counters, flags, kv, sets].map((db) => db.dbsize())),
        [2, 1, 2, 1, 1],
      );
      const seven = await raw(server, 7);
      assert.equal(await seven.dbsize(), 0);
      await seven.quit();
    }),
});

Deno.test({
  name: "RedisBackend refuses what Redis holds but cannot serve, with clear errors",
  ignore,
  fn: () =>
    withRedis(async (server, [cache, counters, flags, _kv, sets]) => {
      await counters.set("text", "abc");
      await counters.set("huge", "99999999999999999999");
      await flags.set("maybe", "maybe");
      await cache.lpush("list", "x");
      await sets.set("string", "x");
      const ops = await open(server.url);
      try {
        await rejectsWith(
          ops.counterIncrement("text", 1),
          InvalidArgumentError,
          /^Cannot increment counter 'text' by 1: the stored value is not an int64 integer$/,
        );
        await rejectsWith(ops.counterGet("text"), InvalidArgumentError, /'abc' is not an int64/);
        await rejectsWith(ops.counterGet("huge"), InvalidArgumentError, /is not an int64/);
        await rejectsWith(ops.flagGet("maybe"), InvalidArgumentError, /'maybe' is not a boolean/);
        await rejectsWith(ops.cacheGet("list"), InvalidArgumentError, /another kind of value/);
        await rejectsWith(ops.setAdd("string", "i"), InvalidArgumentError, /another kind/);
        await ops.counterIncrement("max", 2n ** 63n - 1n);
        await rejectsWith(
          ops.counterIncrement("max", 1),
          InvalidArgumentError,
          /^Cannot increment counter 'max' by 1: the result would be outside int64$/,
        );
        assert.equal(await counters.get("max"), "9223372036854775807");
        assert.equal(await counters.get("text"), "abc");
      } finally {
        await ops.close();
      }
    }),
});

Deno.test({
  name: "two RedisBackends on one Redis increment one counter exactly",
  ignore,
  fn: () =>
    withRedis(async (server, [, counters]) => {
      const [a, b] = [await open(server.url), await open(server.url)];
      try {
        const big = 2n ** 50n + 1n; // 1000 of them pass 2^53, not 2^63
        const results = await Promise.all(
          Array.from({ length: 1000 }, (_, i) => (i % 2 ? a : b).counterIncrement("shared", big)),
        );
        assert.equal(await a.counterGet("shared"), 1000n * big);
        assert.equal(await counters.get("shared"), String(1000n * big));
        assert.equal(new Set(results).size, 1000);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    }),
});

Deno.test({
  name: "RedisBackend fails fast while Redis is down and serves again when it is back",
  ignore,
  async fn() {
    const server = await startRedis();
    const ops = await open(server.url);
    try {
      await ops.counterIncrement("k", 1);
      await server.stop();
      const slowest = await assertAllUnavailable(ops, 1000);
      // Long enough for the reconnection backoff to reach its cap (500 ms).
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await assertAllUnavailable(ops, 1000);
      await server.start();
      const recovery = await waitUntilServing(ops, 1500);
      assert.equal(await ops.counterGet("back"), 1n); // the restarted Redis is empty
      console.log(
        `  outage: slowest failure ${slowest.toFixed(1)} ms, serving again ${
          recovery.toFixed(0)
        } ms after Redis restarted`,
      );
    } finally {
      await ops.close();
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "a Redis watch whose subscriber connection drops subscribes again and reads every watched key again",
  ignore,
  async fn() {
    await withRedis(async (server, dbs) => {
      const ops = await open(server.url);
      const controller = new AbortController();
      try {
        const watching = new Watching(ops, { counters: ["k"] }, controller.signal);
        assert.equal((await watching.next()).exists, false);
        await ops.counterIncrement("k", 1);
        assert.deepEqual(await watching.next(), {
          service: "counters",
          key: "k",
          exists: true,
          value: 1n,
        });
        // A write made beside Purple publishes nothing: not seen...
        await dbs[1].set("k", "41");
        await watching.quiet(300);
        // ...until the subscriber connection is lost: once back, every watched key is read again.
        assert.equal(await dbs[1].client("KILL", "TYPE", "pubsub"), 1);
        assert.deepEqual(await watching.next(), {
          service: "counters",
          key: "k",
          exists: true,
          value: 41n,
        });
      } finally {
        controller.abort();
        await ops.close();
      }
    });
  },
});

Deno.test({
  name:
    "a Redis watch stays open while Redis is down and gets the new states when it is back; a watch opened meanwhile fails with 503",
  ignore,
  async fn() {
    const server = await startRedis();
    const ops = await open(server.url, { connectTimeoutMs: 500 });
    const controller = new AbortController();
    try {
      await ops.counterIncrement("k", 5);
      const watching = new Watching(ops, { counters: ["k"] }, controller.signal);
      assert.deepEqual(await watching.next(), {
        service: "counters",
        key: "k",
        exists: true,
        value: 5n,
      });
      await server.stop();
      await rejectsWith(
        new Watching(ops, { counters: ["other"] }, controller.signal).next(),
        UnavailableError,
      );
      await watching.quiet(500);
      await server.start(); // Empty: the counter is gone.
      assert.deepEqual(await watching.next(10_000), {
        service: "counters",
        key: "k",
        exists: false,
        value: 0n,
      });
    } finally {
      controller.abort();
      await ops.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "RedisBackend fails the commands of a Redis that hangs after commandTimeoutMs",
  ignore,
  async fn() {
    const server = await startRedis();
    const ops = await open(server.url, { commandTimeoutMs: 300 });
    try {
      await ops.kvPut("k", "v");
      server.pause();
      const started = performance.now();
      await rejectsWith(
        Promise.all([ops.kvGet("k"), ops.counterIncrement("k", 1)]),
        UnavailableError,
        /unavailable \(no reply within 300 ms\)/,
      );
      const detected = performance.now() - started;
      assert.ok(detected >= 300 && detected < 800, `detected after ${detected.toFixed(0)} ms`);
      // While it hangs, nothing waits: the dropped connections refuse at once.
      await assertAllUnavailable(ops, 250);
      server.resume();
      const recovery = await waitUntilServing(ops, 3000);
      assert.equal(new TextDecoder().decode(await ops.kvGet("k")), "v");
      console.log(
        `  hang: detected after ${detected.toFixed(0)} ms, serving again ${
          recovery.toFixed(0)
        } ms after resume`,
      );
    } finally {
      server.resume();
      await ops.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "openRedisBackend() rejects quickly with UnavailableError when nobody listens",
  ignore,
  async fn() {
    const url = `redis://alice:s3cret@127.0.0.1:${freePort()}`;
    const started = performance.now();
    const message = await rejectsWith(
      openRedisBackend({ url }),
      UnavailableError,
      /^Cannot connect to Redis at redis:\/\/alice:\*\*\*@127\.0\.0\.1:\d+: .*ECONNREFUSED/,
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 500, `took ${elapsed.toFixed(0)} ms`);
    assert.ok(!message.includes("s3cret"), message);
    assert.ok(!message.includes("\n"), message);
  },
});

Deno.test({
  name: "openRedisBackend() gives up after connectTimeoutMs on a Redis that hangs",
  ignore,
  async fn() {
    const server = await startRedis();
    server.pause();
    try {
      const started = performance.now();
      await rejectsWith(
        openRedisBackend({ url: server.url, connectTimeoutMs: 200 }),
        UnavailableError,
        /^Cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+: /,
      );
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 500, `took ${elapsed.toFixed(0)} ms`);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "openRedisBackend() authenticates with the password or user of the URL",
  ignore,
  fn: () =>
    withRedis(async (server, [admin]) => {
      await admin.call("ACL", "SETUSER", "alice", "on", ">wonder land", "~*", "+@all");
      await admin.config("SET", "requirepass", "p@ss");
      const asAlice = await open(`redis://alice:wonder%20land@127.0.0.1:${server.port}`);
      const asDefault = await open(`redis://:p%40ss@127.0.0.1:${server.port}`);
      try {
        await asAlice.counterIncrement("k", 1);
        assert.equal(await asDefault.counterIncrement("k", 1), 2n);
      } finally {
        await Promise.all([asAlice.close(), asDefault.close()]);
      }
      await rejectsWith(
        openRedisBackend({ url: `redis://alice:wrong@127.0.0.1:${server.port}` }),
        UnavailableError,
        /^Cannot connect to Redis at redis:\/\/alice:\*\*\*@127\.0\.0\.1:\d+: WRONGPASS/,
      );
      await rejectsWith(openRedisBackend({ url: server.url }), UnavailableError, /NOAUTH/);
    }),
});

Deno.test("openRedisBackend() refuses a URL that is not redis:// or rediss://", async () => {
  await rejectsWith(
    openRedisBackend({ url: "http://user:pw@127.0.0.1:6379" }),
    InvalidArgumentError,
    /^Bad Redis URL 'http:\/\/user:\*\*\*@127\.0\.0\.1:6379': expected the scheme/,
  );
  await rejectsWith(openRedisBackend({ url: "not a url" }), InvalidArgumentError, /cannot parse/);
  await rejectsWith(
    openRedisBackend({ url: "redis://127.0.0.1:6379", commandTimeoutMs: 0 }),
    InvalidArgumentError,
    /^Bad 'commandTimeoutMs': expected a positive number of milliseconds, found 0$/,
  );
  await rejectsWith(
    openRedisBackend({ url: "redis://127.0.0.1:6379", connectTimeoutMs: NaN }),
    InvalidArgumentError,
    /connectTimeoutMs/,
  );
});

/** Makes a CA and a certificate for localhost and 127.0.0.1 with openssl, in `dir`. */
async function makeCertificates(dir: string): Promise<void> {
  const openssl = async (command: string) => {
    const args = command.split(" ");
    const { success, stderr } = await new Deno.Command("openssl", { args, cwd: dir }).output();
    if (!success) throw new Error(`openssl ${command} failed: ${new TextDecoder().decode(stderr)}`);
  };
  const key = "-newkey rsa:2048 -nodes -keyout";
  await openssl(`req -x509 ${key} ca.key -out ca.pem -days 2 -subj /CN=purple-test-ca`);
  await openssl(`req ${key} server.key -out server.csr -subj /CN=localhost`);
  await Deno.writeTextFile(`${dir}/ext`, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  await openssl(
    "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem " +
      "-days 2 -extfile ext",
  );
}

const OPENSSL_MISSING = await new Deno.Command("openssl", { args: ["version"], stdout: "null" })
  .output()
  .then(({ success }) => success ? undefined : "`openssl version` failed")
  .catch(() => "openssl is not on PATH");
if (OPENSSL_MISSING && !ignore) {
  console.error(
    `\n!!! SKIPPING THE REDIS TLS TEST: ${OPENSSL_MISSING} (it makes the certificates) !!!\n`,
  );
}

Deno.test({
  name:
    "openRedisBackend() speaks TLS to a rediss:// URL and checks the certificate, unless insecureTls",
  ignore: ignore || OPENSSL_MISSING !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "purple-redis-tls-" });
    const tlsPort = freePort();
    let server: RedisServer | undefined;
    try {
      await makeCertificates(dir);
      server = await startRedis((
        `--tls-port ${tlsPort} --tls-cert-file ${dir}/server.pem --tls-key-file ${dir}/server.key ` +
        `--tls-ca-cert-file ${dir}/ca.pem --tls-auth-clients no`
      ).split(" "));
      // Trusting a private CA takes --cert, so the backend runs in a child Deno.
      const probe = `${dir}/probe.ts`;
      await Deno.writeTextFile(
        probe,
        `import { openRedisBackend } from "${new URL("../backends/redis.ts", import.meta.url)}";
        const backend = await openRedisBackend({
          url: Deno.args[0],
          insecureTls: Deno.args[1] === "insecure",
        });
        const changes = backend.watch([{ service: "counters", key: "tls" }]);
        const next = () => Promise.race([
          changes.next().then(({ value }) => String(value.value)),
          new Promise((resolve) => setTimeout(resolve, 10_000, "no change within 10 s")),
        ]);
        const before = await next();
        const after = await backend.counterIncrement("tls", 7n);
        // The change comes through the watch's own connection, TLS too.
        console.log(\`\${before} -> \${after}, watched: \${await next()}\`);
        await changes.return?.();
        await backend.close();`,
      );
      const run = async (url: string, trust: boolean, insecure = false) => {
        const config = new URL("../deno.json", import.meta.url).pathname;
        const args = ["run", "-A", "--no-check", "--config", config];
        if (trust) args.push("--cert", `${dir}/ca.pem`);
        const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
          args: [...args, probe, url, insecure ? "insecure" : "checked"],
        }).output();
        const text = new TextDecoder();
        return { success, out: text.decode(stdout).trim(), err: text.decode(stderr) };
      };
      const trusted = await run(`rediss://localhost:${tlsPort}`, true);
      assert.ok(trusted.success, trusted.err);
      assert.equal(trusted.out, "0 -> 7, watched: 7");
      const untrusted = await run(`rediss://localhost:${tlsPort}`, false);
      assert.ok(!untrusted.success);
      assert.match(
        untrusted.err,
        /UnavailableError: Cannot connect to Redis at rediss:\/\/localhost:\d+: .*certificate/,
      );
      // Heroku Redis's certificate is self-signed: --redis-insecure-tls connects all the same.
      const insecure = await run(`rediss://localhost:${tlsPort}`, false, true);
      assert.ok(insecure.success, insecure.err);
      assert.equal(insecure.out, "7 -> 14, watched: 14");
      const counters = await raw(server, 1);
      assert.equal(await counters.get("tls"), "14");
      await counters.quit();
    } finally {
      await server?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
