import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import descriptor from "protobufjs/ext/descriptor/index.js";
import {
  OPERATION_NAMES,
  OPERATIONS,
  type Operations,
  WIRE_OPERATION_NAMES,
  type WireOperationName,
} from "@purple/protocol";
import {
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
  UnavailableError,
  ValueTooLargeError,
} from "@purple/client/errors";
import { GrpcClient } from "@purple/client/grpc";
import {
  type Arguments,
  GRPC_BINDINGS,
  grpcMethod,
  grpcServices,
  messageCodecOf,
  type MessageName,
  type MethodDefinition,
  type Result,
} from "@purple/protocol/wire";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { DEFAULT_LIMITS, type Limits, openBackend } from "../backends/mod.ts";
import { startGrpcServer } from "../server/grpc.ts";
import type { RunningServer } from "../server/options.ts";
import { GoawayFilter } from "../server/_grpc_goaway_guard.ts";
import { conformanceThrough } from "./conformance.ts";

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/** Starts a gRPC server over `ops` on a free loopback port, and a client for it. */
async function serve(
  ops: Operations,
  options: { limits?: Limits; debug?: boolean; log?: (line: string) => void } = {},
): Promise<{ server: RunningServer; client: GrpcClient; address: string }> {
  const server = await startGrpcServer(ops, {
    hostname: "127.0.0.1",
    port: 0,
    limits: options.limits ?? DEFAULT_LIMITS,
    debug: options.debug,
    log: options.log ?? (() => {}),
  });
  const address = `127.0.0.1:${server.port}`;
  return { server, client: new GrpcClient(address), address };
}

/** A grpc-js test with the sanitizers off: grpc-js keeps timers and sockets of its own. */
function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });
}

// ---------------------------------------------------------------------------------------------
// The conformance suite through GrpcClient → gRPC server → each backend.

conformanceThrough("grpc", async (ops) => {
  const { server, client } = await serve(ops);
  return {
    client,
    stop: async () => {
      await client.close();
      await server.shutdown();
    },
  };
});

// ---------------------------------------------------------------------------------------------
// The wire format: the codecs generated from proto/purple.proto (protoc-gen-es), checked against
// protobufjs (what @grpc/proto-loader, and so a stranger's client, uses) on the same file, and
// the operation table's bindings through them.

const reference = protobuf.parse(await Deno.readTextFile("proto/purple.proto"), {
  keepCase: true,
}).root;

/** Encodes with protobufjs; int64 values are given as strings, bytes as Uint8Array. */
function referenceEncode(type: string, object: Record<string, unknown>): Uint8Array {
  const message = reference.lookupType(`proto.${type}`);
  return message.encode(message.fromObject(object)).finish();
}

/** Decodes with protobufjs as proto-loader's `longs: String, defaults: true` would. */
function referenceDecode(type: string, bytes: Uint8Array): Record<string, unknown> {
  const message = reference.lookupType(`proto.${type}`);
  return message.toObject(message.decode(bytes), { longs: String, defaults: true });
}

/** One message in both shapes: ours (bigint, Uint8Array) and protobufjs's (string longs). */
interface Sample {
  type: MessageName;
  ours: Record<string, unknown>;
  theirs: Record<string, unknown>;
}

function samples(): Sample[] {
  const list: Sample[] = [];
  const add = (type: MessageName, ours: Record<string, unknown>, theirs = ours) =>
    list.push({ type, ours, theirs });
  const keys = ["k", "ключ", "键🔑", "nul\u0000byte", "\ufeffbom", "x".repeat(300)];
  for (const key of keys) {
    add("CacheGetRequest", { key });
    add("GetCounterRequest", { key });
    add("FlagGetRequest", { key });
    add("Location", { key });
    add("GetSetRequest", { set: key });
    add("CacheGetResponse", { value: key });
  }
  for (const ttl of [1, 5, 127, 128, 3600, 2147483647, -1, -2147483648]) {
    add("CacheSetRequest", { key: "k", item: { value: `v${ttl}`.repeat(ttl & 0x3f || 1), ttl } });
  }
  const amounts = [
    1n,
    -1n,
    127n,
    128n,
    2n ** 31n,
    2n ** 32n,
    9007199254740993n,
    INT64_MAX,
    INT64_MIN,
  ];
  for (const amount of amounts) {
    add("IncrementCounterRequest", { key: "c", amount }, { key: "c", amount: String(amount) });
    add("GetCounterResponse", { value: amount }, { value: String(amount) });
  }
  add("FlagSetRequest", { key: "f", value: true });
  add("FlagResponse", { value: true });
  const binary = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
  for (const content of [new Uint8Array([0, 255, 0xc3, 0x28]), binary]) {
    add("GetResponse", { value: { content } });
    add("PutRequest", { location: { key: "k" }, value: { content } });
  }
  add("ModifySetRequest", { set: "s", item: "i" });
  add("SetResponse", { items: ["a", "b", "é", "😀", "x".repeat(200)] });
  return list;
}

