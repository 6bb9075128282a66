// Access control: tokens on every HTTP route and every gRPC method (401/403,
// UNAUTHENTICATED/PERMISSION_DENIED, read-only tokens may read), open probes, tokens never in a
// log line, the constant-time comparison, the CLI flags and variables, and the loopback default
// with its start-up lines (the real process).

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { HttpClient, type Operations } from "@purple/client";
import {
  InvalidArgumentError,
  PermissionDeniedError,
  UnauthenticatedError,
} from "@purple/client/errors";
import { GrpcClient } from "@purple/client/grpc";
import {
  isRead,
  OPERATION_NAMES,
  type OperationName,
  OPERATIONS,
  type WireOperationName,
} from "@purple/protocol";
import {
  type Arguments,
  GRPC_BINDINGS,
  grpcMethod,
  grpcServices,
  type MethodDefinition,
  type ServedMethod,
} from "@purple/protocol/wire";
import { DEFAULT_LIMITS, openBackend } from "../backends/mod.ts";
import { type CliConfig, parseCli, UsageError } from "../server/config.ts";
import { createHttpApp, startHttpServer } from "../server/http.ts";
import { startGrpcServer } from "../server/grpc.ts";
import type { RunningServer } from "../server/options.ts";
import {
  AccessControl,
  accessLines,
  constantTimeEqual,
  isLoopback,
  tokenProblem,
} from "../server/_auth.ts";
import { runPurple, startPurple } from "./_purple.ts";
import { ROOT, start } from "./_process.ts";

const FULL = "full-access-token-0123456789";
const FULL_2 = "second-full-token-9876543210";
const READ = "read-only-token-abcdefghijkl";
const WRONG = "wrong-token-zzzzzzzzzzzzzzzz";
const SECRETS = [FULL, FULL_2, READ, WRONG];
const AUTH = { full: [FULL, FULL_2], read: [READ] };

/** A grpc-js test with the sanitizers off: grpc-js keeps timers and sockets of its own. */
function test(name: string, fn: () => Promise<void> | void): void {
  Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });
}

/** Asserts that no text holds a token, nor a long piece of one. */
function assertNoSecret(texts: string[]): void {
  for (const text of texts) {
    for (const secret of SECRETS) {
      assert.ok(!text.includes(secret.slice(0, 12)), `a token leaked into: ${text}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The pieces: constant-time comparison, token rules, what a token may do.

test("constantTimeEqual() is true for equal bytes and false for any difference", () => {
  const a = new Uint8Array(32).map((_, i) => i);
  assert.equal(constantTimeEqual(a, a.slice()), true);
  assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
  for (const position of [0, 1, 15, 31]) {
    const b = a.slice();
    b[position] ^= 0x80;
    assert.equal(constantTimeEqual(a, b), false, `a difference at byte ${position}`);
  }
  assert.equal(constantTimeEqual(a, a.subarray(0, 31)), false, "a prefix");
  assert.equal(constantTimeEqual(a.subarray(0, 31), a), false, "a longer array");
});

test("AccessControl keeps digests only, not the tokens", () => {
  const access = new AccessControl(AUTH);
  const seen = Deno.inspect(access, { depth: 10, showHidden: true }) + JSON.stringify(access);
  assertNoSecret([seen]);
});

test("AccessControl.authenticate() tells full from read-only and refuses the rest", () => {
  const access = new AccessControl(AUTH);
  assert.equal(access.authenticate(`Bearer ${FULL}`), "full");
  assert.equal(access.authenticate(`Bearer ${FULL_2}`), "full");
  assert.equal(access.authenticate(`Bearer ${READ}`), "read");
  assert.equal(access.authenticate(`bearer  ${FULL} `), "full", "the scheme is case-insensitive");
  for (
    const value of [
      undefined,
      null,
      "",
      `Bearer ${WRONG}`,
      `Bearer ${FULL.slice(0, -1)}`,
      `Bearer ${FULL}x`,
      `Basic ${btoa(`user:${FULL}`)}`,
      FULL,
      "Bearer",
      `Bearer ${FULL} ${READ}`,
    ]
  ) {
    assert.throws(() => access.authenticate(value), (error: Error) => {
      assert.ok(error instanceof UnauthenticatedError, `${value}: ${error.name}`);
      assertNoSecret([error.message]);
      return true;
    });
  }
});

/** The operations a read-only token may call, and the others, from the operation table. */
const READS = OPERATION_NAMES.filter(isRead);
const WRITES = OPERATION_NAMES.filter((name) => !isRead(name));

test("the operations that read are the ones served on GET, and batch, checked one by one", () => {
  assert.ok(READS.length > 0 && WRITES.length > 0);
  for (const name of OPERATION_NAMES) {
    if (OPERATIONS[name].access === "each") continue;
    assert.equal(OPERATIONS[name].http.method === "GET", isRead(name), name);
  }
  assert.deepEqual(OPERATION_NAMES.filter((name) => OPERATIONS[name].access === "each"), [
    "batch",
  ]);
});

test("AccessControl.authorize() lets a read-only token call the read operations only", () => {
  const access = new AccessControl(AUTH);
  for (const operation of READS) access.authorize(`Bearer ${READ}`, operation, true);
  for (const operation of WRITES) {
    access.authorize(`Bearer ${FULL}`, operation, true);
    assert.throws(
      () => access.authorize(`Bearer ${READ}`, operation, false),
      PermissionDeniedError,
    );
  }
  access.authorize(`Bearer ${READ}`, undefined, false);
  assert.throws(() => access.authorize(`Bearer ${READ}`, undefined, true), PermissionDeniedError);
});

test("AccessControl refuses no tokens at all, and tokens too weak to be secrets", () => {
  assert.throws(() => new AccessControl({ full: [], read: [] }), TypeError);
  assert.throws(() => new AccessControl({ full: ["short"], read: [] }), TypeError);
});

test("tokenProblem() wants 16 visible ASCII characters or more, without commas", () => {
  assert.equal(tokenProblem("0123456789abcdef"), undefined);
  assert.equal(tokenProblem("A-Za-z0-9._~+/=!#$%&'()*:;<>?@[]^`{|}\"\\"), undefined);
  for (
    const bad of [
      "0123456789abcde",
      "",
      "0123456789 abcdef",
      "0123456789,abcdef",
      "é123456789abcdef",
    ]
  ) {
    assert.ok(tokenProblem(bad) !== undefined, JSON.stringify(bad));
    assert.ok(!tokenProblem(bad)!.includes(bad) || bad === "", "the reason does not quote it");
  }
});

