/**
 * The conformance suite: every behaviour of `shared/WIRE.md`, stated once against the
 * `Operations` interface and run against every backend, and every client over every server.
 *
 * A target registers itself with {@linkcode conformance}:
 *
 * ```ts ignore
 * conformance("memory", async () => {
 *   const ops = await openBackend({ kind: "memory" });
 *   return { ops, close: () => ops.close() };
 * });
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Operations } from "@purple/client";
import { openBackend } from "../backends/mod.ts";
import { REDIS_MISSING, startRedis } from "./_redis.ts";
import { InvalidArgumentError, NotFoundError, ValueTooLargeError } from "@purple/client/errors";
import {
  type Case,
  type Context,
  type ListingKind,
  rejects,
  sleep,
  text,
} from "./_conformance_kit.ts";
import { DATA_API_CASES } from "./_conformance_data_api.ts";
import { WATCH_CASES } from "./_conformance_watch.ts";

/** What a target hands the suite. */
export interface Subject {
  /** The operations under test, opened with the default limits. */
  ops: Operations;
  /**
   * Closes `ops` and opens the same store again, as a restart would. Only for targets that
   * promise persistence (disk, redis); the persistence case runs only where it is given.
   */
  reopen?: () => Promise<Operations>;
  /** Tears the target down (closes the current ops and anything else it started). */
  close: () => Promise<void>;
  /** How the target lists keys: `scanned` for Redis, `sorted` for memory and disk. */
  listing: ListingKind;
}

/** The limits the suite assumes: the defaults. */
export const SUITE_LIMITS = { maxKeyBytes: 512, maxValueBytes: 1024 * 1024, maxItemBytes: 1024 };

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

