/**
 * A stranger's client: built from `proto/purple.proto` alone with @grpc/proto-loader and
 * grpc-js, as someone without Purple's client code would, calling every method.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { DEFAULT_LIMITS, openBackend } from "../backends/mod.ts";
import { startGrpcServer } from "../server/grpc.ts";

type Call = (request: object) => Promise<Record<string, unknown>>;
type Stub = Record<string, Call> & { close(): void };

/** The services of a proto file, as promise-returning stubs. */
function stubs(
  address: string,
  file = "proto/purple.proto",
  services = ["Cache", "Counter", "Flag", "KV", "Set", "Batch"],
): Record<string, Stub> {
  const definition = protoLoader.loadSync(file, {
    keepCase: true,
    longs: String,
    defaults: true,
  });
  // deno-lint-ignore no-explicit-any
  const { proto } = grpc.loadPackageDefinition(definition) as any;
  const found: Record<string, Stub> = {};
  for (const name of services) {
    const client = new proto[name](address, grpc.credentials.createInsecure());
    const stub = { close: () => client.close() } as Stub;
    for (const method of Object.keys(proto[name].service)) {
      stub[method] = (request) =>
        new Promise((resolve, reject) =>
          client[method](
            request,
            (error: grpc.ServiceError | null, reply: never) =>
              error ? reject(error) : resolve(reply),
          )
        );
    }
    found[name] = stub;
  }
  return found;
}

async function rejectsWith(promise: Promise<unknown>, code: grpc.status): Promise<void> {
  await assert.rejects(promise, (error: grpc.ServiceError) => {
    assert.equal(grpc.status[error.code], grpc.status[code], error.details);
    return true;
  });
}

