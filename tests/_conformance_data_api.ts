/**
 * The conformance cases of the data API v2 (issue 11): deletes for every service, listings,
 * KV versions with compare-and-set, batches. Run by `conformance.ts` after the original
 * operations' cases, against every target.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type KeyPage, type KeyService, keysOf, type Operations } from "@purple/client";
import {
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
  ValueTooLargeError,
} from "@purple/client/errors";
import { type Case, type Context, rejects, sleep, text } from "./_conformance_kit.ts";

const INT64_MAX = 2n ** 63n - 1n;

/** One service, seen from the tests: how to make a key exist, remove it, read it, list it. */
interface ServiceUnderTest {
  name: KeyService;
  /** Makes `key` exist. */
  write(ops: Operations, key: string): Promise<unknown>;
  /** The service's delete. */
  remove(ops: Operations, key: string): Promise<void>;
  /** Asserts that `key` reads as absent (each service has its own way of saying so). */
  assertAbsent(ops: Operations, key: string): Promise<void>;
  /** The service's listing. */
  list(ops: Operations, options?: { prefix?: string; limit?: number; cursor?: string }): Promise<
    KeyPage
  >;
}

const SERVICES: ServiceUnderTest[] = [
  {
    name: "cache",
    write: (ops, key) => ops.cacheSet(key, "cached", 600),
    remove: (ops, key) => ops.cacheDelete(key),
    assertAbsent: (ops, key) => rejects(ops.cacheGet(key), NotFoundError).then(() => {}),
    list: (ops, options) => ops.cacheList(options),
  },
  {
    name: "counters",
    write: (ops, key) => ops.counterIncrement(key, 7),
    remove: (ops, key) => ops.counterDelete(key),
    assertAbsent: async (ops, key) => assert.equal(await ops.counterGet(key), 0n),
    list: (ops, options) => ops.counterList(options),
  },
  {
    name: "flags",
    write: (ops, key) => ops.flagSet(key, true),
    remove: (ops, key) => ops.flagDelete(key),
    assertAbsent: async (ops, key) => assert.equal(await ops.flagGet(key), false),
    list: (ops, options) => ops.flagList(options),
  },
  {
    name: "kv",
    write: (ops, key) => ops.kvPut(key, "value"),
    remove: (ops, key) => ops.kvDelete(key),
    assertAbsent: (ops, key) => rejects(ops.kvGet(key), NotFoundError).then(() => {}),
    list: (ops, options) => ops.kvList(options),
  },
  {
    name: "sets",
    write: (ops, key) => ops.setAdd(key, "item"),
    remove: (ops, key) => ops.setDelete(key),
    assertAbsent: async (ops, key) => assert.deepEqual(await ops.setGet(key), []),
    list: (ops, options) => ops.setList(options),
  },
];

/** Every key a listing gives, page after page (`limit` keys a page), repeats kept. */
async function listAll(
  service: ServiceUnderTest,
  ops: Operations,
  prefix: string,
  limit: number,
): Promise<{ keys: string[]; pages: KeyPage[] }> {
  const keys: string[] = [];
  const pages: KeyPage[] = [];
  let cursor: string | undefined;
  do {
    const page = await service.list(
      ops,
      cursor === undefined ? { prefix, limit } : {
        prefix,
        limit,
        cursor,
      },
    );
    assert.ok(page.keys.length <= limit, `${page.keys.length} keys in a page of ${limit}`);
    pages.push(page);
    keys.push(...page.keys);
    cursor = page.cursor;
    assert.ok(pages.length < 10_000, "the listing does not end");
  } while (cursor !== undefined);
  return { keys, pages };
}

/** Asserts what a listing gave, as the target promises it: sorted and once, or at least once. */
function assertListed(ctx: Context, listed: string[], expected: string[], what: string): void {
  const sorted = [...expected].sort(byUtf8);
  if (ctx.listing === "sorted") {
    assert.deepEqual(listed, sorted, `${what}: in key order, each once`);
  } else {
    assert.deepEqual([...new Set(listed)].sort(byUtf8), sorted, `${what}: each at least once`);
  }
}