const ORIGINAL_CASES: Case[] = [
  ["cacheSet() then cacheGet() returns the value", async ({ ops, key }) => {
    await ops.cacheSet(key("c"), "a1b2c3d4e5f6", 120);
    assert.equal(await ops.cacheGet(key("c")), "a1b2c3d4e5f6");
  }],
  ["cacheGet() of a missing key throws NotFoundError", async ({ ops, key }) => {
    await rejects(ops.cacheGet(key("missing")), NotFoundError);
  }],
  ["cacheSet() overwrites the value and the TTL", async ({ ops, key }) => {
    await ops.cacheSet(key("short"), "first", 1);
    await ops.cacheSet(key("short"), "second", 60);
    await ops.cacheSet(key("expiring"), "soon gone", 1);
    assert.equal(await ops.cacheGet(key("short")), "second");
    assert.equal(await ops.cacheGet(key("expiring")), "soon gone");
    await sleep(1050);
    assert.equal(await ops.cacheGet(key("short")), "second");
    await rejects(ops.cacheGet(key("expiring")), NotFoundError);
  }],
  ["cacheSet() with ttl 0 or no ttl keeps the value (the 5 s default)", async ({ ops, key }) => {
    await ops.cacheSet(key("zero"), "v", 0);
    await ops.cacheSet(key("omitted"), "w");
    assert.equal(await ops.cacheGet(key("zero")), "v");
    assert.equal(await ops.cacheGet(key("omitted")), "w");
  }],
  ["cacheSet() refuses a negative or fractional TTL, an empty key or value", async (ctx) => {
    const { ops, key } = ctx;
    await rejects(ops.cacheSet(key("neg"), "v", -1), InvalidArgumentError);
    await rejects(ops.cacheSet(key("frac"), "v", 1.5), InvalidArgumentError);
    await rejects(ops.cacheSet("", "v", 10), InvalidArgumentError);
    await rejects(ops.cacheSet(key("empty"), "", 10), InvalidArgumentError);
    await rejects(ops.cacheGet(key("neg")), NotFoundError);
  }],
  ["cacheSet() takes a value up to the size limit and refuses one byte more", async (ctx) => {
    const { ops, key } = ctx;
    const max = "é".repeat(SUITE_LIMITS.maxValueBytes / 2 - 1) + "ab";
    await ops.cacheSet(key("max"), max, 60);
    assert.equal(await ops.cacheGet(key("max")), max);
    await rejects(ops.cacheSet(key("over"), max + "c", 60), ValueTooLargeError);
    await rejects(ops.cacheGet(key("over")), NotFoundError);
  }],
  ["counterGet() of a missing counter is 0n", async ({ ops, key }) => {
    assert.equal(await ops.counterGet(key("none")), 0n);
  }],
  ["counterIncrement() adds numbers and bigints, negative too", async ({ ops, key }) => {
    assert.equal(await ops.counterIncrement(key("n"), 100), 100n);
    assert.equal(await ops.counterIncrement(key("n"), -107n), -7n);
    assert.equal(await ops.counterIncrement(key("n"), 0), -7n);
    assert.equal(await ops.counterGet(key("n")), -7n);
  }],
  ["counterIncrement() is exact past 2^53", async ({ ops, key }) => {
    assert.equal(await ops.counterIncrement(key("big"), 9007199254740993n), 9007199254740993n);
    assert.equal(await ops.counterIncrement(key("big"), 2), 9007199254740995n);
    assert.equal(await ops.counterGet(key("big")), 9007199254740995n);
  }],
  ["counterIncrement() refuses a result outside int64 and keeps the value", async (ctx) => {
    const { ops, key } = ctx;
    assert.equal(await ops.counterIncrement(key("max"), INT64_MAX), INT64_MAX);
    await rejects(ops.counterIncrement(key("max"), 1), InvalidArgumentError);
    assert.equal(await ops.counterGet(key("max")), INT64_MAX);
    assert.equal(await ops.counterIncrement(key("min"), INT64_MIN), INT64_MIN);
    await rejects(ops.counterIncrement(key("min"), -1n), InvalidArgumentError);
    assert.equal(await ops.counterGet(key("min")), INT64_MIN);
    assert.equal(await ops.counterIncrement(key("min"), INT64_MAX), -1n);
  }],
  ["counterIncrement() refuses amounts that are not int64 integers", async ({ ops, key }) => {
    await rejects(ops.counterIncrement(key("bad"), 2n ** 63n), InvalidArgumentError);
    await rejects(ops.counterIncrement(key("bad"), -(2n ** 63n) - 1n), InvalidArgumentError);
    await rejects(ops.counterIncrement(key("bad"), 1.5), InvalidArgumentError);
    await rejects(ops.counterIncrement(key("bad"), 2 ** 53 + 2), InvalidArgumentError);
    await rejects(ops.counterIncrement(key("bad"), NaN), InvalidArgumentError);
    assert.equal(await ops.counterGet(key("bad")), 0n);
  }],
  ["flagGet() is false until flagSet() sets it", async ({ ops, key }) => {
    assert.equal(await ops.flagGet(key("f")), false);
    await ops.flagSet(key("f"), true);
    assert.equal(await ops.flagGet(key("f")), true);
    await ops.flagSet(key("f"), false);
    assert.equal(await ops.flagGet(key("f")), false);
  }],
  ["flagSet() refuses a value that is not a boolean", async ({ ops, key }) => {
    await rejects(ops.flagSet(key("f"), "yes" as unknown as boolean), InvalidArgumentError);
    await rejects(ops.flagSet(key("f"), 1 as unknown as boolean), InvalidArgumentError);
    assert.equal(await ops.flagGet(key("f")), false);
  }],
  ["kvPut() then kvGet() returns the bytes; a string is stored as UTF-8", async (ctx) => {
    const { ops, key } = ctx;
    await ops.kvPut(key("s"), "héllo wörld ✓");
    assert.equal(text(await ops.kvGet(key("s"))), "héllo wörld ✓");
    await ops.kvPut(key("s"), new Uint8Array([1, 2, 3]));
    assert.deepEqual(await ops.kvGet(key("s")), new Uint8Array([1, 2, 3]));
  }],
  ["kvPut() round-trips every byte value 0-255", async ({ ops, key }) => {
    const bytes = new Uint8Array(512).map((_, i) => i % 256);
    await ops.kvPut(key("bin"), bytes);
    assert.deepEqual(await ops.kvGet(key("bin")), bytes);
    const invalidUtf8 = new Uint8Array([0xff, 0xfe, 0x00, 0xc3, 0x28, 0xed, 0xa0, 0x80]);
    await ops.kvPut(key("bad-utf8"), invalidUtf8);
    assert.deepEqual(await ops.kvGet(key("bad-utf8")), invalidUtf8);
  }],
  ["kvGet() and kvDelete() of a missing key throw NotFoundError", async ({ ops, key }) => {
    await rejects(ops.kvGet(key("missing")), NotFoundError);
    await rejects(ops.kvDelete(key("missing")), NotFoundError);
  }],
  ["kvDelete() removes the value", async ({ ops, key }) => {
    await ops.kvPut(key("d"), "x");
    await ops.kvDelete(key("d"));
    await rejects(ops.kvGet(key("d")), NotFoundError);
    await rejects(ops.kvDelete(key("d")), NotFoundError);
  }],
  ["kvPut() takes exactly the size limit and refuses one byte more", async ({ ops, key }) => {
    const max = new Uint8Array(SUITE_LIMITS.maxValueBytes).map((_, i) => (i * 31) % 256);
    await ops.kvPut(key("max"), max);
    assert.deepEqual(await ops.kvGet(key("max")), max);
    await ops.kvPut(key("max"), "small now");
    assert.equal(text(await ops.kvGet(key("max"))), "small now");
    const over = new Uint8Array(SUITE_LIMITS.maxValueBytes + 1);
    await rejects(ops.kvPut(key("over"), over), ValueTooLargeError);
    await rejects(ops.kvGet(key("over")), NotFoundError);
  }],
  ["kvPut() refuses an empty value", async ({ ops, key }) => {
    await rejects(ops.kvPut(key("empty"), new Uint8Array()), InvalidArgumentError);
    await rejects(ops.kvPut(key("empty"), ""), InvalidArgumentError);
  }],
  ["setGet() of a missing set is empty", async ({ ops, key }) => {
    assert.deepEqual(await ops.setGet(key("none")), []);
    assert.deepEqual(await ops.setRemove(key("none"), "x"), []);
  }],
  ["setAdd() and setRemove() are idempotent and return the sorted items", async (ctx) => {
    const { ops, key } = ctx;
    assert.deepEqual(await ops.setAdd(key("s"), "shopping"), ["shopping"]);
    assert.deepEqual(await ops.setAdd(key("s"), "running"), ["running", "shopping"]);
    assert.deepEqual(await ops.setAdd(key("s"), "running"), ["running", "shopping"]);
    assert.deepEqual(await ops.setGet(key("s")), ["running", "shopping"]);
    assert.deepEqual(await ops.setRemove(key("s"), "running"), ["shopping"]);
    assert.deepEqual(await ops.setRemove(key("s"), "running"), ["shopping"]);
    assert.deepEqual(await ops.setRemove(key("s"), "shopping"), []);
    assert.deepEqual(await ops.setGet(key("s")), []);
  }],
  ["set items sort by UTF-16 code units on every target", async ({ ops, key }) => {
    const items = ["b", "B", "a", "é", "😀", "\uff5e", "10", "9", " space", "ключ"];
    for (const item of items) await ops.setAdd(key("order"), item);
    assert.deepEqual(await ops.setGet(key("order")), [...items].sort());
  }],
  ["setAdd() and setRemove() refuse an empty item", async ({ ops, key }) => {
    await rejects(ops.setAdd(key("s"), ""), InvalidArgumentError);
    await rejects(ops.setRemove(key("s"), ""), InvalidArgumentError);
    assert.deepEqual(await ops.setGet(key("s")), []);
  }],
  ["the same key names five different things in the five services", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("shared");
    await ops.cacheSet(k, "cache", 60);
    await ops.counterIncrement(k, 3);
    await ops.flagSet(k, true);
    await ops.kvPut(k, "kv");
    await ops.setAdd(k, "set");
    assert.equal(await ops.cacheGet(k), "cache");
    assert.equal(await ops.counterGet(k), 3n);
    assert.equal(await ops.flagGet(k), true);
    assert.equal(text(await ops.kvGet(k)), "kv");
    assert.deepEqual(await ops.setGet(k), ["set"]);
    await ops.kvDelete(k);
    assert.equal(await ops.cacheGet(k), "cache");
    assert.deepEqual(await ops.setGet(k), ["set"]);
  }],
  ["unicode and odd keys work in every service", async (ctx) => {
    const odd = [
      "ключ",
      "键🔑",
      "a/b/../c",
      "with space",
      "q?x=1&y=2#frag",
      "100%",
      "%2F",
      ".",
      "..",
      "tab\tnew\nline",
      "nul\u0000byte",
      "+plus+",
    ];
    for (const name of odd) {
      const k = ctx.key(name);
      await ctx.ops.cacheSet(k, `c:${name}`, 60);
      await ctx.ops.counterIncrement(k, 2);
      await ctx.ops.flagSet(k, true);
      await ctx.ops.kvPut(k, `kv:${name}`);
      await ctx.ops.setAdd(k, name);
      assert.equal(await ctx.ops.cacheGet(k), `c:${name}`, `cache ${JSON.stringify(name)}`);
      assert.equal(await ctx.ops.counterGet(k), 2n, `counter ${JSON.stringify(name)}`);
      assert.equal(await ctx.ops.flagGet(k), true, `flag ${JSON.stringify(name)}`);
      assert.equal(text(await ctx.ops.kvGet(k)), `kv:${name}`, `kv ${JSON.stringify(name)}`);
      assert.deepEqual(await ctx.ops.setGet(k), [name], `set ${JSON.stringify(name)}`);
    }
  }],
  ["keys up to the key limit work; longer ones and lone surrogates are refused", async (ctx) => {
    const { ops } = ctx;
    const prefix = ctx.key("");
    const exact = prefix + "é".repeat((SUITE_LIMITS.maxKeyBytes - prefix.length) >> 1);
    const fits = exact +
      "x".repeat(SUITE_LIMITS.maxKeyBytes - new TextEncoder().encode(exact).length);
    assert.equal(new TextEncoder().encode(fits).length, SUITE_LIMITS.maxKeyBytes);
    await ops.kvPut(fits, "ok");
    assert.equal(text(await ops.kvGet(fits)), "ok");
    await ops.setAdd(fits, "i".repeat(SUITE_LIMITS.maxItemBytes));
    assert.deepEqual(await ops.setGet(fits), ["i".repeat(SUITE_LIMITS.maxItemBytes)]);
    await rejects(ops.kvPut(fits + "x", "no"), InvalidArgumentError);
    await rejects(ops.counterIncrement(fits + "x", 1), InvalidArgumentError);
    await rejects(
      ops.setAdd(fits, "i".repeat(SUITE_LIMITS.maxItemBytes + 1)),
      InvalidArgumentError,
    );
    await rejects(ops.kvPut(ctx.key("lone\ud800"), "no"), InvalidArgumentError);
    await rejects(ops.setAdd(ctx.key("s"), "lone\udc00"), InvalidArgumentError);
  }],
  ["500 concurrent counterIncrement() calls each see a distinct result and end at 500", async (
    ctx,
  ) => {
    const k = ctx.key("race");
    const results = await Promise.all(
      Array.from({ length: 500 }, () => ctx.ops.counterIncrement(k, 1)),
    );
    assert.equal(await ctx.ops.counterGet(k), 500n);
    const sorted = results.map(Number).sort((a, b) => a - b);
    assert.deepEqual(sorted, Array.from({ length: 500 }, (_, i) => i + 1));
  }],
  ["300 concurrent setAdd() calls lose no item", async (ctx) => {
    const k = ctx.key("race-set");
    const items = Array.from({ length: 300 }, (_, i) => `item-${i}`);
    const results = await Promise.all(items.map((item) => ctx.ops.setAdd(k, item)));
    results.forEach((result, i) => assert.ok(result.includes(items[i])));
    assert.deepEqual(await ctx.ops.setGet(k), [...items].sort());
    await Promise.all(items.slice(0, 100).map((item) => ctx.ops.setRemove(k, item)));
    assert.deepEqual(await ctx.ops.setGet(k), items.slice(100).sort());
  }],
  ["concurrent writers of different kinds do not disturb each other", async (ctx) => {
    const k = ctx.key("mixed");
    await Promise.all(Array.from({ length: 50 }, (_, i) =>
      Promise.all([
        ctx.ops.counterIncrement(k, -2),
        ctx.ops.kvPut(`${k}:${i}`, `value ${i}`),
        ctx.ops.cacheSet(`${k}:${i}`, `cached ${i}`, 60),
        ctx.ops.flagSet(`${k}:${i}`, i % 2 === 0),
      ])));
    assert.equal(await ctx.ops.counterGet(k), -100n);
    for (let i = 0; i < 50; i += 7) {
      assert.equal(text(await ctx.ops.kvGet(`${k}:${i}`)), `value ${i}`);
      assert.equal(await ctx.ops.cacheGet(`${k}:${i}`), `cached ${i}`);
      assert.equal(await ctx.ops.flagGet(`${k}:${i}`), i % 2 === 0);
    }
  }],
  ["data is still there after the store is closed and reopened", async (ctx) => {
    if (!ctx.reopen) return; // Only targets that promise persistence define reopen.
    const k = ctx.key("durable");
    const big = new Uint8Array(200_000).map((_, i) => i % 251);
    await ctx.ops.cacheSet(k, "cached", 600);
    await ctx.ops.counterIncrement(k, 9007199254740993n);
    await ctx.ops.flagSet(k, true);
    await ctx.ops.kvPut(k, big);
    await ctx.ops.setAdd(k, "kept");
    await ctx.reopen();
    assert.equal(await ctx.ops.cacheGet(k), "cached");
    assert.equal(await ctx.ops.counterGet(k), 9007199254740993n);
    assert.equal(await ctx.ops.flagGet(k), true);
    assert.deepEqual(await ctx.ops.kvGet(k), big);
    assert.deepEqual(await ctx.ops.setGet(k), ["kept"]);
  }],
];