/** A message in protobufjs's shape, to compare the two (no protobuf-es `$typeName`). */
function normalized(value: unknown): unknown {
  if (typeof value === "bigint") return String(value);
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(normalized);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).filter(([k]) => k !== "$typeName").map((
        [k, v],
      ) => [k.replace(/_([a-z])/g, (_, letter) => letter.toUpperCase()), normalized(v)]),
    );
  }
  return value;
}

test("the generated codecs encode every message exactly as protobufjs does", () => {
  for (const { type, ours, theirs } of samples()) {
    const mine = messageCodecOf(type).encode(ours as never);
    assert.deepEqual(
      [...mine],
      [...referenceEncode(type, theirs)],
      `${type} ${Deno.inspect(ours)}`,
    );
  }
  return Promise.resolve();
});

test("the generated codecs decode what protobufjs encodes", () => {
  for (const { type, theirs } of samples()) {
    const bytes = referenceEncode(type, theirs);
    assert.deepEqual(
      normalized(messageCodecOf(type).decode(bytes)),
      normalized(referenceDecode(type, bytes)),
      type,
    );
  }
  return Promise.resolve();
});

test("the codecs omit proto3 defaults and read missing fields as defaults", () => {
  assert.equal(messageCodecOf("CacheGetRequest").encode({ key: "" }).length, 0);
  assert.equal(messageCodecOf("GetCounterResponse").encode({ value: 0n }).length, 0);
  assert.equal(messageCodecOf("FlagResponse").encode({ value: false }).length, 0);
  // An embedded message is written when present, even empty (it has presence).
  assert.deepEqual(
    [...messageCodecOf("CacheSetRequest").encode({ key: "", item: { value: "", ttl: 0 } })],
    [0x12, 0],
  );
  const empty = new Uint8Array(0);
  assert.deepEqual(normalized(messageCodecOf("CacheSetRequest").decode(empty)), { key: "" });
  assert.deepEqual(normalized(messageCodecOf("IncrementCounterRequest").decode(empty)), {
    key: "",
    amount: "0",
  });
  assert.deepEqual(normalized(messageCodecOf("SetResponse").decode(empty)), { items: [] });
  // protobufjs writes explicitly set defaults; they read back as defaults.
  const explicit = referenceEncode("IncrementCounterRequest", { key: "", amount: "0" });
  assert.equal(messageCodecOf("IncrementCounterRequest").decode(explicit).amount, 0n);
  return Promise.resolve();
});

test("the codecs skip unknown fields of every wire type", () => {
  const unknown = [
    ...[0x78, 0x96, 0x01], // field 15, varint 150
    ...[0x81, 0x01, 1, 2, 3, 4, 5, 6, 7, 8], // field 16, fixed64
    ...[0x8a, 0x01, 3, 0x61, 0x62, 0x63], // field 17, length-delimited "abc"
    ...[0x95, 0x01, 1, 2, 3, 4], // field 18, fixed32
  ];
  const known = [...referenceEncode("IncrementCounterRequest", { key: "k", amount: "-5" })];
  const withUnknown = new Uint8Array([...unknown, ...known, ...unknown]);
  const decoded = grpcMethod("counterIncrement").requestDeserialize(withUnknown);
  assert.deepEqual(GRPC_BINDINGS.counterIncrement.args(decoded as never), ["k", -5n]);
  const nested = new Uint8Array([0x0a, 1, 0x6b, 0x12, 2 + unknown.length, ...unknown, 0x10, 7]);
  const request = grpcMethod("cacheSet").requestDeserialize(nested);
  assert.deepEqual(GRPC_BINDINGS.cacheSet.args(request as never), ["k", "", 7]);
  return Promise.resolve();
});

test("the codecs refuse truncated messages and strings that are not UTF-8", () => {
  const bad = [
    [0x0a, 5, 0x61], // A string longer than the message.
    [0x10, 0x80], // A varint cut short.
    [0x0a, 2, 0xc3, 0x28], // Not UTF-8.
    [0x0a, 3, 0xed, 0xa0, 0x80], // An encoded surrogate (CESU-8), not UTF-8.
    [0x0b], // Wire type 3 (groups) is not supported.
  ];
  for (const bytes of bad) {
    assert.throws(
      () => grpcMethod("counterIncrement").requestDeserialize(new Uint8Array(bytes)),
      (error: unknown) =>
        error instanceof InvalidArgumentError && /^Bad message: /.test(error.message),
      `${bytes}`,
    );
  }
  return Promise.resolve();
});

