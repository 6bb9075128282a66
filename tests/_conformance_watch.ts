/**
 * The conformance cases of watches: first states, each change in order, deletes, coalescing that
 * keeps the last state, 100 keys, cache expiry, the limits of one watch, and ending a watch.
 * Run against every backend and through both clients by `conformance.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Operations, WatchChange, WatchKeys } from "@purple/client";
import { InvalidArgumentError, ValueTooLargeError } from "@purple/client/errors";
import { type Case, rejects, sleep } from "./_conformance_kit.ts";

/** How long a change may take to arrive (the promise: within a second), with some slack. */
const WITHIN_MS = 3_000;

/**
 * A watch under test: its changes taken one at a time, each within a deadline.
 */
export class Watching {
  #changes: AsyncIterator<WatchChange>;
  /** A step that timed out is still pending: the next call takes its result. */
  #pending: Promise<IteratorResult<WatchChange>> | undefined;

  /** Starts watching `keys` through `ops`. */
  constructor(ops: Operations, keys: WatchKeys, signal?: AbortSignal) {
    this.#changes = ops.watch(keys, { signal })[Symbol.asyncIterator]();
  }

  /** The next change; fails when none comes within `ms`, or the watch ends. */
  async next(ms = WITHIN_MS): Promise<WatchChange> {
    const step = this.#pending ??= this.#changes.next();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), ms));
    try {
      const result = await Promise.race([step, late]);
      if (result === "late") throw new Error(`no change within ${ms} ms`);
      this.#pending = undefined;
      if (result.done) throw new Error("the watch ended");
      return result.value;
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith("no change"))) {
        this.#pending = undefined;
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The next `count` changes. */
  async take(count: number, ms = WITHIN_MS): Promise<WatchChange[]> {
    const changes: WatchChange[] = [];
    while (changes.length < count) changes.push(await this.next(ms));
    return changes;
  }

  /** The changes up to the first that `done` accepts (included). */
  async until(done: (change: WatchChange) => boolean, ms = WITHIN_MS): Promise<WatchChange[]> {
    const changes: WatchChange[] = [];
    for (;;) {
      const change = await this.next(ms);
      changes.push(change);
      if (done(change)) return changes;
    }
  }

  /** Asserts that no change comes within `ms`. */
  async quiet(ms: number): Promise<void> {
    const step = this.#pending ??= this.#changes.next();
    const late = Symbol("late");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = await Promise.race([
      step,
      new Promise<typeof late>((resolve) => timer = setTimeout(() => resolve(late), ms)),
    ]);
    clearTimeout(timer);
    if (result !== late) {
      this.#pending = undefined;
      assert.fail(`expected no change, got ${JSON.stringify(result, bigints)}`);
    }
  }

  /** Ends the watch. */
  async close(): Promise<void> {
    await this.#changes.return?.();
    await this.#pending?.catch(() => {});
  }
}

/** JSON.stringify's replacer for bigints and bytes, for messages. */
function bigints(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  return value;
}

/** Runs `body` with a watch of `keys`, closed afterwards. */
async function watching(
  ops: Operations,
  keys: WatchKeys,
  body: (watch: Watching) => Promise<void>,
): Promise<void> {
  const watch = new Watching(ops, keys);
  try {
    await body(watch);
  } finally {
    await watch.close();
  }
}

const text = (change: WatchChange) => JSON.stringify(change, bigints);
const bytes = (value: string) => new TextEncoder().encode(value);

/** The cases. */
export const WATCH_CASES: Case[] = [
  ["watch() gives the current state of each key first, present or absent", async (ctx) => {
    const { ops } = ctx;
    const [a, b] = [ctx.key("a"), ctx.key("b")];
    await ops.cacheSet(a, "cached", 60);
    await ops.counterIncrement(a, 9007199254740993n);
    await ops.flagSet(a, false);
    await ops.kvPut(a, bytes("v1"));
    await ops.setAdd(a, "x");
    await ops.setAdd(a, "é");
    const version = (await ops.kvGetEntry(a)).version;
    const keys = { cache: [a, b], counters: [a, b], flags: [a, b], kv: [a, b], sets: [a, b] };
    await watching(ops, keys, async (watch) => {
      const changes = await watch.take(10);
      const byTarget = new Map(
        changes.map((change) => [`${change.service} ${change.key}`, change]),
      );
      assert.equal(byTarget.size, 10, "one state for each key");
      const cache = byTarget.get(`cache ${a}`)!;
      assert.ok(cache.service === "cache" && cache.exists, text(cache));
      assert.equal(cache.value, "cached");
      assert.ok(Math.abs(cache.expiresAt - (Date.now() + 60_000)) < 5_000, text(cache));
      assert.deepEqual(byTarget.get(`cache ${b}`), { service: "cache", key: b, exists: false });
      assert.deepEqual(byTarget.get(`counters ${a}`), {
        service: "counters",
        key: a,
        exists: true,
        value: 9007199254740993n,
      });
      assert.deepEqual(byTarget.get(`counters ${b}`), {
        service: "counters",
        key: b,
        exists: false,
        value: 0n,
      });
      assert.deepEqual(byTarget.get(`flags ${a}`), {
        service: "flags",
        key: a,
        exists: true,
        value: false,
      });
      assert.deepEqual(byTarget.get(`flags ${b}`), {
        service: "flags",
        key: b,
        exists: false,
        value: false,
      });
      assert.deepEqual(byTarget.get(`kv ${a}`), {
        service: "kv",
        key: a,
        exists: true,
        value: bytes("v1"),
        version,
      });
      assert.deepEqual(byTarget.get(`kv ${b}`), { service: "kv", key: b, exists: false });
      assert.deepEqual(byTarget.get(`sets ${a}`), {
        service: "sets",
        key: a,
        exists: true,
        items: ["x", "é"],
      });
      assert.deepEqual(byTarget.get(`sets ${b}`), {
        service: "sets",
        key: b,
        exists: false,
        items: [],
      });
      await watch.quiet(300);
    });
  }],
  ["watch() gives each new state of a key, in order, on every service", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("k");
    const keys = { cache: [k], counters: [k], flags: [k], kv: [k], sets: [k] };
    await watching(ops, keys, async (watch) => {
      await watch.take(5);
      for (const amount of [1n, 2n, -10n]) {
        const value = await ops.counterIncrement(k, amount);
        assert.deepEqual(await watch.next(), { service: "counters", key: k, exists: true, value });
      }
      for (const value of [true, false, true]) {
        await ops.flagSet(k, value);
        assert.deepEqual(await watch.next(), { service: "flags", key: k, exists: true, value });
      }
      for (const value of ["one", "two"]) {
        await ops.kvPut(k, value);
        const { version } = await ops.kvGetEntry(k);
        assert.deepEqual(await watch.next(), {
          service: "kv",
          key: k,
          exists: true,
          value: bytes(value),
          version,
        });
      }
      for (const item of ["b", "a"]) {
        const items = await ops.setAdd(k, item);
        assert.deepEqual(await watch.next(), { service: "sets", key: k, exists: true, items });
      }
      const items = await ops.setRemove(k, "b");
      assert.deepEqual(await watch.next(), { service: "sets", key: k, exists: true, items });
      await ops.cacheSet(k, "v", 60);
      const cache = await watch.next();
      assert.ok(cache.service === "cache" && cache.exists && cache.value === "v", text(cache));
      await watch.quiet(300);
    });
  }],
  ["watch() tells deletes: absent, a counter 0, a flag false, a set empty", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("gone");
    await ops.cacheSet(k, "v", 60);
    await ops.counterIncrement(k, 5);
    await ops.flagSet(k, true);
    await ops.kvPut(k, "v");
    await ops.setAdd(k, "only");
    const keys = { cache: [k], counters: [k], flags: [k], kv: [k], sets: [k] };
    await watching(ops, keys, async (watch) => {
      const first = await watch.take(5);
      assert.ok(first.every((change) => change.exists), first.map(text).join());
      await ops.cacheDelete(k);
      assert.deepEqual(await watch.next(), { service: "cache", key: k, exists: false });
      await ops.counterDelete(k);
      assert.deepEqual(await watch.next(), {
        service: "counters",
        key: k,
        exists: false,
        value: 0n,
      });
      await ops.flagDelete(k);
      assert.deepEqual(await watch.next(), {
        service: "flags",
        key: k,
        exists: false,
        value: false,
      });
      await ops.kvDelete(k);
      assert.deepEqual(await watch.next(), { service: "kv", key: k, exists: false });
      await ops.setRemove(k, "only");
      assert.deepEqual(await watch.next(), { service: "sets", key: k, exists: false, items: [] });
      // An add then a delete may be coalesced into no change at all: take the add first.
      await ops.setAdd(k, "back");
      assert.deepEqual(await watch.next(), {
        service: "sets",
        key: k,
        exists: true,
        items: ["back"],
      });
      await ops.setDelete(k);
      assert.deepEqual(await watch.next(), { service: "sets", key: k, exists: false, items: [] });
    });
  }],
  ["fast changes may be coalesced, in order, and the last state always arrives", async (ctx) => {
    const { ops } = ctx;
    const [counter, value] = [ctx.key("counter"), ctx.key("value")];
    await watching(ops, { counters: [counter], kv: [value] }, async (watch) => {
      await watch.take(2);
      await Promise.all(Array.from({ length: 200 }, () => ops.counterIncrement(counter, 1)));
      for (let i = 1; i <= 50; i++) await ops.kvPut(value, String(i));
      const last = await ops.kvGetEntry(value);
      const changes = await watch.until((change) =>
        change.service === "kv" && change.exists && change.version === last.version
      );
      const counts = changes.filter((change) => change.service === "counters")
        .map((change) => (change as { value: bigint }).value);
      const values = changes.filter((change) => change.service === "kv")
        .map((change) => Number(new TextDecoder().decode((change as { value: Uint8Array }).value)));
      for (let i = 1; i < counts.length; i++) assert.ok(counts[i] > counts[i - 1], `${counts}`);
      for (let i = 1; i < values.length; i++) assert.ok(values[i] > values[i - 1], `${values}`);
      assert.equal(values.at(-1), 50);
      if (counts.at(-1) !== 200n) {
        const more = await watch.until((change) =>
          change.service === "counters" && change.value === 200n
        );
        assert.ok(more.length > 0);
      }
      await watch.quiet(300);
    });
  }],
  ["watch() follows 100 keys across services; a change of any comes", async (ctx) => {
    const { ops } = ctx;
    const names = Array.from({ length: 20 }, (_, i) => ctx.key(`k${i}`));
    const keys = { cache: names, counters: names, flags: names, kv: names, sets: names };
    await watching(ops, keys, async (watch) => {
      const first = await watch.take(100);
      assert.equal(new Set(first.map((c) => `${c.service} ${c.key}`)).size, 100);
      await ops.flagSet(names[17], true);
      assert.deepEqual(await watch.next(), {
        service: "flags",
        key: names[17],
        exists: true,
        value: true,
      });
      await ops.setAdd(names[3], "i");
      assert.deepEqual(await watch.next(), {
        service: "sets",
        key: names[3],
        exists: true,
        items: ["i"],
      });
    });
  }],
  ["watch() refuses more than 100 keys, no key, and bad keys, from its first step", async (ctx) => {
    const { ops } = ctx;
    const many = Array.from({ length: 101 }, (_, i) => ctx.key(`k${i}`));
    const first = (keys: WatchKeys) => ops.watch(keys)[Symbol.asyncIterator]().next();
    await rejects(first({ kv: many }), ValueTooLargeError);
    await rejects(first({ kv: many.slice(0, 51), flags: many.slice(51) }), ValueTooLargeError);
    await rejects(first({}), InvalidArgumentError);
    await rejects(first({ kv: [] }), InvalidArgumentError);
    await rejects(first({ kv: [""] }), InvalidArgumentError);
    await rejects(first({ flags: ["x".repeat(513)] }), InvalidArgumentError);
    await rejects(first({ kv: ["\ud800"] }), InvalidArgumentError);
    // The same key twice is watched once: 100 distinct keys are within the limit.
    await watching(ops, { kv: [...many.slice(0, 100), many[0]] }, async (watch) => {
      assert.equal((await watch.take(100)).length, 100);
      await watch.quiet(200);
    });
  }],
  ["a watched cache entry goes absent when its TTL passes", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("ttl");
    await ops.cacheSet(k, "short", 1);
    await watching(ops, { cache: [k] }, async (watch) => {
      const first = await watch.next();
      assert.ok(first.service === "cache" && first.exists, text(first));
      const start = Date.now();
      assert.deepEqual(await watch.next(3_000), { service: "cache", key: k, exists: false });
      assert.ok(Date.now() - start < 2_500, `seen ${Date.now() - start} ms later`);
    });
  }],
  ["a batch's writes are seen; a failed atomic batch shows nothing", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("batch");
    await watching(ops, { counters: [k], kv: [k] }, async (watch) => {
      await watch.take(2);
      await ops.batch([
        { op: "counterIncrement", args: [k, 2] },
        { op: "kvPut", args: [k, "from a batch"] },
      ], { atomic: true });
      const changes = await watch.take(2);
      assert.deepEqual(changes.map((change) => change.service).sort(), ["counters", "kv"]);
      await ops.batch([
        { op: "counterIncrement", args: [k, 1] },
        { op: "kvPut", args: [k, "never", { ifMatch: "stale" }] },
      ], { atomic: true }).catch(() => {});
      await watch.quiet(500);
    });
  }],
  ["breaking out of a watch ends it; an aborted signal ends it with its reason", async (ctx) => {
    const { ops } = ctx;
    const k = ctx.key("end");
    for await (const change of ops.watch({ flags: [k] })) {
      assert.equal(change.service, "flags");
      break;
    }
    const controller = new AbortController();
    const watch = new Watching(ops, { flags: [k] }, controller.signal);
    await watch.next();
    const reason = new Error("enough");
    setTimeout(() => controller.abort(reason), 50);
    await assert.rejects(watch.next(), (error) => error === reason);
    await watch.close();
    const aborted = AbortSignal.abort(reason);
    await assert.rejects(
      ops.watch({ flags: [k] }, { signal: aborted })[Symbol.asyncIterator]().next(),
      (error) => error === reason,
    );
    await ops.flagSet(k, true); // Nobody watches any more: nothing waits for this.
    await sleep(50);
  }],
];