test("isLoopback() knows the loopback names and addresses", () => {
  for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"]) {
    assert.equal(isLoopback(host), true, host);
  }
  for (const host of ["0.0.0.0", "::", "10.0.0.1", "purple.internal", "128.0.0.1"]) {
    assert.equal(isLoopback(host), false, host);
  }
});

test("accessLines() says where Purple listens and warns when anyone may reach it", () => {
  assert.deepEqual(accessLines("127.0.0.1", undefined, false), [
    "No access token is set: listening on 127.0.0.1 only " +
    "(use --host to change it, --auth-token to require a token)",
  ]);
  const [open] = accessLines("0.0.0.0", undefined, true);
  assert.match(open, /^WARNING: no access token is set and Purple listens on 0\.0\.0\.0: anyone/);
  assert.deepEqual(accessLines("::1", AUTH, false), [
    "Access tokens required: 2 full-access tokens, 1 read-only token; " +
    "/ping and grpc.health.v1.Health stay open",
  ]);
  const plaintext = accessLines("0.0.0.0", { full: [FULL], read: [] }, false);
  assert.match(plaintext[0], /^Access tokens required: 1 full-access token, 0 read-only tokens;/);
  assert.match(plaintext[1], /^WARNING: Purple listens on 0\.0\.0\.0 without TLS/);
  assert.equal(accessLines("0.0.0.0", AUTH, true).length, 1, "no warning with TLS");
  assertNoSecret(accessLines("0.0.0.0", AUTH, false));
});

// ---------------------------------------------------------------------------------------------
// HTTP: every route, through app.request() (no socket).

interface Route {
  method: string;
  path: string;
  body?: string;
}

/** A batch of reads only (which a read-only token may run). */
const READ_BATCH = JSON.stringify({
  operations: [{ op: "counterGet", key: "c" }, { op: "kvGet", key: "k" }, {
    op: "setGet",
    set: "s",
  }],
});

/** The key each service's samples use. */
const SAMPLE_KEY = { cache: "k", counters: "c", flags: "f", kv: "k", sets: "s" } as const;

/**
 * The requests each operation is tried with (its query and body; its method and route come from
 * the operation table): the writes leave data every read finds (a 200 each).
 */
const HTTP_SAMPLES: { [Op in OperationName]: Array<{ query?: string; body?: string }> } = {
  cacheGet: [{}],
  cacheSet: [{ query: "?value=v&ttl=60" }],
  counterIncrement: [{ query: "?increment=1" }],
  counterGet: [{}],
  flagGet: [{}],
  flagSet: [{ query: "?value=true" }],
  kvGet: [{}],
  kvPut: [{ body: "v" }],
  kvDelete: [{}],
  setGet: [{}],
  setAdd: [{ query: "?item=a" }, { query: "?item=b" }],
  setRemove: [{ query: "?item=b" }],
  kvGetEntry: [{}],
  cacheDelete: [{}],
  counterDelete: [{}],
  flagDelete: [{}],
  setDelete: [{}],
  cacheList: [{ query: "?prefix=k" }],
  counterList: [{ query: "?limit=5" }],
  flagList: [{}],
  kvList: [{ query: "?prefix=k&limit=1000" }],
  setList: [{}],
  batch: [{ body: READ_BATCH }],
  watch: [{ query: "?cache=k&counters=c&flags=f&kv=k&sets=s" }],
};

function samplesOf(names: readonly OperationName[]): Route[] {
  return names.flatMap((name) => {
    const { method, path } = OPERATIONS[name].http;
    const service = path.split("/")[1] as keyof typeof SAMPLE_KEY;
    const target = path.replace(":key", SAMPLE_KEY[service]);
    return HTTP_SAMPLES[name].map(({ query = "", body }) => ({
      method,
      path: target + query,
      body,
    }));
  });
}