test("int64 values round-trip exactly at every edge, through the bindings", () => {
  const edges = [0n, 1n, -1n, 2n ** 28n - 1n, 2n ** 28n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 53n + 1n];
  const method = grpcMethod("counterIncrement");
  const binding = GRPC_BINDINGS.counterIncrement;
  for (const edge of [...edges, -edges[3], -edges[7], INT64_MAX, INT64_MIN, INT64_MIN + 1n]) {
    const request = method.requestDeserialize(method.requestSerialize(binding.request("c", edge)));
    assert.deepEqual(binding.args(request), ["c", edge]);
    const bytes = method.responseSerialize(binding.response(edge, request));
    assert.equal(binding.result(method.responseDeserialize(bytes)), edge);
    assert.equal(referenceDecode("GetCounterResponse", bytes).value, String(edge));
  }
  return Promise.resolve();
});

test("the operation table and proto/purple.proto agree: every method is served, none is extra", () => {
  const served = Object.values(grpcServices()).flatMap((methods) =>
    Object.values(methods).map((method) => method.path)
  );
  const declared: string[] = [];
  (reference.lookup("proto") as protobuf.Namespace).nestedArray.forEach((item) => {
    if (item instanceof protobuf.Service) {
      for (const method of item.methodsArray) declared.push(`/proto.${item.name}/${method.name}`);
    }
  });
  assert.deepEqual(served.sort(), declared.sort());
  for (const name of OPERATION_NAMES) {
    const { service, method, request, response } = OPERATIONS[name].grpc;
    const declaredMethod =
      (reference.lookup(`proto.${service}`) as protobuf.Service).methods[method];
    assert.equal(declaredMethod.requestType, request, `${name}'s request`);
    assert.equal(declaredMethod.responseType, response, `${name}'s response`);
  }
  return Promise.resolve();
});

test("every operation's arguments and result survive the wire both ways", () => {
  const bytes = new Uint8Array([0, 1, 254, 255]);
  const page = { keys: ["a", "ключ"], cursor: "next" };
  const cases: { [Op in WireOperationName]: [Arguments<Op>, Result<Op>] } = {
    batch: [[[
      { op: "counterIncrement", args: ["c", 2n] },
      { op: "kvGetEntry", args: ["k"] },
      { op: "kvPut", args: ["k", bytes, { ifMatch: "v1" }] },
      { op: "setAdd", args: ["s", "i"] },
      { op: "flagGet", args: ["f"] },
      { op: "cacheDelete", args: ["k"] },
    ], { atomic: true }], [
      { ok: true, value: 2n },
      { ok: true, value: { value: bytes, version: "v2" } },
      { ok: false, error: new PreconditionFailedError("Cannot put KV key 'k': stale") },
      { ok: true, value: ["i"] },
      { ok: true, value: false },
      { ok: false, error: new NotFoundError("Cannot delete cache key 'k': not found") },
    ]],
    cacheGet: [["ключ"], "value é"],
    cacheSet: [["k", "v", 60], undefined],
    counterIncrement: [["c", -9007199254740993n], INT64_MIN],
    counterGet: [["c"], INT64_MAX],
    flagGet: [["f"], true],
    flagSet: [["f", true], undefined],
    kvGetEntry: [["k"], { value: bytes, version: "AAAAAAAAAAE" }],
    kvPut: [["k", bytes, { ifMatch: "v1" }], undefined],
    kvDelete: [["k", { ifMatch: "*" }], undefined],
    setGet: [["s"], ["a", "b"]],
    setAdd: [["s", "a"], ["a"]],
    setRemove: [["s", "a"], []],
    cacheDelete: [["k"], undefined],
    counterDelete: [["c"], undefined],
    flagDelete: [["f"], undefined],
    setDelete: [["s"], undefined],
    cacheList: [[{ prefix: "p", limit: 5, cursor: "c" }], page],
    counterList: [[{ limit: 1000 }], { keys: [] }],
    flagList: [[{ prefix: "ключ" }], page],
    kvList: [[{ cursor: "x" }], page],
    setList: [[{}], { keys: ["only"] }],
    watch: [[{ kv: ["k"], flags: ["ключ", "f"] }], {
      service: "kv",
      key: "k",
      exists: true,
      value: bytes,
      version: "v3",
    }],
  };
  for (const name of WIRE_OPERATION_NAMES) {
    const [args, result] = cases[name];
    const method = grpcMethod(name) as MethodDefinition<unknown, unknown>;
    const binding = GRPC_BINDINGS[name] as unknown as {
      request(...args: unknown[]): unknown;
      args(request: unknown): unknown[];
      response(result: unknown, request: unknown): unknown;
      result(response: unknown, request: unknown): unknown;
    };
    const request = method.requestDeserialize(method.requestSerialize(binding.request(...args)));
    assert.deepEqual(binding.args(request), args, `${name}'s arguments`);
    const response = method.responseDeserialize(
      method.responseSerialize(binding.response(result, request)),
    );
    assert.deepEqual(binding.result(response, request), result, `${name}'s result`);
  }
  return Promise.resolve();
});

