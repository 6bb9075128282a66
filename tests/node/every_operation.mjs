// Every Purple operation through one client, in Node, with the typed errors checked by
// `instanceof`. http_client.node.mjs and grpc_client.node.mjs call it with their client.
//
// It imports @purple/client as a Node user does (bare specifiers, from node_modules), so it
// runs from the directory where tests/node_client_test.ts installed the built package. The
// server is a `purple` process started by Deno: PURPLE_MAX_VALUE_BYTES is its value limit,
// PURPLE_DOWN_ADDRESS an address where nothing listens.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
  PurpleError,
  UnavailableError,
  ValueTooLargeError,
} from "@purple/client/errors";

const MAX_VALUE_BYTES = Number(process.env.PURPLE_MAX_VALUE_BYTES);
const INT64_MAX = 9223372036854775807n;
/** The operations of the operation table, from the Deno test that runs this. */
const OPERATIONS = process.env.PURPLE_OPERATIONS.split(",");

/** The client, recording the name of every operation called through it. */
function recording(client, called) {
  return new Proxy(client, {
    get(target, name) {
      const value = Reflect.get(target, name);
      if (typeof value !== "function") return value;
      if (OPERATIONS.includes(name)) called.add(name);
      return value.bind(target);
    },
  });
}

/**
 * Registers the tests of one client.
 * @param {string} name The client's name, which also prefixes every key it writes.
 * @param {(down?: boolean) => import("@purple/client").Operations} connect A client of the
 * server, or (with `down`) of an address where nothing listens.
 */