/** Compares strings as their UTF-8 bytes compare (the same as UTF-16 for these tests' keys). */
function byUtf8(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Every key of `service` under `prefix`, each once, sorted (page after page). */
async function listed(ops: Operations, service: KeyService, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of keysOf(ops, service, { prefix })) keys.push(key);
  return keys.sort(byUtf8);
}

/** `n` zero-padded to three digits. */
const three = (n: number) => String(n).padStart(3, "0");

export const DATA_API_CASES: Case[] = [
  // Deletes: one rule on every service.
  ["every service deletes a key; deleting an absent key is NotFoundError", async (ctx) => {
    const { ops } = ctx;
    for (const service of SERVICES) {
      const k = ctx.key(`${service.name}:d`);
      await service.write(ops, k);
      await service.remove(ops, k);
      await service.assertAbsent(ops, k);
      await rejects(service.remove(ops, k), NotFoundError);
      await rejects(service.remove(ops, ctx.key(`${service.name}:never`)), NotFoundError);
      const { keys } = await listAll(service, ops, ctx.key(`${service.name}:`), 100);
      assert.deepEqual(keys, [], `${service.name}: the deleted key is not listed`);
    }
  }],
  ["a delete in one service leaves the same key of the other services", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("shared");
    for (const service of SERVICES) await service.write(ops, k);
    await ops.counterDelete(k);
    assert.equal(await ops.counterGet(k), 0n);
    assert.equal(await ops.cacheGet(k), "cached");
    assert.equal(await ops.flagGet(k), true);
    assert.equal(text(await ops.kvGet(k)), "value");
    assert.deepEqual(await ops.setGet(k), ["item"]);
    await ops.setDelete(k);
    await ops.flagDelete(k);
    assert.equal(await ops.cacheGet(k), "cached");
    assert.equal(text(await ops.kvGet(k)), "value");
  }],
  ["counterDelete(): the counter starts again from 0; an increment by 0 creates it", async (
    ctx,
  ) => {
    const { ops } = ctx;
    const k = ctx.key("c");
    assert.equal(await ops.counterIncrement(k, 41), 41n);
    await ops.counterDelete(k);
    assert.equal(await ops.counterIncrement(k, 2), 2n);
    const zero = ctx.key("zero");
    assert.equal(await ops.counterIncrement(zero, 0), 0n);
    assert.deepEqual(await listed(ops, "counters", zero), [zero]);
    await ops.counterDelete(zero);
    await rejects(ops.counterDelete(zero), NotFoundError);
  }],
  ["flagDelete(): a flag set to false exists until deleted", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("f");
    await ops.flagSet(k, false);
    assert.deepEqual(await listed(ops, "flags", k), [k]);
    await ops.flagDelete(k);
    assert.equal(await ops.flagGet(k), false);
    assert.deepEqual(await listed(ops, "flags", k), []);
    await rejects(ops.flagDelete(k), NotFoundError);
  }],
  ["setDelete() removes the whole set; a set emptied by setRemove() is gone", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("s");
    for (const item of ["a", "b", "c"]) await ops.setAdd(k, item);
    assert.deepEqual(await ops.setRemove(k, "b"), ["a", "c"]);
    await ops.setDelete(k);
    assert.deepEqual(await ops.setGet(k), []);
    assert.deepEqual(await ops.setAdd(k, "z"), ["z"]);
    assert.deepEqual(await ops.setRemove(k, "z"), []);
    await rejects(ops.setDelete(k), NotFoundError);
    assert.deepEqual(await listed(ops, "sets", k), []);
  }],
  ["an expired cache entry is neither deleted nor listed", async (ctx) => {
    const { ops } = ctx;
    const prefix = ctx.key("");
    await ops.cacheSet(ctx.key("brief"), "v", 1);
    await ops.cacheSet(ctx.key("lasting"), "v", 600);
    assertListed(
      ctx,
      (await listAll(SERVICES[0], ops, prefix, 10)).keys,
      [ctx.key("brief"), ctx.key("lasting")],
      "before expiry",
    );
    await sleep(1100);
    assertListed(
      ctx,
      (await listAll(SERVICES[0], ops, prefix, 10)).keys,
      [ctx.key("lasting")],
      "after expiry",
    );
    await rejects(ops.cacheDelete(ctx.key("brief")), NotFoundError);
    await ops.cacheDelete(ctx.key("lasting"));
  }],

  // Listings.
  ["every service lists its keys by prefix, a page at a time", async (ctx) => {
    const { ops } = ctx;
    for (const service of SERVICES) {
      const prefix = ctx.key(`${service.name}:page:`);
      const inside = Array.from({ length: 23 }, (_, i) => `${prefix}${three(i)}`);
      const outside = [ctx.key(`${service.name}:page`), ctx.key(`${service.name}:pagf:0`)];
      await Promise.all([...inside, ...outside].map((k) => service.write(ops, k)));
      const { keys, pages } = await listAll(service, ops, prefix, 5);
      assertListed(ctx, keys, inside, service.name);
      if (ctx.listing === "sorted") {
        assert.deepEqual(pages.map((page) => page.keys.length), [5, 5, 5, 5, 3]);
      }
      const every = await listAll(service, ops, ctx.key(`${service.name}:`), 1000);
      assertListed(ctx, every.keys, [...inside, ...outside], `${service.name}, one page`);
    }
  }],
  ["a listing gives 100 keys by default and at most 1000", async (ctx) => {
    const { ops } = ctx;
    const prefix = ctx.key("");
    await Promise.all(
      Array.from({ length: 1001 }, (_, i) => ops.counterIncrement(`${prefix}${i}`, 1)),
    );
    let first = await ops.counterList({ prefix });
    if (ctx.listing === "sorted") assert.equal(first.keys.length, 100);
    assert.ok(first.keys.length <= 100 && first.cursor !== undefined);
    first = await ops.counterList({ prefix, limit: 1000 });
    if (ctx.listing === "sorted") assert.equal(first.keys.length, 1000);
    assert.ok(first.keys.length <= 1000 && first.cursor !== undefined);
    for (const limit of [0, -1, 1001, 1.5, Number.NaN]) {
      await rejects(ops.counterList({ prefix, limit }), InvalidArgumentError);
    }
  }],
  ["a cursor that a listing did not give is InvalidArgumentError", async (ctx) => {
    const { ops } = ctx;
    await ops.kvPut(ctx.key("a"), "v");
    for (const cursor of ["not a cursor", "eyJ4IjoxfQ", "%%%", "0"]) {
      await rejects(ops.kvList({ prefix: ctx.key(""), cursor }), InvalidArgumentError);
    }
    const { cursor } = await ops.kvList({ prefix: ctx.key(""), limit: 1 });
    if (cursor !== undefined) await ops.kvList({ prefix: ctx.key(""), limit: 1, cursor });
  }],
  ["a prefix is taken literally: glob characters, unicode, no prefix at all", async (ctx) => {
    const { ops } = ctx;
    const p = ctx.key("");
    const names = ["a*b", "a?c", "a[x]", "a]y", "a\\d", "axb", "a^e", "ключ:1", "ключ2"];
    await Promise.all(names.map((name) => ops.kvPut(p + name, name)));
    const cases: [string, string[]][] = [
      ["a*", ["a*b"]],
      ["a?", ["a?c"]],
      ["a[", ["a[x]"]],
      ["a]", ["a]y"]],
      ["a\\", ["a\\d"]],
      ["a^", ["a^e"]],
      ["ключ", ["ключ2", "ключ:1"]],
      ["ключ:", ["ключ:1"]],
      ["nothing here", []],
    ];
    for (const [prefix, expected] of cases) {
      const { keys } = await listAll(SERVICES[3], ops, p + prefix, 3);
      assertListed(ctx, keys, expected.map((name) => p + name), `prefix ${JSON.stringify(prefix)}`);
    }
    const everything = new Set<string>();
    for await (const key of keysOf(ops, "kv", { limit: 1000 })) everything.add(key);
    for (const name of names) assert.ok(everything.has(p + name), `${name} without a prefix`);
  }],
  ["an empty listing is one page without a cursor", async (ctx) => {
    for (const service of SERVICES) {
      const { keys, pages } = await listAll(service, ctx.ops, ctx.key("none"), 10);
      assert.deepEqual(keys, []);
      if (ctx.listing === "sorted") assert.deepEqual(pages, [{ keys: [] }]);
    }
  }],
  ["keysOf() gives every key of a service once, page after page", async (ctx) => {
    const { ops } = ctx;
    const prefix = ctx.key("");
    const names = Array.from({ length: 12 }, (_, i) => `${prefix}${three(i)}`);
    await Promise.all(names.map((name) => ops.setAdd(name, "i")));
    const keys: string[] = [];
    for await (const key of keysOf(ops, "sets", { prefix, limit: 5 })) keys.push(key);
    assert.equal(new Set(keys).size, keys.length, "each key once");
    assertListed(ctx, keys, names, "keysOf");
  }],
  ["listings under concurrent writes give every key present throughout", async (ctx) => {
    const { ops } = ctx;
    for (const service of SERVICES) {
      const prefix = ctx.key(`${service.name}:`);
      const stable = Array.from({ length: 30 }, (_, i) => `${prefix}${three(2 * i)}`);
      const churn = Array.from({ length: 30 }, (_, i) => `${prefix}${three(2 * i + 1)}`);
      await Promise.all(stable.map((k) => service.write(ops, k)));
      let listing = true;
      let churned = 0;
      const writer = (async () => {
        while (listing) {
          for (const k of churn) {
            await service.write(ops, k);
            churned++;
            if (!listing) break;
            await service.remove(ops, k);
          }
        }
      })();
      const listed: string[] = [];
      try {
        for (let round = 0; round < 3; round++) {
          const { keys } = await listAll(service, ops, prefix, 4);
          listed.push(...keys);
          const once = keys.filter((k) => stable.includes(k));
          if (ctx.listing === "sorted") {
            assert.deepEqual(once, stable, `${service.name}: every stable key once, in order`);
            for (let i = 1; i < keys.length; i++) {
              assert.ok(keys[i - 1] < keys[i], `${service.name}: in order, no repeat`);
            }
          } else {
            assert.deepEqual([...new Set(once)].sort(), stable, `${service.name}: at least once`);
          }
        }
      } finally {
        listing = false;
        await writer;
      }
      assert.ok(churned > 0, `${service.name}: the writer ran during the listing`);
      for (const k of listed) assert.ok(k.startsWith(prefix));
    }
  }],

  // Versions and compare-and-set on KV.
  ["kvGetEntry() gives the value and a version that changes with it", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("v");
    await rejects(ops.kvGetEntry(k), NotFoundError);
    await ops.kvPut(k, "one");
    const first = await ops.kvGetEntry(k);
    assert.equal(text(first.value), "one");
    assert.equal(typeof first.version, "string");
    assert.ok(first.version.length > 0);
    assert.deepEqual(await ops.kvGetEntry(k), first, "reading does not change the version");
    await ops.kvPut(k, "two");
    const second = await ops.kvGetEntry(k);
    assert.equal(text(second.value), "two");
    assert.notEqual(second.version, first.version);
    assert.equal(text(await ops.kvGet(k)), "two");
  }],
  ["kvPut() with ifMatch writes only over that version", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("v");
    await ops.kvPut(k, "one");
    const { version } = await ops.kvGetEntry(k);
    await ops.kvPut(k, "two", { ifMatch: version });
    const error = await rejects(
      ops.kvPut(k, "three", { ifMatch: version }),
      PreconditionFailedError,
    );
    assert.match(error.message, /version/);
    assert.equal(text(await ops.kvGet(k)), "two");
    await ops.kvPut(k, "four", { ifMatch: "*" });
    assert.equal(text(await ops.kvGet(k)), "four");
    await rejects(ops.kvPut(ctx.key("absent"), "x", { ifMatch: "*" }), PreconditionFailedError);
    await rejects(ops.kvPut(ctx.key("absent"), "x", { ifMatch: version }), PreconditionFailedError);
    await rejects(ops.kvGet(ctx.key("absent")), NotFoundError);
  }],
  ["kvPut() with ifNoneMatch only creates", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("new");
    await ops.kvPut(k, "first", { ifNoneMatch: "*" });
    await rejects(ops.kvPut(k, "second", { ifNoneMatch: "*" }), PreconditionFailedError);
    assert.equal(text(await ops.kvGet(k)), "first");
    await ops.kvDelete(k);
    await ops.kvPut(k, "again", { ifNoneMatch: "*" });
    assert.equal(text(await ops.kvGet(k)), "again");
  }],
  ["kvDelete() with ifMatch deletes only that version", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("d");
    await ops.kvPut(k, "one");
    const { version: old } = await ops.kvGetEntry(k);
    await ops.kvPut(k, "two");
    await rejects(ops.kvDelete(k, { ifMatch: old }), PreconditionFailedError);
    assert.equal(text(await ops.kvGet(k)), "two");
    const { version } = await ops.kvGetEntry(k);
    await ops.kvDelete(k, { ifMatch: version });
    await rejects(ops.kvGet(k), NotFoundError);
    await rejects(ops.kvDelete(k, { ifMatch: version }), PreconditionFailedError);
    await rejects(ops.kvDelete(k), NotFoundError);
  }],
  ["a large value has a version and takes conditional writes", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("big");
    const big = new Uint8Array(700_000).map((_, i) => i % 253);
    await ops.kvPut(k, big, { ifNoneMatch: "*" });
    const entry = await ops.kvGetEntry(k);
    assert.deepEqual(entry.value, big);
    const bigger = new Uint8Array(900_000).map((_, i) => i % 241);
    await ops.kvPut(k, bigger, { ifMatch: entry.version });
    await rejects(ops.kvPut(k, big, { ifMatch: entry.version }), PreconditionFailedError);
    assert.deepEqual(await ops.kvGet(k), bigger);
    await ops.kvDelete(k, { ifMatch: (await ops.kvGetEntry(k)).version });
    await rejects(ops.kvGet(k), NotFoundError);
  }],
  ["64 concurrent read-modify-write loops with compare-and-set lose no update", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("rmw");
    const loops = 64;
    const each = 3;
    await ops.kvPut(k, "0");
    let conflicts = 0;
    await Promise.all(Array.from({ length: loops }, async () => {
      for (let done = 0; done < each;) {
        const { value, version } = await ops.kvGetEntry(k);
        try {
          await ops.kvPut(k, String(Number(text(value)) + 1), { ifMatch: version });
          done++;
        } catch (error) {
          if (!(error instanceof PreconditionFailedError)) throw error;
          conflicts++;
        }
      }
    }));
    assert.equal(text(await ops.kvGet(k)), String(loops * each));
    assert.ok(conflicts > 0, "the loops did contend");
  }],

  // Batches.
  ["batch() runs in order; an operation that fails does not stop the others", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("b");
    const outcomes = await ops.batch([
      { op: "counterIncrement", args: [k, 2] },
      { op: "kvGet", args: [k] },
      { op: "kvPut", args: [k, "v"] },
      { op: "kvGet", args: [k] },
      { op: "kvGetEntry", args: [k] },
      { op: "counterGet", args: [k] },
      { op: "flagSet", args: [k, true] },
      { op: "flagGet", args: [k] },
      { op: "setAdd", args: [k, "x"] },
      { op: "cacheSet", args: [k, "c", 60] },
      { op: "cacheGet", args: [k] },
      { op: "setAdd", args: [k, ""] },
      { op: "kvDelete", args: [k] },
      { op: "setGet", args: [k] },
    ]);
    assert.equal(outcomes.length, 14);
    assert.deepEqual(outcomes[0], { ok: true, value: 2n });
    assert.ok(!outcomes[1].ok && outcomes[1].error instanceof NotFoundError);
    assert.equal(outcomes[1].error.code, "NOT_FOUND");
    assert.deepEqual(outcomes[2], { ok: true, value: undefined });
    assert.ok(outcomes[3].ok);
    const fromBatch: Uint8Array = outcomes[3].value;
    assert.equal(text(fromBatch), "v");
    assert.ok(outcomes[4].ok && text(outcomes[4].value.value) === "v");
    assert.equal(outcomes[4].value.version.length > 0, true);
    assert.deepEqual(outcomes[5], { ok: true, value: 2n });
    assert.deepEqual(outcomes[6], { ok: true, value: undefined });
    assert.deepEqual(outcomes[7], { ok: true, value: true });
    assert.deepEqual(outcomes[8], { ok: true, value: ["x"] });
    assert.deepEqual(outcomes[9], { ok: true, value: undefined });
    assert.deepEqual(outcomes[10], { ok: true, value: "c" });
    assert.ok(!outcomes[11].ok && outcomes[11].error instanceof InvalidArgumentError);
    assert.deepEqual(outcomes[12], { ok: true, value: undefined });
    assert.deepEqual(outcomes[13], { ok: true, value: ["x"] });
    await rejects(ops.kvGet(k), NotFoundError);
    assert.deepEqual(await ops.batch([]), []);
  }],
  ["batch() keeps the order of the operations on one key", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("order");
    const increments = await ops.batch(
      Array.from(
        { length: 20 },
        () => ({ op: "counterIncrement" as const, args: [k, 1] as const }),
      ),
    );
    assert.deepEqual(
      increments.map((outcome) => outcome.ok && outcome.value),
      Array.from({ length: 20 }, (_, i) => BigInt(i + 1)),
    );
    const puts = await ops.batch([
      { op: "kvPut", args: [k, "a"] },
      { op: "kvPut", args: [k, "b"] },
      { op: "kvDelete", args: [k] },
      { op: "kvPut", args: [k, "c"] },
      { op: "setAdd", args: [k, "1"] },
      { op: "setRemove", args: [k, "1"] },
      { op: "setAdd", args: [k, "2"] },
    ]);
    assert.ok(puts.every((outcome) => outcome.ok));
    assert.equal(text(await ops.kvGet(k)), "c");
    assert.deepEqual(await ops.setGet(k), ["2"]);
  }],
  // The keys of one atomic batch share a Redis Cluster hash tag (the text before the first
  // `}`), as a cluster needs (one atomic step cannot span slots); elsewhere it is only a name.
  ["an atomic batch() writes across services and reads what it wrote", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("tx}t");
    await ops.kvPut(k, "old");
    const { version } = await ops.kvGetEntry(k);
    const outcomes = await ops.batch([
      { op: "kvPut", args: [k, "new", { ifMatch: version }] },
      { op: "kvPut", args: [ctx.key("tx}created"), "yes", { ifNoneMatch: "*" }] },
      { op: "counterIncrement", args: [k, 5] },
      { op: "counterIncrement", args: [k, 5] },
      { op: "setAdd", args: [k, "member"] },
      { op: "flagSet", args: [k, true] },
      { op: "cacheSet", args: [k, "cached", 60] },
      { op: "kvGet", args: [k] },
      { op: "counterGet", args: [k] },
    ], { atomic: true });
    assert.deepEqual(outcomes.map((outcome) => outcome.ok), Array(9).fill(true));
    assert.ok(outcomes[3].ok && outcomes[3].value === 10n);
    assert.ok(outcomes[7].ok && text(outcomes[7].value) === "new");
    assert.ok(outcomes[8].ok && outcomes[8].value === 10n);
    assert.equal(text(await ops.kvGet(k)), "new");
    assert.equal(text(await ops.kvGet(ctx.key("tx}created"))), "yes");
    assert.equal(await ops.counterGet(k), 10n);
    assert.deepEqual(await ops.setGet(k), ["member"]);
    assert.equal(await ops.flagGet(k), true);
    assert.equal(await ops.cacheGet(k), "cached");
  }],
  ["an atomic batch() with a stale version changes nothing", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("tx}t");
    await ops.kvPut(k, "one");
    const { version } = await ops.kvGetEntry(k);
    await ops.kvPut(k, "two");
    const error = await rejects(
      ops.batch([
        { op: "counterIncrement", args: [k, 1] },
        { op: "setAdd", args: [k, "no"] },
        { op: "kvPut", args: [ctx.key("tx}other"), "no"] },
        { op: "kvPut", args: [k, "three", { ifMatch: version }] },
        { op: "flagSet", args: [k, true] },
      ], { atomic: true }),
      PreconditionFailedError,
    );
    assert.match(error.message, /operation 3/);
    assert.equal(await ops.counterGet(k), 0n);
    assert.deepEqual(await ops.setGet(k), []);
    await rejects(ops.kvGet(ctx.key("tx}other")), NotFoundError);
    assert.equal(text(await ops.kvGet(k)), "two");
    assert.equal(await ops.flagGet(k), false);
  }],
  ["an atomic batch() in which any operation fails changes nothing", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("tx}t");
    await ops.counterIncrement(k, INT64_MAX - 1n);
    const failing: [Parameters<Operations["batch"]>[0], typeof InvalidArgumentError][] = [
      [
        [{ op: "kvPut", args: [k, "x"] }, { op: "kvDelete", args: [ctx.key("tx}absent")] }],
        NotFoundError,
      ],
      [
        [{ op: "kvPut", args: [k, "x"] }, { op: "counterIncrement", args: [k, 2] }],
        InvalidArgumentError,
      ],
      [[{ op: "kvPut", args: [k, "x"] }, { op: "counterIncrement", args: [k, 1] }, {
        op: "counterIncrement",
        args: [k, 1],
      }], InvalidArgumentError],
      [[{ op: "kvPut", args: [k, "x"] }, { op: "setAdd", args: [k, ""] }], InvalidArgumentError],
      [[{ op: "kvPut", args: [k, "x"] }, { op: "cacheDelete", args: [k] }], NotFoundError],
      [
        [{ op: "kvPut", args: [k, "x"] }, { op: "kvPut", args: [k, "y", { ifNoneMatch: "*" }] }],
        PreconditionFailedError,
      ],
    ];
    for (const [operations, kind] of failing) {
      await rejects(ops.batch(operations, { atomic: true }), kind);
      await rejects(ops.kvGet(k), NotFoundError);
      assert.equal(await ops.counterGet(k), INT64_MAX - 1n);
    }
  }],
  ["an atomic batch() sees its own writes in its conditions", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("tx}t");
    const outcomes = await ops.batch([
      { op: "kvPut", args: [k, "1", { ifNoneMatch: "*" }] },
      { op: "kvPut", args: [k, "2", { ifMatch: "*" }] },
      { op: "kvDelete", args: [k, { ifMatch: "*" }] },
      { op: "kvPut", args: [k, "3", { ifNoneMatch: "*" }] },
      { op: "setAdd", args: [k, "a"] },
      { op: "setDelete", args: [k] },
      { op: "setAdd", args: [k, "b"] },
    ], { atomic: true });
    assert.ok(outcomes.every((outcome) => outcome.ok));
    assert.equal(text(await ops.kvGet(k)), "3");
    assert.deepEqual(await ops.setGet(k), ["b"]);
  }],
  ["an atomic batch() of large values is written whole or not at all", async (ctx) => {
    const { ops } = ctx;
    const a = ctx.key("tx}a");
    const b = ctx.key("tx}b");
    const first = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
    const second = new Uint8Array(1024 * 1024).map((_, i) => (i * 7) % 256);
    await ops.kvPut(b, "small");
    const { version } = await ops.kvGetEntry(b);
    await ops.batch([
      { op: "kvPut", args: [a, first, { ifNoneMatch: "*" }] },
      { op: "kvPut", args: [b, second, { ifMatch: version }] },
      { op: "counterIncrement", args: [a, 1] },
    ], { atomic: true });
    assert.deepEqual(await ops.kvGet(a), first);
    assert.deepEqual(await ops.kvGet(b), second);
    await rejects(
      ops.batch([
        { op: "kvPut", args: [a, second] },
        { op: "kvPut", args: [b, first, { ifMatch: version }] },
      ], { atomic: true }),
      PreconditionFailedError,
    );
    assert.deepEqual(await ops.kvGet(a), first);
    assert.deepEqual(await ops.kvGet(b), second);
    assert.equal(await ops.counterGet(a), 1n);
  }],
  ["an atomic batch() of 1000 operations and one of many keys both apply", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("tx}n");
    const thousand = await ops.batch(
      Array.from(
        { length: 1000 },
        () => ({ op: "counterIncrement" as const, args: [k, 1] as const }),
      ),
      { atomic: true },
    );
    assert.deepEqual(thousand.at(-1), { ok: true, value: 1000n });
    const many = Array.from({ length: 40 }, (_, i) => ctx.key(`tx}many:${three(i)}`));
    await ops.batch(
      many.flatMap((key) => [
        { op: "kvPut" as const, args: [key, key] as const },
        { op: "setAdd" as const, args: [key, "i"] as const },
      ]),
      { atomic: true },
    );
    for (const key of many) assert.equal(text(await ops.kvGet(key)), key);
    assertListed(
      ctx,
      (await listAll(SERVICES[4], ops, ctx.key("tx}many:"), 1000)).keys,
      many,
      "sets",
    );
  }],
  ["concurrent atomic batches() on the same keys are serialisable", async (ctx) => {
    const { ops } = ctx;
    const a = ctx.key("tx}a");
    const b = ctx.key("tx}b");
    // Each batch moves 1 from a to b; the sum stays 0 and every batch applies.
    await Promise.all(Array.from({ length: 40 }, () =>
      ops.batch([
        { op: "counterIncrement", args: [a, -1] },
        { op: "counterIncrement", args: [b, 1] },
      ], { atomic: true })));
    assert.equal(await ops.counterGet(a), -40n);
    assert.equal(await ops.counterGet(b), 40n);
    // Versioned transfers between two KV balances: none lost, none applied twice.
    await ops.kvPut(a, "100");
    await ops.kvPut(b, "0");
    await Promise.all(Array.from({ length: 16 }, async () => {
      for (let moved = 0; moved < 2;) {
        const [from, to] = [await ops.kvGetEntry(a), await ops.kvGetEntry(b)];
        try {
          await ops.batch([
            {
              op: "kvPut",
              args: [a, String(Number(text(from.value)) - 1), { ifMatch: from.version }],
            },
            { op: "kvPut", args: [b, String(Number(text(to.value)) + 1), { ifMatch: to.version }] },
          ], { atomic: true });
          moved++;
        } catch (error) {
          if (!(error instanceof PreconditionFailedError)) throw error;
        }
      }
    }));
    assert.equal(text(await ops.kvGet(a)), "68");
    assert.equal(text(await ops.kvGet(b)), "32");
  }],
  ["batch() refuses more than 1000 operations, listings and unknown operations", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("x");
    const tooMany = Array.from(
      { length: 1001 },
      () => ({ op: "counterIncrement" as const, args: [k, 1] as const }),
    );
    await rejects(ops.batch(tooMany), ValueTooLargeError);
    await rejects(ops.batch(tooMany, { atomic: true }), ValueTooLargeError);
    const listing = [{ op: "kvList", args: [{}] }] as unknown as Parameters<Operations["batch"]>[0];
    await rejects(ops.batch(listing), InvalidArgumentError);
    const unknown = [{ op: "flush", args: [] }] as unknown as Parameters<Operations["batch"]>[0];
    await rejects(ops.batch(unknown), InvalidArgumentError);
    assert.equal(await ops.counterGet(k), 0n);
  }],
];