// ---------------------------------------------------------------------------------------------
// The server: extra methods, health, reflection, errors, shutdown.

test("IncrementCounter and GetCounter of the earlier release work", async () => {
  const ops = await openBackend({ kind: "memory" });
  const { server, address, client } = await serve(ops);
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  try {
    const call = <Req, Res>(method: grpc.MethodDefinition<Req, Res>, request: Req) =>
      new Promise<Res>((resolve, reject) =>
        raw.makeUnaryRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          request,
          (error, reply) => error ? reject(error) : resolve(reply!),
        )
      );
    const { IncrementCounter, GetCounter } = grpcServices().Counter;
    const fields = async (reply: Promise<unknown>) => normalized(await reply);
    assert.deepEqual(await fields(call(IncrementCounter, { key: "old", amount: 2n ** 60n })), {});
    assert.deepEqual(await fields(call(IncrementCounter, { key: "old", amount: 1n })), {});
    assert.deepEqual(await fields(call(GetCounter, { key: "old" })), {
      value: String(2n ** 60n + 1n),
    });
    assert.equal(await client.counterGet("old"), 2n ** 60n + 1n);
  } finally {
    raw.close();
    await client.close();
    await server.shutdown();
    await ops.close();
  }
});

/** Calls a method with raw bytes, as a client with other codecs (or a broken one) would. */
function callRaw(address: string, path: string, bytes: Uint8Array): Promise<Uint8Array> {
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<Uint8Array>((resolve, reject) =>
    raw.makeUnaryRequest(
      path,
      (value: Uint8Array) => Buffer.from(value),
      (value: Buffer) => new Uint8Array(value),
      bytes,
      (error, reply) => error ? reject(error) : resolve(reply!),
    )
  ).finally(() => raw.close());
}

test("a malformed request, or a key that is not UTF-8, is INVALID_ARGUMENT", async () => {
  const ops = await openBackend({ kind: "memory" });
  const { server, address } = await serve(ops);
  try {
    for (const bytes of [[0x0a, 9, 0x61], [0x0a, 2, 0xc3, 0x28]]) {
      await assert.rejects(
        callRaw(address, "/proto.Cache/CacheGet", new Uint8Array(bytes)),
        (error: grpc.ServiceError) => {
          assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
          assert.match(error.details, /^Bad message: /);
          return true;
        },
      );
    }
  } finally {
    await server.shutdown();
    await ops.close();
  }
});

test("a missing CacheItem is an empty value: INVALID_ARGUMENT", async () => {
  const ops = await openBackend({ kind: "memory" });
  const { server, address } = await serve(ops);
  try {
    const request = messageCodecOf("CacheSetRequest").encode({ key: "k" });
    await assert.rejects(callRaw(address, "/proto.Cache/CacheSet", request), {
      code: grpc.status.INVALID_ARGUMENT,
    });
  } finally {
    await server.shutdown();
    await ops.close();
  }
});

test("the health service answers SERVING, then NOT_SERVING at shutdown", async () => {
  const ops = await openBackend({ kind: "memory" });
  const { server, address } = await serve(ops);
  const health = healthTypes();
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  const check = (service: string) =>
    new Promise<number>((resolve, reject) =>
      raw.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        health.request,
        health.response,
        service,
        (error, reply) => error ? reject(error) : resolve(reply!),
      )
    );
  try {
    assert.equal(await check(""), 1);
    for (const name of ["Cache", "Counter", "Flag", "KV", "Set"]) {
      assert.equal(await check(`proto.${name}`), 1);
    }
    await assert.rejects(check("proto.Nope"), { code: grpc.status.NOT_FOUND });
    const watch = raw.makeServerStreamRequest(
      "/grpc.health.v1.Health/Watch",
      health.request,
      health.response,
      "",
    );
    const seen: number[] = [];
    const ended = new Promise<void>((resolve) => {
      watch.on("data", (status: number) => seen.push(status));
      watch.on("error", () => {});
      watch.on("status", () => resolve());
    });
    while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(seen, [1]);
    await server.shutdown();
    await ended;
    assert.deepEqual(seen, [1, 2]);
  } finally {
    raw.close();
    await server.shutdown();
    await ops.close();
  }
});