/** Writes that leave data, then reads (and a HEAD), then the writes that delete it. */
const HTTP_WRITES = samplesOf(WRITES.filter((name) => OPERATIONS[name].http.method !== "DELETE"));
const HTTP_READS = samplesOf(READS);
HTTP_READS.push({ method: "HEAD", path: "/cache/k" });
const HTTP_DELETES = samplesOf(WRITES.filter((name) => OPERATIONS[name].http.method === "DELETE"));
const HTTP_ROUTES = [...HTTP_WRITES, ...HTTP_READS, ...HTTP_DELETES];

function send(
  app: ReturnType<typeof createHttpApp>,
  route: Route,
  authorization?: string,
): Promise<Response> {
  const headers = new Headers({ "content-type": "application/octet-stream" });
  if (authorization !== undefined) headers.set("authorization", authorization);
  return Promise.resolve(
    app.request(route.path, { method: route.method, headers, body: route.body }),
  );
}

async function counterOf(app: ReturnType<typeof createHttpApp>): Promise<string> {
  const answer = await send(app, { method: "GET", path: "/counters/c" }, `Bearer ${FULL}`);
  return await answer.text();
}

test("HTTP: every route answers 401 with a Bearer challenge without a valid token", async () => {
  const ops = await openBackend({ kind: "memory" });
  try {
    const app = createHttpApp(ops, { limits: DEFAULT_LIMITS, auth: AUTH });
    const refusals = [
      [undefined, 'Bearer realm="purple"'],
      [`Bearer ${WRONG}`, 'Bearer realm="purple", error="invalid_token"'],
      [`Bearer ${FULL.slice(1)}`, 'Bearer realm="purple", error="invalid_token"'],
      [`Basic ${btoa(`me:${FULL}`)}`, 'Bearer realm="purple", error="invalid_token"'],
      [FULL, 'Bearer realm="purple", error="invalid_token"'],
    ] as const;
    const routes = [
      ...HTTP_ROUTES,
      { method: "GET", path: "/nowhere" },
      { method: "POST", path: "/cache/k" },
    ];
    for (const route of routes) {
      for (const [authorization, challenge] of refusals) {
        const answer = await send(app, route, authorization);
        const what = `${route.method} ${route.path} with ${authorization?.slice(0, 6)}`;
        assert.equal(answer.status, 401, what);
        assert.equal(answer.headers.get("www-authenticate"), challenge, what);
        const text = await answer.text();
        if (route.method !== "HEAD") {
          assert.match(JSON.parse(text).error, /access token|authorization/i, what);
        }
        assertNoSecret([text]);
      }
    }
    assert.equal(await counterOf(app), '{"counter":"c","value":0}', "no write went through");
    assert.equal(
      (await send(app, { method: "GET", path: "/flags/f" }, `Bearer ${FULL}`)).status,
      200,
    );
  } finally {
    await ops.close();
  }
});

test("HTTP: a read-only token reads every route and gets 403 on every write", async () => {
  const ops = await openBackend({ kind: "memory" });
  try {
    const app = createHttpApp(ops, { limits: DEFAULT_LIMITS, auth: AUTH });
    for (const route of HTTP_WRITES) {
      const answer = await send(app, route, `Bearer ${FULL}`);
      assert.ok(answer.ok, `${route.method} ${route.path}: ${answer.status}`);
      await answer.body?.cancel();
    }
    for (const route of HTTP_READS) {
      const answer = await send(app, route, `Bearer ${READ}`);
      assert.equal(answer.status, 200, `${route.method} ${route.path}`);
      await answer.body?.cancel();
    }
    assert.equal(
      await (await send(app, { method: "GET", path: "/sets/s" }, `Bearer ${READ}`)).text(),
      '{"set":"s","items":["a","b"]}',
    );
    for (const route of [...HTTP_WRITES, ...HTTP_DELETES, { method: "POST", path: "/cache/k" }]) {
      const answer = await send(app, route, `Bearer ${READ}`);
      const what = `${route.method} ${route.path}`;
      assert.equal(answer.status, 403, what);
      assert.equal(
        answer.headers.get("www-authenticate"),
        'Bearer realm="purple", error="insufficient_scope"',
      );
      assert.match((await answer.json()).error, /^Cannot call \w+: the access token is read-only/);
    }
    assert.equal(await counterOf(app), '{"counter":"c","value":1}', "no write went through");
    assert.equal((await send(app, { method: "GET", path: "/kv/k" }, `Bearer ${READ}`)).status, 200);
    assert.equal(
      (await send(app, { method: "GET", path: "/nowhere" }, `Bearer ${READ}`)).status,
      404,
      "a read-only token finds no route there either",
    );
    for (const route of HTTP_DELETES) {
      const answer = await send(app, route, `Bearer ${FULL_2}`);
      assert.ok(answer.ok, `${route.method} ${route.path}: ${answer.status}`);
      await answer.body?.cancel();
    }
    const post = await send(app, { method: "POST", path: "/cache/k" }, `Bearer ${FULL}`);
    assert.equal(post.status, 405, "a full token gets past the guard to the router");
    await post.body?.cancel();
  } finally {
    await ops.close();
  }
});