/**
 * Registers the whole suite as one `Deno.test` named `conformance: <target>`, one step per
 * behaviour, against a target opened once.
 *
 * @param target The target's name, such as `memory` or `http → redis`.
 * @param open Opens the target with the default limits.
 * @param options `ignore` skips the target (say why loudly before calling).
 */
export function conformance(
  target: string,
  open: () => Promise<Subject>,
  options: { ignore?: boolean } = {},
): void {
  Deno.test({
    name: `conformance: ${target}`,
    ignore: options.ignore,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      const subject = await open();
      let ops = subject.ops;
      const run = crypto.randomUUID().slice(0, 8);
      try {
        for (
          const [index, [name, body]] of [...ORIGINAL_CASES, ...DATA_API_CASES, ...WATCH_CASES]
            .entries()
        ) {
          const prefix = `${run}:${String(index).padStart(3, "0")}:${name.slice(0, 24)}:`;
          const ctx: Context = {
            get ops() {
              return ops;
            },
            key: (k) => prefix + k,
            listing: subject.listing,
            reopen: subject.reopen && (async () => {
              ops = await subject.reopen!();
            }),
          };
          await t.step(name, () => body(ctx));
        }
      } finally {
        await subject.close();
      }
    },
  });
}

/** A client connected to a server that serves some operations. */
export interface Served {
  /** The client under test. */
  client: Operations;
  /** Closes the client and shuts the server down (not the backend). */
  stop: () => Promise<void>;
}