export function everyOperation(name, connect) {
  describe(`${name} in Node`, () => {
    const called = new Set();
    const purple = recording(connect(), called);
    const key = (what) => `${name}-${what}`;
    after(() => purple.close());

    test("cacheSet then cacheGet; a missing key is a NotFoundError", async () => {
      await purple.cacheSet(key("session"), "a1b2c3", 60);
      assert.equal(await purple.cacheGet(key("session")), "a1b2c3");
      const error = await purple.cacheGet(key("nobody")).catch((e) => e);
      assert.ok(error instanceof NotFoundError, String(error));
      assert.ok(error instanceof PurpleError);
      assert.equal(error.code, "NOT_FOUND");
    });

    test("counterIncrement and counterGet stay exact past 2^53", async () => {
      assert.equal(await purple.counterGet(key("points")), 0n);
      assert.equal(
        await purple.counterIncrement(key("points"), 9007199254740993n),
        9007199254740993n,
      );
      assert.equal(await purple.counterIncrement(key("points"), -3), 9007199254740990n);
      assert.equal(await purple.counterGet(key("points")), 9007199254740990n);
    });

    test("a counter past int64 is an InvalidArgumentError from the server", async () => {
      await purple.counterIncrement(key("big"), INT64_MAX);
      const error = await purple.counterIncrement(key("big"), 1).catch((e) => e);
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(await purple.counterGet(key("big")), INT64_MAX);
    });

    test("a fractional amount is an InvalidArgumentError before any call", async () => {
      const error = await purple.counterIncrement(key("points"), 1.5).catch((e) => e);
      assert.ok(error instanceof InvalidArgumentError, String(error));
    });

    test("flagGet is false until flagSet", async () => {
      assert.equal(await purple.flagGet(key("beta")), false);
      await purple.flagSet(key("beta"), true);
      assert.equal(await purple.flagGet(key("beta")), true);
    });

    test("kvPut, kvGet and kvDelete keep any bytes; a missing key is a NotFoundError", async () => {
      await purple.kvPut(key("bytes"), new Uint8Array([0, 255, 7, 0x89]));
      const value = await purple.kvGet(key("bytes"));
      assert.ok(value instanceof Uint8Array);
      assert.deepEqual([...value], [0, 255, 7, 0x89]);
      await purple.kvPut(key("text"), "héllo");
      assert.equal(new TextDecoder().decode(await purple.kvGet(key("text"))), "héllo");
      await purple.kvDelete(key("bytes"));
      for (const call of [() => purple.kvGet(key("bytes")), () => purple.kvDelete(key("bytes"))]) {
        const error = await call().catch((e) => e);
        assert.ok(error instanceof NotFoundError, String(error));
      }
    });

    test("a KV value over the server's limit is a ValueTooLargeError", async () => {
      const error = await purple.kvPut(key("big"), new Uint8Array(MAX_VALUE_BYTES + 1))
        .catch((e) => e);
      assert.ok(error instanceof ValueTooLargeError, String(error));
      assert.equal(error.code, "VALUE_TOO_LARGE");
    });

    test("setAdd, setGet and setRemove return the items sorted", async () => {
      assert.deepEqual(await purple.setGet(key("todos")), []);
      assert.deepEqual(await purple.setAdd(key("todos"), "shopping"), ["shopping"]);
      assert.deepEqual(await purple.setAdd(key("todos"), "running"), ["running", "shopping"]);
      assert.deepEqual(await purple.setGet(key("todos")), ["running", "shopping"]);
      assert.deepEqual(await purple.setRemove(key("todos"), "running"), ["shopping"]);
    });

    test("every service deletes; deleting what is absent is a NotFoundError", async () => {
      await purple.cacheSet(key("gone"), "v", 60);
      await purple.counterIncrement(key("gone"), 1);
      await purple.flagSet(key("gone"), false);
      await purple.setAdd(key("gone"), "i");
      await purple.cacheDelete(key("gone"));
      await purple.counterDelete(key("gone"));
      await purple.flagDelete(key("gone"));
      await purple.setDelete(key("gone"));
      assert.equal(await purple.counterGet(key("gone")), 0n);
      for (
        const call of [
          () => purple.cacheDelete(key("gone")),
          () => purple.counterDelete(key("gone")),
          () => purple.flagDelete(key("gone")),
          () => purple.setDelete(key("gone")),
        ]
      ) {
        const error = await call().catch((e) => e);
        assert.ok(error instanceof NotFoundError, String(error));
      }
    });

    test("every service lists its keys in pages; keys() iterates them all", async () => {
      const prefix = key("list:");
      for (const i of [1, 2, 3]) {
        await purple.cacheSet(`${prefix}${i}`, "v", 60);
        await purple.counterIncrement(`${prefix}${i}`, 1);
        await purple.flagSet(`${prefix}${i}`, true);
        await purple.kvPut(`${prefix}${i}`, "v");
        await purple.setAdd(`${prefix}${i}`, "i");
      }
      const expected = [1, 2, 3].map((i) => `${prefix}${i}`);
      for (const list of ["cacheList", "counterList", "flagList", "kvList", "setList"]) {
        const first = await purple[list]({ prefix, limit: 2 });
        assert.deepEqual(first.keys, expected.slice(0, 2), list);
        const second = await purple[list]({ prefix, limit: 2, cursor: first.cursor });
        assert.deepEqual(second, { keys: expected.slice(2) }, list);
      }
      const all = [];
      for await (const found of purple.keys("kv", { prefix, limit: 1 })) all.push(found);
      assert.deepEqual(all, expected);
      const error = await purple.kvList({ cursor: "nonsense" }).catch((e) => e);
      assert.ok(error instanceof InvalidArgumentError, String(error));
    });

    test("kvGetEntry gives a version; a stale one is a PreconditionFailedError", async () => {
      await purple.kvPut(key("cas"), "one");
      const { value, version } = await purple.kvGetEntry(key("cas"));
      assert.equal(new TextDecoder().decode(value), "one");
      await purple.kvPut(key("cas"), "two", { ifMatch: version });
      const error = await purple.kvPut(key("cas"), "three", { ifMatch: version }).catch((e) => e);
      assert.ok(error instanceof PreconditionFailedError, String(error));
      assert.equal(error.code, "PRECONDITION_FAILED");
      await purple.kvDelete(key("cas"), { ifMatch: "*" });
      await purple.kvPut(key("cas"), "new", { ifNoneMatch: "*" });
    });

    test("batch runs in order; atomic batches are all or nothing", async () => {
      const outcomes = await purple.batch([
        { op: "counterIncrement", args: [key("batch"), 2] },
        { op: "kvGet", args: [key("nothing")] },
        { op: "setAdd", args: [key("batch"), "x"] },
      ]);
      assert.deepEqual(outcomes[0], { ok: true, value: 2n });
      assert.ok(!outcomes[1].ok && outcomes[1].error instanceof NotFoundError);
      assert.deepEqual(outcomes[2], { ok: true, value: ["x"] });
      const error = await purple.batch([
        { op: "counterIncrement", args: [key("batch"), 1] },
        { op: "kvPut", args: [key("batch"), "v", { ifMatch: "stale" }] },
      ], { atomic: true }).catch((e) => e);
      assert.ok(error instanceof PreconditionFailedError, String(error));
      assert.equal(await purple.counterGet(key("batch")), 2n);
    });

    test("watch gives the first state, then each change; break ends it", async () => {
      const seen = [];
      for await (const change of purple.watch({ counters: [key("watched")] })) {
        seen.push(change);
        if (seen.length === 1) await purple.counterIncrement(key("watched"), 7);
        else break;
      }
      assert.deepEqual(seen, [
        { service: "counters", key: key("watched"), exists: false, value: 0n },
        { service: "counters", key: key("watched"), exists: true, value: 7n },
      ]);
      const controller = new AbortController();
      const watch = purple.watch({ flags: [key("watched")] }, { signal: controller.signal });
      await watch.next();
      const pending = watch.next();
      controller.abort(new Error("enough"));
      const error = await pending.catch((e) => e);
      assert.equal(error.message, "enough");
    });

    test("an empty key is an InvalidArgumentError", async () => {
      const error = await purple.flagGet("").catch((e) => e);
      assert.ok(error instanceof InvalidArgumentError, String(error));
    });

    test("a server that cannot be reached is an UnavailableError", async () => {
      const down = connect(true);
      try {
        const error = await down.counterGet(key("points")).catch((e) => e);
        assert.ok(error instanceof UnavailableError, String(error));
      } finally {
        await down.close();
      }
    });

    test(`${name}: every operation was called`, () => {
      assert.deepEqual(OPERATIONS.filter((operation) => !called.has(operation)), []);
    });

    test("after close(), calls reject with UnavailableError", async () => {
      const client = connect();
      await client.setGet(key("todos"));
      await client.close();
      const error = await client.setGet(key("todos")).catch((e) => e);
      assert.ok(error instanceof UnavailableError, String(error));
    });
  });
}