test("HTTP: /ping stays open without a token, and without tokens nothing needs one", async () => {
  const ops = await openBackend({ kind: "memory" });
  try {
    const app = createHttpApp(ops, { limits: DEFAULT_LIMITS, auth: AUTH });
    assert.equal((await send(app, { method: "GET", path: "/ping" })).status, 200);
    assert.equal((await send(app, { method: "HEAD", path: "/ping" })).status, 200);
    assert.equal(
      (await send(app, { method: "GET", path: "/ping" }, `Bearer ${WRONG}`)).status,
      200,
    );
    const open = createHttpApp(ops, { limits: DEFAULT_LIMITS });
    for (const route of HTTP_ROUTES) {
      const answer = await send(open, route);
      assert.ok(answer.status < 400, `${route.method} ${route.path}: ${answer.status}`);
      await answer.body?.cancel();
    }
  } finally {
    await ops.close();
  }
});

/** Starts both servers over one memory backend with the test tokens, logging with --debug. */
async function serveBoth(): Promise<{
  http: RunningServer;
  grpc: RunningServer;
  lines: string[];
  close(): Promise<void>;
}> {
  const ops: Operations = await openBackend({ kind: "memory" });
  const lines: string[] = [];
  const options = {
    hostname: "127.0.0.1",
    port: 0,
    limits: DEFAULT_LIMITS,
    debug: true,
    log: (line: string) => lines.push(line),
    auth: AUTH,
  };
  const http = await startHttpServer(ops, options);
  const grpcServer = await startGrpcServer(ops, options);
  return {
    http,
    grpc: grpcServer,
    lines,
    async close() {
      await http.shutdown();
      await grpcServer.shutdown();
      await ops.close();
    },
  };
}

test("HttpClient sends its token and maps 401 and 403 to the typed errors", async () => {
  const both = await serveBoth();
  const url = `http://127.0.0.1:${both.http.port}`;
  try {
    const full = new HttpClient(url, { token: FULL });
    const read = new HttpClient(url, { token: READ });
    assert.equal(await full.counterIncrement("hits", 2), 2n);
    assert.equal(await read.counterGet("hits"), 2n);
    await full.kvPut("k", "v");
    assert.deepEqual(await read.kvGet("k"), new TextEncoder().encode("v"));
    await assert.rejects(read.kvPut("k", "w"), PermissionDeniedError);
    await assert.rejects(read.counterIncrement("hits", 1), PermissionDeniedError);
    await assert.rejects(new HttpClient(url).cacheGet("k"), UnauthenticatedError);
    await assert.rejects(new HttpClient(url, { token: WRONG }).setGet("s"), UnauthenticatedError);
    const both = { headers: { authorization: `Bearer ${WRONG}` }, token: READ };
    assert.equal(await new HttpClient(url, both).flagGet("f"), false, "the token option wins");
    assert.equal(await full.counterGet("hits"), 2n, "the refused increment did not happen");
    assert.throws(() => new HttpClient(url, { token: "two words" }), InvalidArgumentError);
    assert.throws(() => new HttpClient(url, { token: "" }), InvalidArgumentError);
  } finally {
    await both.close();
  }
});

// ---------------------------------------------------------------------------------------------
// gRPC: every method, with a raw grpc-js client and with GrpcClient.

/** The arguments each operation is called with over gRPC (as in the HTTP samples). */
const GRPC_SAMPLES: { [Op in WireOperationName]: Arguments<Op> } = {
  batch: [[{ op: "counterGet", args: ["c"] }, { op: "flagGet", args: ["f"] }]],
  cacheGet: ["k"],
  cacheSet: ["k", "v", 60],
  counterIncrement: ["c", 1n],
  counterGet: ["c"],
  flagGet: ["f"],
  flagSet: ["f", true],
  kvGetEntry: ["k"],
  kvPut: ["k", new TextEncoder().encode("v")],
  kvDelete: ["k"],
  setGet: ["s"],
  setAdd: ["s", "a"],
  setRemove: ["s", "b"],
  cacheDelete: ["k"],
  counterDelete: ["c"],
  flagDelete: ["f"],
  setDelete: ["s"],
  cacheList: [{ prefix: "k" }],
  counterList: [{}],
  flagList: [{ limit: 3 }],
  kvList: [{}],
  setList: [{ prefix: "s" }],
  watch: [{ cache: ["k"], counters: ["c"], flags: ["f"], kv: ["k"], sets: ["s"] }],
};

/** A method of Purple's services, and the request it is tried with. */
interface GrpcSample {
  name: string;
  method: ServedMethod;
  request: unknown;
}

/**
 * Every method of Purple's services (earlier names too), from the operation table: the writes
 * that leave data, then the reads, then the writes that delete it (as the HTTP samples).
 */