/** Health messages by hand: a request carries the service name, a response the status. */
function healthTypes() {
  return {
    request: (service: string) => {
      const bytes = new TextEncoder().encode(service);
      return Buffer.from(bytes.length === 0 ? [] : [0x0a, bytes.length, ...bytes]);
    },
    response: (bytes: Buffer) => {
      const reader = new BinaryReader(bytes);
      let status = 0;
      while (reader.pos < reader.len) {
        const [field, wireType] = reader.tag();
        if (field === 1) status = reader.uint32();
        else reader.skip(wireType);
      }
      return status;
    },
  };
}

test("reflection lists the services and describes them from the embedded protos", async () => {
  const ops = await openBackend({ kind: "memory" });
  const { server, address } = await serve(ops);
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  /** Sends one ServerReflectionRequest and returns the fields of the response. */
  const reflect = (version: string, request: number[]) =>
    new Promise<Map<number, Uint8Array[]>>((resolve, reject) => {
      const stream = raw.makeBidiStreamRequest(
        `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
        (value: number[]) => Buffer.from(value),
        (value: Buffer) => value,
      );
      stream.on("data", (reply: Buffer) => {
        resolve(fields(reply));
        stream.end();
      });
      stream.on("error", reject);
      stream.write(request);
    });
  try {
    for (const version of ["v1", "v1alpha"]) {
      // list_services (field 7) "*"
      const listed = await reflect(version, [0x3a, 1, 0x2a]);
      const services = fields(listed.get(6)![0]).get(1)!.map((service) =>
        new TextDecoder().decode(fields(service).get(1)![0])
      );
      assert.deepEqual(services.sort(), [
        "grpc.health.v1.Health",
        "proto.Batch",
        "proto.Cache",
        "proto.Counter",
        "proto.Flag",
        "proto.KV",
        "proto.Set",
        "proto.Watch",
      ]);
    }
    // file_containing_symbol (field 4) "proto.Counter"
    const symbol = [...new TextEncoder().encode("proto.Counter")];
    const described = await reflect("v1", [0x22, symbol.length, ...symbol]);
    const files = fields(described.get(4)![0]).get(1)!.map((bytes) =>
      descriptor.FileDescriptorProto.decode(bytes) as unknown as {
        name: string;
        service: { name: string; method: { name: string }[] }[];
      }
    );
    assert.equal(files[0].name, "purple.proto");
    const counter = files[0].service.find((service) => service.name === "Counter")!;
    assert.deepEqual(counter.method.map((method) => method.name), [
      "CounterGet",
      "CounterIncrement",
      "IncrementCounter",
      "GetCounter",
      "CounterDelete",
      "CounterList",
    ]);
  } finally {
    raw.close();
    await server.shutdown();
    await ops.close();
  }
});

/** The length-delimited fields of a message, by number. */
function fields(bytes: Uint8Array): Map<number, Uint8Array[]> {
  const reader = new BinaryReader(bytes);
  const found = new Map<number, Uint8Array[]>();
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (wireType !== WireType.LengthDelimited) {
      reader.skip(wireType);
      continue;
    }
    const list = found.get(field) ?? [];
    list.push(reader.bytes());
    found.set(field, list);
  }
  return found;
}

/** Operations whose every method throws `error` (or waits, then answers). */
function failing(error: Error): Operations {
  const fail = () => Promise.reject(error);
  return {
    ...Object.fromEntries(OPERATION_NAMES.map((name) => [name, fail])),
    close: () => Promise.resolve(),
  } as unknown as Operations;
}

test("an unexpected error is INTERNAL with a generic message; the details are logged", async () => {
  const lines: string[] = [];
  const secret = new Error("connection string redis://admin:hunter2@10.0.0.5 refused");
  const { server, client } = await serve(failing(secret), { log: (line) => lines.push(line) });
  try {
    await assert.rejects(client.cacheGet("k"), (error: unknown) => {
      assert.ok(error instanceof InternalError);
      assert.equal(error.message, "Internal server error");
      return true;
    });
    assert.ok(lines.some((line) => line.includes("hunter2") && line.includes("CacheGet")));
  } finally {
    await client.close();
    await server.shutdown();
  }
});

test("a backend that is down is UNAVAILABLE: UnavailableError with the server's message", async () => {
  const down = new UnavailableError("Cannot reach Redis at redis://127.0.0.1:1");
  const { server, client } = await serve(failing(down));
  try {
    await assert.rejects(client.setGet("s"), (error: unknown) => {
      assert.ok(error instanceof UnavailableError);
      assert.match(error.message, /Cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
      return true;
    });
  } finally {
    await client.close();
    await server.shutdown();
  }
});

test("a request over the message size limit is RESOURCE_EXHAUSTED: ValueTooLargeError", async () => {
  const limits = { ...DEFAULT_LIMITS, maxValueBytes: 1024 };
  const ops = await openBackend({ kind: "memory", limits });
  const { server, client } = await serve(ops, { limits });
  try {
    await client.kvPut("fits", new Uint8Array(1024));
    await assert.rejects(client.kvPut("over", new Uint8Array(1025)), ValueTooLargeError);
    await assert.rejects(client.kvPut("far-over", new Uint8Array(100_000)), ValueTooLargeError);
    await assert.rejects(client.cacheSet("far-over", "x".repeat(100_000)), ValueTooLargeError);
  } finally {
    await client.close();
    await server.shutdown();
    await ops.close();
  }
});

test("--debug logs one line per call: method, status, duration", async () => {
  const lines: string[] = [];
  const ops = await openBackend({ kind: "memory" });
  const { server, client } = await serve(ops, { debug: true, log: (line) => lines.push(line) });
  try {
    await client.flagSet("f", true);
    await assert.rejects(client.kvGet("missing"), NotFoundError);
    assert.match(lines[0], /^Starting up the gRPC server on port \d+$/);
    assert.match(lines[1], /^\/proto\.Flag\/FlagSet OK \d+\.\dms$/);
    assert.match(lines[2], /^\/proto\.KV\/KVGet NOT_FOUND \d+\.\dms$/);
    assert.equal(lines.length, 3);
  } finally {
    await client.close();
    await server.shutdown();
    await ops.close();
  }
});

/** Operations whose reads wait `ms` before answering, counting the calls. */
function slow(ms: number): Operations & { calls: number } {
  const ops = failing(new Error("not used")) as Operations & { calls: number };
  ops.calls = 0;
  ops.counterGet = async () => {
    ops.calls++;
    await new Promise((resolve) => setTimeout(resolve, ms));
    return 42n;
  };
  ops.counterIncrement = () => {
    ops.calls++;
    return Promise.resolve(1n);
  };
  return ops;
}

test("shutdown() lets calls in flight finish and refuses new ones", async () => {
  const ops = slow(300);
  const { server, client } = await serve(ops);
  try {
    const inFlight = client.counterGet("c");
    while (ops.calls === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const started = performance.now();
    await server.shutdown();
    assert.equal(await inFlight, 42n);
    assert.ok(performance.now() - started < 2_000, "shutdown waited for the grace timer");
    await assert.rejects(client.counterGet("c"), UnavailableError);
  } finally {
    await client.close();
  }
});

test("startGrpcServer() on a port in use throws Deno.errors.AddrInUse, as Deno.serve does", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const ops = await openBackend({ kind: "memory" });
  try {
    const options = { hostname: "127.0.0.1", port: (taken.addr as Deno.NetAddr).port };
    await assert.rejects(
      startGrpcServer(ops, { ...options, limits: DEFAULT_LIMITS, log: () => {} }),
      (error: unknown) => {
        assert.ok(error instanceof Deno.errors.AddrInUse);
        assert.match(error.message, /address already in use .* \(gRPC\)$/);
        return true;
      },
    );
  } finally {
    taken.close();
    await ops.close();
  }
});

test("a call past its deadline is an UnavailableError that says so", async () => {
  const ops = slow(600);
  const { server, address } = await serve(ops);
  const client = new GrpcClient(address, { timeoutMs: 150 });
  try {
    let started = performance.now();
    await assert.rejects(client.counterGet("c"), (error: unknown) => {
      assert.ok(error instanceof UnavailableError);
      assert.match(error.message, /deadline of 150 ms/);
      return true;
    });
    assert.ok(performance.now() - started < 500);
    started = performance.now();
    await assert.rejects(client.counterGet("c", { deadlineMs: 50 }), /deadline of 50 ms/);
    assert.ok(performance.now() - started < 500);
    await assert.rejects(client.counterGet("c", { timeoutMs: 60 }), /deadline of 60 ms/);
    assert.equal(await client.counterGet("c", { deadlineMs: 5_000 }), 42n);
    assert.equal(await client.counterGet("c", { deadlineMs: 0 }), 42n); // 0: no deadline.
  } finally {
    await client.close();
    await server.shutdown();
  }
});

test("an aborted signal cancels the call with the signal's reason", async () => {
  const ops = slow(1_000);
  const { server, client } = await serve(ops);
  try {
    const controller = new AbortController();
    const call = client.counterGet("c", { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("user gave up")), 50);
    await assert.rejects(call, /user gave up/);
    const calls = ops.calls;
    await assert.rejects(client.counterGet("c", { signal: AbortSignal.abort() }), {
      name: "AbortError",
    });
    assert.equal(ops.calls, calls, "an already aborted call was sent");
  } finally {
    await client.close();
    await server.shutdown();
  }
});

test("close() lets calls in flight finish; later calls are UnavailableError", async () => {
  const ops = slow(200);
  const { server, client } = await serve(ops);
  try {
    const inFlight = client.counterGet("c");
    while (ops.calls === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await client.close();
    await client.close();
    assert.equal(await inFlight, 42n);
    await assert.rejects(client.counterGet("c"), (error: unknown) => {
      assert.ok(error instanceof UnavailableError);
      assert.match(error.message, /GrpcClient is closed/);
      return true;
    });
  } finally {
    await server.shutdown();
  }
});

test("GrpcClient refuses what it cannot carry before any call", async () => {
  const ops = slow(0);
  const { server, client } = await serve(ops);
  try {
    const refused: Array<() => Promise<unknown>> = [
      () => client.counterIncrement("c", 1.5),
      () => client.counterIncrement("c", 2 ** 53 + 2),
      () => client.counterIncrement("c", 2n ** 63n),
      () => client.counterIncrement("", 1),
      () => client.counterIncrement("lone\ud800", 1),
      () => client.flagSet("f", "true" as unknown as boolean),
      () => client.cacheSet("k", "v", 0.5),
      () => client.kvPut("k", "lone\udc00"),
      () => client.kvPut("k", 42 as unknown as string),
      () => client.setAdd("s", ""),
    ];
    for (const call of refused) await assert.rejects(call(), InvalidArgumentError);
    assert.equal(ops.calls, 0);
    assert.equal(await client.counterIncrement("c", 1), 1n);
    assert.equal(ops.calls, 1);
    assert.throws(() => new GrpcClient("127.0.0.1:1", { timeoutMs: -1 }), InvalidArgumentError);
    await assert.rejects(client.counterGet("c", { deadlineMs: NaN }), InvalidArgumentError);
    assert.equal(ops.calls, 1);
  } finally {
    await client.close();
    await server.shutdown();
  }
});

test("a server that is not there is UnavailableError, quickly", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const client = new GrpcClient(`127.0.0.1:${port}`);
  try {
    const started = performance.now();
    await assert.rejects(client.cacheGet("k"), UnavailableError);
    assert.ok(performance.now() - started < 3_000);
  } finally {
    await client.close();
  }
});

test("one server, many clients: a unary round-trip rate (printed)", async () => {
  const ops = await openBackend({ kind: "memory" });
  const { server, client } = await serve(ops);
  try {
    await client.counterIncrement("warm", 1);
    const total = 5_000;
    let sent = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (sent < total) {
        sent++;
        await client.counterIncrement("rate", 1);
      }
    }));
    const seconds = (performance.now() - started) / 1000;
    assert.equal(await client.counterGet("rate"), BigInt(total));
    console.log(
      `    ${
        Math.round(total / seconds)
      } CounterIncrement calls/s (client and server in one process)`,
    );
  } finally {
    await client.close();
    await server.shutdown();
    await ops.close();
  }
});

// ---------------------------------------------------------------------------------------------
// The GOAWAY guard (server/_grpc_goaway_guard.ts), against denoland/deno#36788.

/** An HTTP/2 frame: 9-byte header and payload. */
function frame(type: number, payload: number[], stream = 1): number[] {
  const length = payload.length;
  return [length >> 16, (length >> 8) & 0xff, length & 0xff, type, 0, 0, 0, 0, stream, ...payload];
}

test("GoawayFilter drops GOAWAY frames wherever the chunks are cut", () => {
  const preface = [...new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")];
  const settings = frame(0x4, [0, 3, 0, 0, 0, 100], 0);
  const headers = frame(0x1, Array.from({ length: 20 }, (_, i) => i));
  const goaway = frame(0x7, [0, 0, 0, 1, 0, 0, 0, 0, 0x64, 0x65, 0x62, 0x75, 0x67], 0);
  const data = frame(0x0, Array.from({ length: 40 }, (_, i) => 200 - i));
  const empty = frame(0x7, [], 0); // Malformed (too short), dropped all the same.
  const input = [...preface, ...settings, ...headers, ...goaway, ...data, ...empty, ...goaway];
  const expected = [...preface, ...settings, ...headers, ...data];
  const run = (cuts: number[]) => {
    const filter = new GoawayFilter();
    const out: number[] = [];
    let from = 0;
    for (const to of [...cuts, input.length]) {
      for (const part of filter.filter(Buffer.from(input.slice(from, to)))) out.push(...part);
      from = to;
    }
    assert.deepEqual(out, expected, `cut at ${cuts}`);
    assert.equal(filter.dropped, 3);
  };
  run([]);
  for (let cut = 1; cut < input.length; cut++) run([cut]);
  for (let a = 1; a < input.length; a += 3) {
    for (let b = a + 1; b < input.length; b += 5) run([a, b]);
  }
  run(Array.from({ length: input.length - 1 }, (_, i) => i + 1)); // One byte at a time.
  return Promise.resolve();
});

test("GoawayFilter passes a chunk without GOAWAY through as is", () => {
  const filter = new GoawayFilter();
  filter.filter(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  const chunk = Buffer.from([...frame(0x1, [1, 2, 3]), ...frame(0x0, [4, 5])]);
  const out = filter.filter(chunk);
  assert.equal(out.length, 1);
  assert.equal(out[0].buffer, chunk.buffer);
  return Promise.resolve();
});

test("the server survives a client in another process closing after 300 calls", async () => {
  const ops = await openBackend({ kind: "memory" });
  const { server, address, client } = await serve(ops);
  try {
    const script = `
      import { GrpcClient } from "@purple/client/grpc";
      const client = new GrpcClient(${JSON.stringify(address)});
      for (let i = 0; i < 300; i++) await client.counterIncrement("closing", 1);
      await client.close();
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script],
      cwd: new URL("..", import.meta.url),
      stdout: "null",
      stderr: "inherit",
    });
    for (let round = 1; round <= 2; round++) {
      const { success } = await child.output();
      assert.ok(success, "the client process failed");
      // Without the guard, Deno 2.9.6 aborts this process when the client's GOAWAY arrives.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(await client.counterGet("closing"), BigInt(300 * round));
    }
  } finally {
    await client.close();
    await server.shutdown();
    await ops.close();
  }
});