Deno.test({
  name: "a client built from proto/purple.proto alone can call every method",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const ops = await openBackend({ kind: "memory" });
    const server = await startGrpcServer(ops, {
      hostname: "127.0.0.1",
      port: 0,
      limits: DEFAULT_LIMITS,
      log: () => {},
    });
    const { Cache, Counter, Flag, KV, Set, Batch } = stubs(`127.0.0.1:${server.port}`);
    try {
      assert.deepEqual(
        Object.keys(Counter).sort(),
        [
          "CounterDelete",
          "CounterGet",
          "CounterIncrement",
          "CounterList",
          "GetCounter",
          "IncrementCounter",
          "close",
        ],
      );

      // Cache: a missing key is NOT_FOUND (the original answered OK and an empty value).
      await rejectsWith(Cache.CacheGet({ key: "missing" }), grpc.status.NOT_FOUND);
      assert.deepEqual(await Cache.CacheSet({ key: "c", item: { value: "v", ttl: 60 } }), {});
      assert.deepEqual(await Cache.CacheGet({ key: "c" }), { value: "v" });
      await Cache.CacheSet({ key: "default-ttl", item: { value: "w" } });
      assert.deepEqual(await Cache.CacheGet({ key: "default-ttl" }), { value: "w" });
      await rejectsWith(
        Cache.CacheSet({ key: "c", item: { value: "v", ttl: -1 } }),
        grpc.status.INVALID_ARGUMENT,
      );
      await rejectsWith(Cache.CacheSet({ key: "c" }), grpc.status.INVALID_ARGUMENT);

      // Counter: int64 exactly, as strings (longs: String).
      assert.deepEqual(await Counter.CounterGet({ key: "n" }), { value: "0" });
      assert.deepEqual(
        await Counter.CounterIncrement({ key: "n", amount: "9007199254740993" }),
        { value: "9007199254740993" },
      );
      assert.deepEqual(await Counter.CounterGet({ key: "n" }), { value: "9007199254740993" });
      assert.deepEqual(await Counter.IncrementCounter({ key: "n", amount: "-3" }), {});
      assert.deepEqual(await Counter.GetCounter({ key: "n" }), { value: "9007199254740990" });
      await Counter.CounterIncrement({ key: "max", amount: "9223372036854775807" });
      await rejectsWith(
        Counter.CounterIncrement({ key: "max", amount: "1" }),
        grpc.status.INVALID_ARGUMENT,
      );
      assert.deepEqual(await Counter.GetCounter({ key: "max" }), { value: "9223372036854775807" });

      // Flag (the original forgot to register it).
      assert.deepEqual(await Flag.FlagGet({ key: "f" }), { value: false });
      assert.deepEqual(await Flag.FlagSet({ key: "f", value: true }), {});
      assert.deepEqual(await Flag.FlagGet({ key: "f" }), { value: true });

      // KV: arbitrary bytes.
      const bytes = Buffer.from([0, 255, 0xc3, 0x28, 10]);
      await rejectsWith(KV.KVGet({ key: "k" }), grpc.status.NOT_FOUND);
      assert.deepEqual(await KV.KVPut({ location: { key: "k" }, value: { content: bytes } }), {});
      const got = await KV.KVGet({ key: "k" }) as { value: { content: Buffer } };
      assert.deepEqual([...got.value.content], [...bytes]);
      await rejectsWith(
        KV.KVPut({ location: { key: "big" }, value: { content: Buffer.alloc(1024 * 1024 + 1) } }),
        grpc.status.RESOURCE_EXHAUSTED,
      );
      await rejectsWith(
        KV.KVPut({ location: { key: "k" }, value: { content: Buffer.alloc(0) } }),
        grpc.status.INVALID_ARGUMENT,
      );
      assert.deepEqual(await KV.KVDelete({ key: "k" }), {});
      await rejectsWith(KV.KVDelete({ key: "k" }), grpc.status.NOT_FOUND);

      // Set: sorted items.
      assert.deepEqual(await Set.SetGet({ set: "s" }), { items: [] });
      assert.deepEqual(await Set.SetAdd({ set: "s", item: "b" }), { items: ["b"] });
      assert.deepEqual(await Set.SetAdd({ set: "s", item: "a" }), { items: ["a", "b"] });
      assert.deepEqual(await Set.SetRemove({ set: "s", item: "b" }), { items: ["a"] });
      assert.deepEqual(await Set.SetGet({ set: "s" }), { items: ["a"] });

      // An empty key is bad input everywhere.
      await rejectsWith(Set.SetGet({ set: "" }), grpc.status.INVALID_ARGUMENT);

      // The data API v2 (ext): deletes, listings, versions, batches.
      assert.deepEqual(await Set.SetDelete({ set: "s" }), {});
      await rejectsWith(Set.SetDelete({ set: "s" }), grpc.status.NOT_FOUND);
      assert.deepEqual(await Counter.CounterDelete({ key: "n" }), {});
      assert.deepEqual(await Counter.CounterList({ prefix: "", limit: 10 }), {
        keys: ["max"],
        cursor: "",
      });
      const first = await Counter.CounterList({ limit: 0 }) as { keys: string[] };
      assert.deepEqual(first.keys, ["max"], "limit 0 is the default");
      await rejectsWith(Counter.CounterList({ limit: 1001 }), grpc.status.INVALID_ARGUMENT);
      await rejectsWith(Counter.CounterList({ cursor: "bad" }), grpc.status.INVALID_ARGUMENT);
      await KV.KVPut({ location: { key: "v" }, value: { content: Buffer.from("one") } });
      const entry = await KV.KVGet({ key: "v" }) as { version: string };
      assert.ok(entry.version.length > 0);
      await rejectsWith(
        KV.KVPut({ location: { key: "v" }, value: { content: Buffer.from("x") }, if_match: "no" }),
        grpc.status.FAILED_PRECONDITION,
      );
      await rejectsWith(
        KV.KVPut({
          location: { key: "v" },
          value: { content: Buffer.from("x") },
          if_none_match: true,
        }),
        grpc.status.FAILED_PRECONDITION,
      );
      assert.deepEqual(
        await KV.KVPut({
          location: { key: "v" },
          value: { content: Buffer.from("two") },
          if_match: entry.version,
        }),
        {},
      );
      await rejectsWith(
        KV.KVDelete({ key: "v", if_match: entry.version }),
        grpc.status.FAILED_PRECONDITION,
      );
      const batch = await Batch.Batch({
        operations: [
          { counter_increment: { key: "b", amount: "2" } },
          { kv_get_entry: { key: "v" } },
          { kv_get_entry: { key: "missing" } },
          { set_add: { set: "t", item: "x" } },
        ],
      }) as { results: Record<string, unknown>[] };
      assert.deepEqual(batch.results[0].counter_increment, { value: "2" });
      assert.equal(
        (batch.results[1].kv_get_entry as { value: { content: Buffer } }).value.content
          .toString(),
        "two",
      );
      assert.equal((batch.results[2].error as { code: string }).code, "NOT_FOUND");
      assert.deepEqual(batch.results[3].set_add, { items: ["x"] });
      await rejectsWith(
        Batch.Batch({
          atomic: true,
          operations: [
            { counter_increment: { key: "b", amount: "1" } },
            { kv_delete: { key: "missing" } },
          ],
        }),
        grpc.status.NOT_FOUND,
      );
      assert.deepEqual(await Counter.CounterGet({ key: "b" }), { value: "2" });
    } finally {
      for (const stub of [Cache, Counter, Flag, KV, Set, Batch]) stub.close();
      await server.shutdown();
      await ops.close();
    }
  },
});