function grpcMethods(): GrpcSample[] {
  const samples: GrpcSample[] = [];
  for (const methods of Object.values(grpcServices())) {
    for (const [name, method] of Object.entries(methods)) {
      const binding = GRPC_BINDINGS[method.operation] as { request(...args: unknown[]): unknown };
      samples.push({ name, method, request: binding.request(...GRPC_SAMPLES[method.operation]) });
    }
  }
  const rank = ({ method }: GrpcSample) =>
    isRead(method.operation) ? 1 : OPERATIONS[method.operation].http.method === "DELETE" ? 2 : 0;
  return samples.sort((a, b) => rank(a) - rank(b));
}

/** Whether a sample deletes data (the table serves its operation on HTTP DELETE). */
const deletes = ({ method }: GrpcSample) => OPERATIONS[method.operation].http.method === "DELETE";

function rawCall(
  client: grpc.Client,
  method: MethodDefinition<unknown, unknown>,
  request: unknown,
  authorization?: string,
): Promise<number> {
  const metadata = new grpc.Metadata();
  if (authorization !== undefined) metadata.set("authorization", authorization);
  if (method.responseStream) {
    // A watch: OK once its first state came (then cancelled), else its status.
    return new Promise((resolve) => {
      const call = client.makeServerStreamRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        metadata,
        { deadline: Date.now() + 5_000 },
      );
      call.on("data", () => {
        resolve(grpc.status.OK);
        call.cancel();
      });
      call.on("error", (error: grpc.ServiceError) => resolve(error.code));
    });
  }
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      metadata,
      { deadline: Date.now() + 5_000 },
      (error) => resolve(error ? error.code : grpc.status.OK),
    )
  );
}