test("importing @purple/client (HttpClient) does not load grpc-js", async () => {
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "client/mod.ts"],
    cwd: new URL("..", import.meta.url),
    stderr: "inherit",
  }).output();
  assert.ok(info.success);
  const graph = JSON.parse(new TextDecoder().decode(info.stdout));
  const specifiers: string[] = graph.modules.map((module: { specifier: string }) =>
    module.specifier
  );
  assert.ok(specifiers.some((specifier) => specifier.endsWith("/protocol/errors.ts")));
  assert.deepEqual(specifiers.filter((specifier) => !specifier.startsWith("file:")), []);
  assert.deepEqual(specifiers.filter((specifier) => /grpc|wire\.ts|\/gen\//i.test(specifier)), []);
});

// ---------------------------------------------------------------------------------------------
// GrpcClient in Node: bundled with `deno bundle`, grpc-js left external, run by `node`.

const NODE_MISSING = await new Deno.Command("node", { args: ["--version"] }).output().then(
  ({ success }) => success ? undefined : "`node --version` failed",
  () => "node is not on PATH",
);
if (NODE_MISSING !== undefined) {
  console.error(`!!! SKIPPING the Node test of GrpcClient: ${NODE_MISSING} !!!`);
}

Deno.test({
  name: "GrpcClient works in Node",
  ignore: NODE_MISSING !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "purple-node-" });
    const ops = await openBackend({ kind: "memory" });
    const { server, address } = await serve(ops);
    try {
      const bundle = await new Deno.Command(Deno.execPath(), {
        args: [
          "bundle",
          "--external",
          "@grpc/grpc-js",
          "-o",
          `${dir}/client.mjs`,
          "client/grpc.ts",
        ],
        cwd: new URL("..", import.meta.url),
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.ok(bundle.success, new TextDecoder().decode(bundle.stderr));
      // Point the bare import at the grpc-js that Deno installed (node_modules is not above dir).
      const grpcJs = await Deno.realPath(new URL("../node_modules/@grpc/grpc-js", import.meta.url));
      const code = (await Deno.readTextFile(`${dir}/client.mjs`)).replaceAll(
        'from "@grpc/grpc-js"',
        `from ${JSON.stringify(new URL(`file://${grpcJs}/build/src/index.js`).href)}`,
      );
      await Deno.writeTextFile(`${dir}/client.mjs`, code);
      await Deno.writeTextFile(
        `${dir}/use.mjs`,
        `import { GrpcClient } from "./client.mjs";
        const client = new GrpcClient(${JSON.stringify(address)});
        const results = [String(await client.counterIncrement("node", 9007199254740993n))];
        await client.kvPut("node", new Uint8Array([0, 255, 7]));
        results.push([...await client.kvGet("node")].join(","));
        await client.cacheGet("missing").catch((error) => results.push(error.name));
        await client.close();
        console.log(JSON.stringify(results));`,
      );
      const run = await new Deno.Command("node", { args: [`${dir}/use.mjs`], stderr: "piped" })
        .output();
      assert.ok(run.success, new TextDecoder().decode(run.stderr));
      assert.deepEqual(JSON.parse(new TextDecoder().decode(run.stdout)), [
        "9007199254740993",
        "0,255,7",
        "NotFoundError",
      ]);
    } finally {
      await server.shutdown();
      await ops.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