/**
 * Registers the suite through one transport against each backend: `<transport> → memory`,
 * `→ disk` and `→ redis`. For disk and redis, `reopen` restarts the server and the backend on the
 * same store; redis gets its own `redis-server`.
 *
 * @param transport The transport's name, such as `http`.
 * @param serve Serves `ops` and returns a client connected to it.
 */
export function conformanceThrough(
  transport: string,
  serve: (ops: Operations) => Promise<Served>,
): void {
  async function restartable(
    open: () => Promise<Operations>,
    cleanup: () => Promise<void>,
    listing: ListingKind,
  ) {
    let ops = await open();
    let served = await serve(ops);
    const stop = async () => {
      await served.stop();
      await ops.close();
    };
    return {
      ops: served.client,
      listing,
      reopen: async () => {
        await stop();
        ops = await open();
        served = await serve(ops);
        return served.client;
      },
      close: async () => {
        await stop();
        await cleanup();
      },
    };
  }

  conformance(`${transport} → memory`, async () => {
    const ops = await openBackend({ kind: "memory" });
    const served = await serve(ops);
    return {
      ops: served.client,
      listing: "sorted",
      close: async () => {
        await served.stop();
        await ops.close();
      },
    };
  });
  conformance(`${transport} → disk`, async () => {
    const dataDir = await Deno.makeTempDir({ prefix: `purple-${transport}-disk-` });
    return await restartable(
      () => openBackend({ kind: "disk", dataDir }),
      () => Deno.remove(dataDir, { recursive: true }),
      "sorted",
    );
  });
  if (REDIS_MISSING !== undefined) {
    console.error(`!!! SKIPPING ${transport} → redis: ${REDIS_MISSING} !!!`);
  }
  conformance(`${transport} → redis`, async () => {
    const redis = await startRedis();
    return await restartable(
      () => openBackend({ kind: "redis", redisUrl: redis.url }),
      () => redis.stop(),
      "scanned",
    );
  }, { ignore: REDIS_MISSING !== undefined });
}