test("gRPC: every method is UNAUTHENTICATED without a valid token", async () => {
  const both = await serveBoth();
  const client = new grpc.Client(`127.0.0.1:${both.grpc.port}`, grpc.credentials.createInsecure());
  try {
    for (const { name, method, request } of grpcMethods()) {
      for (const authorization of [undefined, `Bearer ${WRONG}`, FULL, `Bearer ${READ}x`]) {
        const code = await rawCall(client, method, request, authorization);
        assert.equal(
          code,
          grpc.status.UNAUTHENTICATED,
          `${name} with ${authorization?.slice(0, 6)}`,
        );
      }
    }
    const counter = grpcMethod("counterGet");
    const value = await new Promise((resolve) => {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${FULL}`);
      client.makeUnaryRequest(
        counter.path,
        counter.requestSerialize,
        counter.responseDeserialize,
        { key: "c" },
        metadata,
        (_error, reply) => resolve(reply?.value),
      );
    });
    assert.equal(value, 0n, "no write went through");
  } finally {
    client.close();
    await both.close();
  }
});

test("gRPC: a read-only token calls every get and is PERMISSION_DENIED on every write", async () => {
  const both = await serveBoth();
  const client = new grpc.Client(`127.0.0.1:${both.grpc.port}`, grpc.credentials.createInsecure());
  try {
    const methods = grpcMethods();
    for (const sample of methods) {
      if (isRead(sample.method.operation) || deletes(sample)) continue;
      const code = await rawCall(client, sample.method, sample.request, `Bearer ${FULL}`);
      assert.equal(code, grpc.status.OK, `${sample.name} with the full token`);
    }
    for (const { name, method, request } of methods) {
      const code = await rawCall(client, method, request, `Bearer ${READ}`);
      const read = isRead(method.operation);
      assert.equal(
        code,
        read ? grpc.status.OK : grpc.status.PERMISSION_DENIED,
        `${name} (read-only)`,
      );
    }
    const purple = new GrpcClient(`127.0.0.1:${both.grpc.port}`, { token: READ });
    assert.equal(await purple.counterGet("c"), 2n, "the refused increments did not happen");
    assert.deepEqual(await purple.kvGet("k"), new TextEncoder().encode("v"));
    await purple.close();
    for (const sample of methods.filter(deletes)) {
      const code = await rawCall(client, sample.method, sample.request, `Bearer ${FULL_2}`);
      assert.equal(code, grpc.status.OK, `${sample.name} with the second full token`);
    }
  } finally {
    client.close();
    await both.close();
  }
});

test("gRPC: the health service stays open; reflection needs a token, read-only is enough", async () => {
  const both = await serveBoth();
  const address = `127.0.0.1:${both.grpc.port}`;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const bytes = {
    requestSerialize: (value: Uint8Array) => Buffer.from(value),
    responseDeserialize: (value: Buffer) => new Uint8Array(value),
  };
  try {
    const health = await new Promise<Uint8Array>((resolve, reject) =>
      client.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        bytes.requestSerialize,
        bytes.responseDeserialize,
        new Uint8Array(0),
        (error, reply) => error ? reject(error) : resolve(reply!),
      )
    );
    assert.deepEqual([...health], [0x08, 0x01], "SERVING, without a token");

    const reflect = (authorization?: string) =>
      new Promise<{ code: number; replies: number }>((resolve) => {
        const metadata = new grpc.Metadata();
        if (authorization) metadata.set("authorization", authorization);
        const call = client.makeBidiStreamRequest(
          "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
          bytes.requestSerialize,
          bytes.responseDeserialize,
          metadata,
        );
        let replies = 0;
        call.on("data", () => replies++);
        call.on("error", (error: grpc.ServiceError) => resolve({ code: error.code, replies }));
        call.on("status", (status: grpc.StatusObject) => resolve({ code: status.code, replies }));
        call.write(new Uint8Array([0x3a, 0x00])); // list_services: ""
        call.end();
      });
    assert.deepEqual(await reflect(), { code: grpc.status.UNAUTHENTICATED, replies: 0 });
    assert.deepEqual(await reflect(`Bearer ${WRONG}`), {
      code: grpc.status.UNAUTHENTICATED,
      replies: 0,
    });
    assert.deepEqual(await reflect(`Bearer ${READ}`), { code: grpc.status.OK, replies: 1 });
  } finally {
    client.close();
    await both.close();
  }
});

test("a read-only token runs batches of reads, and no batch that writes, over both protocols", async () => {
  const both = await serveBoth();
  const clients = [
    [
      "http",
      new HttpClient(`http://127.0.0.1:${both.http.port}`, { token: FULL }),
      new HttpClient(`http://127.0.0.1:${both.http.port}`, { token: READ }),
    ],
    [
      "grpc",
      new GrpcClient(`127.0.0.1:${both.grpc.port}`, { token: FULL }),
      new GrpcClient(`127.0.0.1:${both.grpc.port}`, { token: READ }),
    ],
  ] as const;
  try {
    for (const [protocol, full, read] of clients) {
      const key = `batch-${protocol}`;
      await full.counterIncrement(key, 3);
      const reads = await read.batch([
        { op: "counterGet", args: [key] },
        { op: "kvGetEntry", args: [key] },
        { op: "setGet", args: [key] },
      ]);
      assert.deepEqual(reads[0], { ok: true, value: 3n }, protocol);
      assert.ok(!reads[1].ok && reads[1].error.code === "NOT_FOUND", protocol);
      const atomicReads = await read.batch([
        { op: "counterGet", args: [key] },
        { op: "flagGet", args: [key] },
      ], { atomic: true });
      assert.deepEqual(atomicReads, [{ ok: true, value: 3n }, { ok: true, value: false }]);
      for (const atomic of [false, true]) {
        await assert.rejects(
          read.batch([
            { op: "counterGet", args: [key] },
            { op: "counterIncrement", args: [key, 1] },
          ], { atomic }),
          PermissionDeniedError,
        );
      }
      await assert.rejects(
        read.batch([{ op: "counterGet", args: [key] }, { op: "setDelete", args: [key] }]),
        /operation 1 \(setDelete\) writes, and the access token is read-only/,
      );
      assert.equal(await full.counterGet(key), 3n, `${protocol}: no refused write went through`);
      const writes = await full.batch([{ op: "counterIncrement", args: [key, 1] }]);
      assert.deepEqual(writes, [{ ok: true, value: 4n }]);
    }
  } finally {
    await Promise.all(clients.flatMap(([, full, read]) => [full.close(), read.close()]));
    await both.close();
  }
});

test("GrpcClient sends its token and maps UNAUTHENTICATED and PERMISSION_DENIED", async () => {
  const both = await serveBoth();
  const address = `127.0.0.1:${both.grpc.port}`;
  const full = new GrpcClient(address, { token: FULL });
  const read = new GrpcClient(address, { token: READ });
  const none = new GrpcClient(address);
  const wrong = new GrpcClient(address, { token: WRONG });
  try {
    assert.deepEqual(await full.setAdd("s", "x"), ["x"]);
    assert.deepEqual(await read.setGet("s"), ["x"]);
    await assert.rejects(read.setAdd("s", "y"), PermissionDeniedError);
    await assert.rejects(read.flagSet("f", true), PermissionDeniedError);
    await assert.rejects(none.setGet("s"), UnauthenticatedError);
    await assert.rejects(wrong.cacheSet("k", "v"), UnauthenticatedError);
    assert.deepEqual(await full.setGet("s"), ["x"], "the refused add did not happen");
    assert.throws(() => new GrpcClient(address, { token: "a\nb" }), InvalidArgumentError);
  } finally {
    await Promise.all([full, read, none, wrong].map((client) => client.close()));
    await both.close();
  }
});

test("no log line holds a token, and --debug logs the refused requests", async () => {
  const both = await serveBoth();
  const httpUrl = `http://127.0.0.1:${both.http.port}`;
  const grpcAddress = `127.0.0.1:${both.grpc.port}`;
  const clients = [FULL, READ, WRONG, undefined].map((token) => ({
    http: new HttpClient(httpUrl, { token }),
    grpc: new GrpcClient(grpcAddress, { token }),
  }));
  try {
    for (const { http, grpc: viaGrpc } of clients) {
      await Promise.allSettled([
        http.cacheSet("k", "v"),
        http.cacheGet("k"),
        http.kvPut("k", "v"),
        viaGrpc.kvPut("k", "v"),
        viaGrpc.counterGet("c"),
        viaGrpc.kvGet("missing"),
      ]);
    }
    await fetch(`${httpUrl}/kv/k`, { headers: { authorization: `Basic ${FULL}` } })
      .then((answer) => answer.body?.cancel());
    assert.ok(both.lines.some((line) => /^PUT \/cache\/k 401 /.test(line)), both.lines.join("\n"));
    assert.ok(both.lines.some((line) => /^PUT \/kv\/k 403 /.test(line)));
    assert.ok(both.lines.some((line) => /^\/proto\.KV\/KVPut UNAUTHENTICATED /.test(line)));
    assert.ok(both.lines.some((line) => /^\/proto\.KV\/KVPut PERMISSION_DENIED /.test(line)));
    assert.ok(both.lines.some((line) => /^\/proto\.Counter\/CounterGet OK /.test(line)));
    assertNoSecret(both.lines);
    assert.ok(!both.lines.some((line) => /bearer/i.test(line)));
  } finally {
    for (const client of clients) {
      await client.http.close();
      await client.grpc.close();
    }
    await both.close();
  }
});

// ---------------------------------------------------------------------------------------------
// The command line.

function config(args: string[], env: Record<string, string> = {}): CliConfig {
  const command = parseCli(args, env);
  assert.equal(command.action, "serve");
  return (command as { config: CliConfig }).config;
}

function refused(args: string[], env: Record<string, string>, message: RegExp): void {
  assert.throws(() => parseCli(args, env), (error: Error) => {
    assert.ok(error instanceof UsageError, `${error.name}: ${error.message}`);
    assert.match(error.message, message);
    assert.ok(!error.message.includes("\n"), "one line");
    assertNoSecret([error.message]);
    return true;
  });
}

test("parseCli() reads --auth-token and --read-token, repeated, and their variables", () => {
  assert.equal(config([]).auth, undefined);
  assert.ok(!("auth" in config([])), "no auth key without tokens");
  assert.deepEqual(config(["--auth-token", FULL, "--auth-token", FULL_2]).auth, {
    full: [FULL, FULL_2],
    read: [],
  });
  assert.deepEqual(config(["--read-token", READ]).auth, { full: [], read: [READ] });
  assert.deepEqual(
    config([], { PURPLE_AUTH_TOKEN: ` ${FULL} ,${FULL_2},`, PURPLE_READ_TOKEN: READ }).auth,
    { full: [FULL, FULL_2], read: [READ] },
  );
  assert.deepEqual(
    config(["--auth-token", FULL], { PURPLE_AUTH_TOKEN: FULL_2, PURPLE_READ_TOKEN: READ }).auth,
    { full: [FULL], read: [READ] },
    "a flag replaces its own variable's tokens only",
  );
  assert.deepEqual(config(["--auth-token", FULL, "--auth-token", FULL]).auth?.full, [FULL]);
  assert.deepEqual(config([], { PURPLE_AUTH_TOKEN: "" }).auth, undefined, "empty is unset");
  assert.equal(config(["--auth-token", FULL]).hostname, "127.0.0.1", "tokens keep loopback");
});

test("parseCli() refuses weak or ambiguous tokens in one line that never quotes them", () => {
  refused(["--auth-token", "short"], {}, /^Bad --auth-token: a token must be 16 characters/);
  refused([], { PURPLE_READ_TOKEN: "short" }, /^Bad PURPLE_READ_TOKEN: a token must be 16/);
  refused(["--auth-token", `${FULL},${FULL_2}`], {}, /^Bad --auth-token: .* other than ','/);
  refused(["--read-token", `${READ} x`], {}, /^Bad --read-token: a token may only hold visible/);
  refused([], { PURPLE_AUTH_TOKEN: " , ," }, /^Bad PURPLE_AUTH_TOKEN: it holds no token/);
  refused(["--auth-token", READ, "--read-token", READ], {}, /both full-access and read-only/);
  refused(["--auth-token"], {}, /^Bad --auth-token: a value is missing/);
});

test("parseCli() reads --tls-cert and --tls-key, both or neither", () => {
  assert.ok(!("tls" in config([])));
  assert.deepEqual(config(["--tls-cert", "c.pem", "--tls-key", "k.pem"]).tls, {
    certFile: "c.pem",
    keyFile: "k.pem",
  });
  assert.deepEqual(
    config(["--tls-key", "k2.pem"], { PURPLE_TLS_CERT: "c.pem", PURPLE_TLS_KEY: "k.pem" }).tls,
    { certFile: "c.pem", keyFile: "k2.pem" },
  );
  refused(["--tls-cert", "c.pem"], {}, /^Bad --tls-cert: TLS needs a key too \(--tls-key\)$/);
  refused([], { PURPLE_TLS_KEY: "k.pem" }, /^Bad PURPLE_TLS_KEY: TLS needs a certificate too/);
});

// ---------------------------------------------------------------------------------------------
// The real process: where it binds, what it says, what it never prints.

/** Whether something accepts TCP connections at this address. */
async function accepts(hostname: string, port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname, port })).close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return false;
    throw error;
  }
}