Deno.test({
  name: "a client built from the original Go Purple's protos works exactly as before",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const ops = await openBackend({ kind: "memory" });
    const server = await startGrpcServer(ops, {
      hostname: "127.0.0.1",
      port: 0,
      limits: DEFAULT_LIMITS,
      log: () => {},
    });
    const { Cache, Counter, Flag, KV, Set } = stubs(
      `127.0.0.1:${server.port}`,
      "tests/fixtures/original_purple.proto",
      ["Cache", "Counter", "Flag", "KV", "Set"],
    );
    try {
      assert.deepEqual(await Cache.CacheSet({ key: "c", item: { value: "v", ttl: 60 } }), {});
      assert.deepEqual(await Cache.CacheGet({ key: "c" }), { value: "v" });
      assert.deepEqual(await Counter.CounterIncrement({ key: "n", amount: "5" }), { value: "5" });
      assert.deepEqual(await Counter.CounterGet({ key: "n" }), { value: "5" });
      assert.deepEqual(await Flag.FlagSet({ key: "f", value: true }), {});
      assert.deepEqual(await Flag.FlagGet({ key: "f" }), { value: true });
      const bytes = Buffer.from([0, 1, 2, 255]);
      assert.deepEqual(await KV.KVPut({ location: { key: "k" }, value: { content: bytes } }), {});
      // The answer now carries the value's version too: the original's message has no such
      // field, so its client reads exactly what it always did.
      const got = await KV.KVGet({ key: "k" });
      assert.deepEqual(Object.keys(got), ["value"]);
      assert.deepEqual([...(got.value as { content: Buffer }).content], [...bytes]);
      assert.deepEqual(await KV.KVDelete({ key: "k" }), {});
      await rejectsWith(KV.KVGet({ key: "k" }), grpc.status.NOT_FOUND);
      assert.deepEqual(await Set.SetAdd({ set: "s", item: "b" }), { items: ["b"] });
      assert.deepEqual(await Set.SetAdd({ set: "s", item: "a" }), { items: ["a", "b"] });
      assert.deepEqual(await Set.SetRemove({ set: "s", item: "b" }), { items: ["a"] });
      assert.deepEqual(await Set.SetGet({ set: "s" }), { items: ["a"] });
    } finally {
      for (const stub of [Cache, Counter, Flag, KV, Set]) stub.close();
      await server.shutdown();
      await ops.close();
    }
  },
});

Deno.test({
  name: "a client built from proto/purple.proto alone can watch: a server stream of WatchChange",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const ops = await openBackend({ kind: "memory" });
    const server = await startGrpcServer(ops, {
      hostname: "127.0.0.1",
      port: 0,
      limits: DEFAULT_LIMITS,
      log: () => {},
    });
    const address = `127.0.0.1:${server.port}`;
    const definition = protoLoader.loadSync("proto/purple.proto", {
      keepCase: true,
      longs: String,
      defaults: true,
      oneofs: true,
    });
    // deno-lint-ignore no-explicit-any
    const { proto } = grpc.loadPackageDefinition(definition) as any;
    const client = new proto.Watch(address, grpc.credentials.createInsecure());
    const { Counter } = stubs(address, "proto/purple.proto", ["Counter"]);
    const call = client.Watch({ counters: ["hits"], kv: ["doc"] }) as grpc.ClientReadableStream<
      Record<string, unknown>
    >;
    const messages: Record<string, unknown>[] = [];
    const arrived = (count: number) =>
      new Promise<void>((resolve) => {
        const check = () => messages.length >= count && resolve();
        call.on("data", check);
        check();
      });
    call.on("data", (message) => messages.push(message));
    call.on("error", () => {}); // CANCELLED, below.
    try {
      await arrived(2);
      await Counter.CounterIncrement({ key: "hits", amount: "3" });
      await arrived(3);
      assert.deepEqual(messages, [
        { key: "hits", exists: false, state: "counters", counters: { value: "0" } },
        { key: "doc", exists: false, state: "kv", kv: { value: null, version: "" } },
        { key: "hits", exists: true, state: "counters", counters: { value: "3" } },
      ]);
    } finally {
      call.cancel();
      client.close();
      Counter.close();
      await server.shutdown();
      await ops.close();
    }
  },
});