const NO_TOKEN_ENV = { PURPLE_AUTH_TOKEN: "", PURPLE_READ_TOKEN: "", PURPLE_HOST: "" };

test("purple without a token binds 127.0.0.1 only and says so", async () => {
  const purple = await startPurple(
    ["--backend", "memory", "--http-port", "0", "--grpc-port", "0"],
    NO_TOKEN_ENV,
  );
  try {
    assert.equal(
      purple.lines[1],
      "No access token is set: listening on 127.0.0.1 only " +
        "(use --host to change it, --auth-token to require a token)",
    );
    for (const port of [purple.httpPort!, purple.grpcPort!]) {
      assert.equal(await accepts("127.0.0.1", port), true);
      assert.equal(await accepts("127.0.0.2", port), false, "not bound to every interface");
    }
    assert.equal(await new HttpClient(`http://127.0.0.1:${purple.httpPort}`).flagGet("f"), false);
  } finally {
    const { code, stderr } = await purple.stop();
    assert.equal(code, 0, stderr);
  }
});

test("purple with tokens still binds 127.0.0.1, and never prints a token, even with --debug", async () => {
  const purple = await startPurple(
    [
      "--backend",
      "memory",
      "--http-port",
      "0",
      "--grpc-port",
      "0",
      "--debug",
      "--read-token",
      READ,
    ],
    { ...NO_TOKEN_ENV, PURPLE_AUTH_TOKEN: `${FULL},${FULL_2}` },
  );
  let stderr = "";
  try {
    assert.equal(
      purple.lines[1],
      "Access tokens required: 2 full-access tokens, 1 read-only token; " +
        "/ping and grpc.health.v1.Health stay open",
    );
    assert.equal(await accepts("127.0.0.2", purple.httpPort!), false);
    const http = `http://127.0.0.1:${purple.httpPort}`;
    const grpcAddress = `127.0.0.1:${purple.grpcPort}`;
    await new HttpClient(http, { token: FULL }).kvPut("k", "v");
    await assert.rejects(new HttpClient(http, { token: WRONG }).kvGet("k"), UnauthenticatedError);
    await assert.rejects(
      new HttpClient(http, { token: READ }).kvDelete("k"),
      PermissionDeniedError,
    );
    const grpcClients = [FULL_2, WRONG].map((token) => new GrpcClient(grpcAddress, { token }));
    assert.equal(await grpcClients[0].counterIncrement("c", 1), 1n);
    await assert.rejects(grpcClients[1].counterGet("c"), UnauthenticatedError);
    await Promise.all(grpcClients.map((client) => client.close()));
    assert.equal((await fetch(`${http}/ping`)).status, 200);
    await purple.waitFor(/^\/proto\.Counter\/CounterGet UNAUTHENTICATED /);
    await purple.waitFor(/^GET \/ping 200 /);
  } finally {
    const stopped = await purple.stop();
    assert.equal(stopped.code, 0, stopped.stderr);
    stderr = stopped.stderr;
  }
  assert.ok(purple.lines.some((line) => /^GET \/kv\/k 401 /.test(line)), purple.lines.join("\n"));
  assert.ok(purple.lines.some((line) => /^DELETE \/kv\/k 403 /.test(line)));
  assertNoSecret([...purple.lines, stderr]);
});

test("purple refuses a bad token with exit 2 and one line that does not quote it", async () => {
  const { code, stdout, stderr } = await runPurple(
    ["--backend", "memory", "--auth-token", "tooshort-secret"],
    NO_TOKEN_ENV,
  );
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.match(stderr, /^purple: Bad --auth-token: a token must be 16 characters or more .*\n$/);
  assert.ok(!stderr.includes("tooshort-secret"));
});

test("the Deno Deploy entry requires PURPLE_AUTH_TOKEN's tokens too", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "purple_auth_deploy_" });
  const deploy = start(Deno.execPath(), ["run", "-A", `${ROOT}/deploy/deno_deploy.ts`], {
    cwd: tmp,
    env: {
      ...NO_TOKEN_ENV,
      DENO_DEPLOYMENT_ID: "purple-auth-test",
      DENO_KV_DEFAULT_PATH: `${tmp}/kv.sqlite3`,
      DENO_SERVE_ADDRESS: "tcp:127.0.0.1:0",
      PURPLE_AUTH_TOKEN: FULL,
      PURPLE_READ_TOKEN: READ,
    },
  });
  try {
    const [, url] = await deploy.line(/^Listening on (http:\/\/127\.0\.0\.1:\d+)\//);
    const put = (token?: string) =>
      fetch(`${url}/flags/deployed?value=true`, {
        method: "PUT",
        headers: token ? { authorization: `Bearer ${token}` } : {},
      }).then(async (answer) => (await answer.body?.cancel(), answer.status));
    assert.equal(await put(), 401);
    assert.equal(await put(READ), 403);
    assert.equal(await put(FULL), 204);
    assert.equal(await fetch(`${url}/ping`).then((answer) => answer.status), 200);
  } finally {
    await deploy.stop();
    await Deno.remove(tmp, { recursive: true });
  }
});
