import assert from "node:assert/strict";
import { HttpClient, type Operations } from "@purple/client";
import {
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  type PurpleError,
  UnavailableError,
  ValueTooLargeError,
} from "@purple/client/errors";
import { DEFAULT_LIMITS, type Limits, openBackend } from "../backends/mod.ts";
import { createHttpApp, jsonBodyLimit, startHttpServer } from "../server/http.ts";
import type { RunningServer } from "../server/options.ts";
import { conformanceThrough } from "./conformance.ts";
import { freePort } from "./_redis.ts";

const quiet = () => {};

async function serve(ops: Operations): Promise<{ server: RunningServer; client: HttpClient }> {
  const server = await startHttpServer(ops, {
    hostname: "127.0.0.1",
    port: 0,
    limits: DEFAULT_LIMITS,
    log: quiet,
  });
  return { server, client: new HttpClient(`http://127.0.0.1:${server.port}`) };
}

// ---------------------------------------------------------------------------------------------
// The conformance suite through HttpClient → HTTP server → each backend.

conformanceThrough("http", async (ops) => {
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
// Routes, through app.request() (no socket).

interface Answer {
  status: number;
  type: string | null;
  text: string;
  headers: Headers;
}

async function withApp(
  fn: (
    call: (method: string, path: string, init?: RequestInit) => Promise<Answer>,
    ops: Operations,
  ) => Promise<void>,
  limits: Limits = DEFAULT_LIMITS,
): Promise<void> {
  const ops = await openBackend({ kind: "memory", limits });
  const app = createHttpApp(ops, { limits, log: quiet });
  try {
    await fn(async (method, path, init = {}) => {
      // As curl and fetch do (a request without Accept gets the original's empty 404).
      const headers = new Headers(init.headers);
      if (!headers.has("accept")) headers.set("accept", "*/*");
      const response = await app.request(path, { method, ...init, headers });
      return {
        status: response.status,
        type: response.headers.get("content-type"),
        text: await response.text(),
        headers: response.headers,
      };
    }, ops);
  } finally {
    await ops.close();
  }
}

function assertError(answer: Answer, status: number, message?: string | RegExp): void {
  assert.equal(answer.status, status, answer.text);
  assert.equal(answer.type, "application/json");
  const body = JSON.parse(answer.text);
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.equal(typeof body.error, "string");
  if (typeof message === "string") assert.equal(body.error, message);
  else if (message) assert.match(body.error, message);
}

Deno.test("GET /ping answers 200 with no body", async () => {
  await withApp(async (call) => {
    const answer = await call("GET", "/ping");
    assert.equal(answer.status, 200);
    assert.equal(answer.text, "");
  });
});

Deno.test("GET /cache/:key answers {value} or 404 with an error body", async () => {
  await withApp(async (call) => {
    assertError(await call("GET", "/cache/k"), 404, "Cannot find cache key 'k': not found");
    assert.equal((await call("PUT", "/cache/k?value=a1b2c3d4e5f6&ttl=120")).status, 204);
    const answer = await call("GET", "/cache/k");
    assert.equal(answer.status, 200);
    assert.equal(answer.type, "application/json");
    assert.equal(answer.text, '{"value":"a1b2c3d4e5f6"}');
  });
});

Deno.test("PUT /cache/:key without a ttl uses the default, and refuses bad input", async () => {
  await withApp(async (call, ops) => {
    const put = await call("PUT", "/cache/k?value=v");
    assert.equal(put.status, 204);
    assert.equal(put.text, "");
    assert.equal(await ops.cacheGet("k"), "v");
    assert.equal((await call("PUT", "/cache/e?value=v&ttl=")).status, 204);
    assertError(await call("PUT", "/cache/k"), 400, "no cache value provided");
    assertError(await call("PUT", "/cache/k?value=&ttl=5"), 400, "no cache value provided");
    assertError(await call("PUT", "/cache/k?value=v&ttl=-1"), 400, /ttl/);
    assertError(await call("PUT", "/cache/k?value=v&ttl=1.5"), 400, /ttl/);
    assertError(await call("PUT", "/cache/k?value=v&ttl=soon"), 400, /ttl/);
    assertError(await call("PUT", "/cache/k?value=v&ttl=2147483648"), 400, /ttl/);
    assert.equal(await ops.cacheGet("k"), "v");
  });
});

Deno.test("/counters/:key answers {counter, value} with exact int64 digits", async () => {
  await withApp(async (call) => {
    assert.equal((await call("GET", "/counters/c")).text, '{"counter":"c","value":0}');
    const first = await call("PUT", "/counters/c?increment=9007199254740993");
    assert.equal(first.status, 200);
    assert.equal(first.type, "application/json");
    assert.equal(first.text, '{"counter":"c","value":9007199254740993}');
    assert.equal(
      (await call("PUT", "/counters/c?increment=-9007199254740994")).text,
      '{"counter":"c","value":-1}',
    );
    assert.equal(
      (await call("PUT", "/counters/max?increment=%2B9223372036854775807")).text,
      '{"counter":"max","value":9223372036854775807}',
    );
    assertError(await call("PUT", "/counters/max?increment=1"), 400, /outside int64/);
    assert.equal(
      (await call("GET", "/counters/max")).text,
      '{"counter":"max","value":9223372036854775807}',
    );
    assert.equal(
      (await call("PUT", "/counters/min?increment=-9223372036854775808")).text,
      '{"counter":"min","value":-9223372036854775808}',
    );
  });
});

Deno.test("PUT /counters/:key refuses a missing or unparseable increment with 400", async () => {
  await withApp(async (call) => {
    assertError(await call("PUT", "/counters/c"), 400, "no increment specified");
    assertError(await call("PUT", "/counters/c?increment="), 400, "no increment specified");
    for (
      const bad of ["abc", "1.5", "1e3", "%201", "0x10", "--1", "1_000", "9223372036854775808"]
    ) {
      assertError(await call("PUT", `/counters/c?increment=${bad}`), 400);
    }
    assert.equal((await call("GET", "/counters/c")).text, '{"counter":"c","value":0}');
  });
});

Deno.test("/flags/:key takes exactly Go's ParseBool values and refuses others", async () => {
  await withApp(async (call) => {
    assert.equal((await call("GET", "/flags/f")).text, '{"value":false}');
    for (const [text, value] of [["1", true], ["0", false], ["t", true], ["f", false]] as const) {
      assert.equal((await call("PUT", `/flags/f?value=${text}`)).status, 204);
      assert.equal((await call("GET", "/flags/f")).text, `{"value":${value}}`);
    }
    for (const text of ["T", "TRUE", "true", "True"]) {
      await call("PUT", "/flags/f?value=0");
      assert.equal((await call("PUT", `/flags/f?value=${text}`)).status, 204);
      assert.equal((await call("GET", "/flags/f")).text, '{"value":true}');
    }
    for (const text of ["F", "FALSE", "false", "False"]) {
      await call("PUT", "/flags/f?value=1");
      assert.equal((await call("PUT", `/flags/f?value=${text}`)).status, 204);
      assert.equal((await call("GET", "/flags/f")).text, '{"value":false}');
    }
    assertError(await call("PUT", "/flags/f"), 400, "no flag value specified");
    for (const text of ["yes", "no", "2", "tRUE", "on", "%20true"]) {
      assertError(await call("PUT", `/flags/f?value=${text}`), 400, /flag value/);
    }
    assert.equal((await call("GET", "/flags/f")).text, '{"value":false}');
  });
});

Deno.test("/kv/:key stores JSON content and answers {value}; DELETE of a missing key is 404", async () => {
  await withApp(async (call) => {
    const put = await call("PUT", "/kv/k", { body: JSON.stringify({ content: "héllo ✓" }) });
    assert.equal(put.status, 204);
    assert.equal(put.text, "");
    const answer = await call("GET", "/kv/k");
    assert.equal(answer.type, "application/json");
    assert.equal(answer.text, '{"value":"héllo ✓"}');
    assert.equal(answer.headers.get("vary"), "Accept");
    assert.equal((await call("DELETE", "/kv/k")).status, 204);
    assertError(await call("GET", "/kv/k"), 404, "Cannot find kv key 'k': not found");
    assertError(await call("DELETE", "/kv/k"), 404, "Cannot find kv key 'k': not found");
  });
});

Deno.test("PUT /kv/:key refuses bad JSON and empty content with 400", async () => {
  await withApp(async (call) => {
    for (
      const body of ["", "not json", "[]", "null", '{"content": 5}', '{"value": "x"}', "{"]
    ) {
      assertError(await call("PUT", "/kv/k", { body }), 400, /JSON body/);
    }
    assertError(await call("PUT", "/kv/k", { body: new Uint8Array([0x22, 0xff, 0x22]) }), 400);
    assertError(await call("PUT", "/kv/k", { body: '{"content": ""}' }), 400, /empty/);
    assertError(await call("PUT", "/kv/k", { body: '{"content": "\\ud800"}' }), 400);
    assertError(await call("GET", "/kv/k"), 404);
  });
});

Deno.test("/kv/:key is binary-safe with application/octet-stream both ways", async () => {
  await withApp(async (call, ops) => {
    const bytes = new Uint8Array(256).map((_, i) => i);
    const put = await call("PUT", "/kv/bin", {
      body: bytes,
      headers: { "content-type": "application/octet-stream" },
    });
    assert.equal(put.status, 204);
    assert.deepEqual(await ops.kvGet("bin"), bytes);
    const app = createHttpApp(ops, { limits: DEFAULT_LIMITS });
    for (
      const accept of ["application/octet-stream", "application/json, application/octet-stream"]
    ) {
      const response = await app.request("/kv/bin", { headers: { accept } });
      assert.equal(response.headers.get("content-type"), "application/octet-stream");
      assert.deepEqual(new Uint8Array(await response.arrayBuffer()), bytes);
    }
    const json = await app.request("/kv/bin", {
      headers: { accept: "application/octet-stream;q=0, application/json" },
    });
    assert.equal(json.headers.get("content-type"), "application/json");
    assert.equal(typeof (await json.json()).value, "string");
    assertError(
      await call("PUT", "/kv/empty", { headers: { "content-type": "application/octet-stream" } }),
      400,
      /empty/,
    );
  });
});

Deno.test("/sets/:key answers {set, items}, sorted; PUT and DELETE need an item", async () => {
  await withApp(async (call) => {
    assert.equal((await call("GET", "/sets/todos")).text, '{"set":"todos","items":[]}');
    assert.equal(
      (await call("PUT", "/sets/todos?item=shopping")).text,
      '{"set":"todos","items":["shopping"]}',
    );
    const added = await call("PUT", "/sets/todos?item=running");
    assert.equal(added.status, 200);
    assert.equal(added.text, '{"set":"todos","items":["running","shopping"]}');
    assert.equal(
      (await call("DELETE", "/sets/todos?item=running")).text,
      '{"set":"todos","items":["shopping"]}',
    );
    assertError(await call("PUT", "/sets/todos"), 400, "no item supplied");
    assertError(await call("DELETE", "/sets/todos?item="), 400, "no item supplied");
    assert.equal((await call("GET", "/sets/todos")).text, '{"set":"todos","items":["shopping"]}');
  });
});

Deno.test("an empty key is 400 on every route", async () => {
  await withApp(async (call) => {
    for (
      const [method, path] of [
        ["GET", "/cache/"],
        ["PUT", "/cache/?value=v"],
        ["GET", "/counters/"],
        ["PUT", "/counters/?increment=1"],
        ["GET", "/flags/"],
        ["PUT", "/flags/?value=true"],
        ["GET", "/kv/"],
        ["PUT", "/kv/"],
        ["DELETE", "/kv/"],
        ["GET", "/sets/"],
        ["PUT", "/sets/?item=x"],
        ["DELETE", "/sets/?item=x"],
        ["DELETE", "/sets/"],
        ["DELETE", "/cache/"],
        ["DELETE", "/counters/"],
        ["DELETE", "/flags/"],
      ]
    ) {
      assertError(await call(method, path), 400, /key/);
    }
  });
});

Deno.test("unknown routes are 404 and wrong methods 405, both with an error body", async () => {
  await withApp(async (call) => {
    assertError(await call("GET", "/"), 404, /no such route/);
    assertError(await call("GET", "/nope/k"), 404, /no such route/);
    assertError(await call("GET", "/ping/"), 404);
    const wrong = await call("POST", "/kv/k");
    assertError(wrong, 405, /method not allowed/);
    assert.equal(wrong.headers.get("allow"), "GET, PUT, DELETE, HEAD");
    assertError(await call("PATCH", "/cache/k"), 405);
    assertError(await call("PUT", "/ping"), 405);
  });
});

Deno.test("keys in paths are percent-decoded exactly once", async () => {
  await withApp(async (call, ops) => {
    const keys = [
      "a/b",
      "with space",
      "q?x=1&y=2",
      "frag#ment",
      "100%",
      "%2F",
      "%25",
      "ключ",
      "键🔑",
      "nul\u0000byte",
      "tab\tnew\nline",
      "+plus+",
      "a/../b",
    ];
    for (const key of keys) {
      const path = `/kv/${encodeURIComponent(key)}`;
      assert.equal((await call("PUT", path, { body: '{"content":"x"}' })).status, 204, key);
      assert.equal(new TextDecoder().decode(await ops.kvGet(key)), "x", JSON.stringify(key));
      const counter = await call("PUT", `/counters/${encodeURIComponent(key)}?increment=1`);
      assert.equal(counter.text, `{"counter":${JSON.stringify(key)},"value":1}`);
    }
    await call("PUT", "/flags/a+b?value=true");
    assert.equal(await ops.flagGet("a+b"), true);
    await call("PUT", "/flags/x%252Fy?value=true");
    assert.equal(await ops.flagGet("x%2Fy"), true);
    assert.equal(await ops.flagGet("x/y"), false);
    await call("PUT", "/flags/un/encoded?value=true");
    assert.equal(await ops.flagGet("un/encoded"), true);
    assertError(await call("GET", "/kv/%ZZ"), 400, /percent-encoding/);
    assertError(await call("GET", "/kv/%C3"), 400, /percent-encoding/);
    assertError(await call("GET", "/kv/%ED%A0%80"), 400, /percent-encoding/);
  });
});

Deno.test("query values are form-decoded exactly once", async () => {
  await withApp(async (call, ops) => {
    await call("PUT", "/cache/k?value=a%26b%3Dc%25d");
    assert.equal(await ops.cacheGet("k"), "a&b=c%d");
    await call("PUT", "/cache/k?value=hello+world");
    assert.equal(await ops.cacheGet("k"), "hello world");
    await call("PUT", "/cache/k?value=1%2B1");
    assert.equal(await ops.cacheGet("k"), "1+1");
    await call("PUT", "/sets/s?item=caf%C3%A9&item=ignored");
    assert.deepEqual(await ops.setGet("s"), ["café"]);
    assertError(await call("PUT", "/cache/k?value=%E0%A4"), 400, /percent-encoding/);
  });
});

Deno.test("a request body over the limit is 413, refused before it is read", async () => {
  const limits = { ...DEFAULT_LIMITS, maxValueBytes: 1000 };
  await withApp(async (call) => {
    const octets = { "content-type": "application/octet-stream" };
    assert.equal(
      (await call("PUT", "/kv/k", { body: new Uint8Array(1000), headers: octets })).status,
      204,
    );
    assertError(
      await call("PUT", "/kv/k", { body: new Uint8Array(1001), headers: octets }),
      413,
      /limit/,
    );

    // A declared length over the limit: not one byte is pulled from the body.
    let pulled = 0;
    const lazy = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(100));
      },
    }, { highWaterMark: 0 });
    assertError(
      await call("PUT", "/kv/k", {
        body: lazy,
        headers: { ...octets, "content-length": "5000" },
        duplex: "half",
      } as RequestInit),
      413,
    );
    assert.equal(pulled, 0);

    // A streamed body that would go on (here up to 1 MB, to bound the test) is cut off once
    // over the limit, and cancelled.
    let sent = 0;
    let cancelled = false;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += 64;
        controller.enqueue(new Uint8Array(64));
        if (sent >= 1_000_000) controller.close();
      },
      cancel() {
        cancelled = true;
      },
    });
    assertError(
      await call("PUT", "/kv/k", { body: endless, headers: octets, duplex: "half" } as RequestInit),
      413,
    );
    assert.ok(cancelled, "the body stream was cancelled");
    assert.ok(sent < 2000, `read ${sent} bytes of an endless body`);
  }, limits);
});

Deno.test("the JSON form allows for escapes in the body but holds the content to the limit", async () => {
  const limits = { ...DEFAULT_LIMITS, maxValueBytes: 100 };
  await withApp(async (call, ops) => {
    // 100 newlines: 200 bytes of JSON escapes, 100 bytes of content.
    const escaped = JSON.stringify({ content: "\n".repeat(100) });
    assert.ok(escaped.length > 200);
    assert.equal((await call("PUT", "/kv/k", { body: escaped })).status, 204);
    assert.equal((await ops.kvGet("k")).byteLength, 100);
    const unicode = JSON.stringify({ content: "\u0001".repeat(100) });
    assert.equal((await call("PUT", "/kv/u", { body: unicode })).status, 204);
    assertError(
      await call("PUT", "/kv/k", { body: JSON.stringify({ content: "x".repeat(101) }) }),
      413,
    );
    const huge = `{"content": "${"x".repeat(jsonBodyLimit(100))}"}`;
    assertError(await call("PUT", "/kv/k", { body: huge }), 413, /JSON body/);
  }, limits);
});

Deno.test("a real socket: a chunked body that never ends is answered 413", async () => {
  const ops = await openBackend({ kind: "memory" });
  const limits = { ...DEFAULT_LIMITS, maxValueBytes: 4096 };
  const server = await startHttpServer(ops, { hostname: "127.0.0.1", port: 0, limits, log: quiet });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const encoder = new TextEncoder();
    await conn.write(encoder.encode(
      "PUT /kv/k HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n" +
        "Transfer-Encoding: chunked\r\n\r\n",
    ));
    const chunk = encoder.encode(`400\r\n${"x".repeat(0x400)}\r\n`);
    const reply = new Uint8Array(1024);
    const read = conn.read(reply);
    let writes = 0;
    let answered: number | null = null;
    read.then((n) => answered = n);
    while (answered === null && writes < 1000) {
      await conn.write(chunk).catch(() => {});
      writes++;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.notEqual(answered, null, `no answer after ${writes} KiB`);
    const n = await read;
    const head = new TextDecoder().decode(reply.subarray(0, n ?? 0));
    assert.match(head, /^HTTP\/1.1 413 /);
    assert.ok(writes < 100, `the server kept reading for ${writes} KiB`);
    await assert.rejects(ops.kvGet("k"), NotFoundError);
  } finally {
    conn.close();
    await server.shutdown();
    await ops.close();
  }
});

Deno.test("errors map to statuses in one place; a 5xx never leaks a stack", async () => {
  const lines: string[] = [];
  const ops = await openBackend({ kind: "memory" });
  const broken: Operations = {
    ...ops,
    cacheGet: () => Promise.reject(new Error("secret detail at /srv/purple.ts:12")),
    counterGet: () => Promise.reject(new UnavailableError("Cannot reach Redis")),
    flagGet: () => Promise.reject(new ValueTooLargeError("too big")),
    setGet: () => Promise.reject(new InternalError("Internal server error")),
    close: () => ops.close(),
  };
  const app = createHttpApp(broken, { limits: DEFAULT_LIMITS, log: (line) => lines.push(line) });
  try {
    const crash = await app.request("/cache/k");
    assert.equal(crash.status, 500);
    assert.deepEqual(await crash.json(), { error: "Internal server error" });
    assert.ok(lines.some((line) => line.includes("secret detail")), "the details are logged");
    const down = await app.request("/counters/k");
    assert.equal(down.status, 503);
    assert.deepEqual(await down.json(), { error: "Cannot reach Redis" });
    assert.equal((await app.request("/flags/k")).status, 413);
    assert.equal((await app.request("/sets/k")).status, 500);
  } finally {
    await ops.close();
  }
});

Deno.test("--debug logs one line per request: method, path, status, duration", async () => {
  const lines: string[] = [];
  const ops = await openBackend({ kind: "memory" });
  const app = createHttpApp(ops, {
    limits: DEFAULT_LIMITS,
    debug: true,
    log: (line) => lines.push(line),
  });
  try {
    await (await app.request("/kv/a%2Fb?secret=1")).text();
    await (await app.request("/sets/s?item=x", { method: "PUT" })).text();
    await (await app.request("/nowhere")).text();
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^GET \/kv\/a%2Fb 404 \d+\.\dms$/);
    assert.match(lines[1], /^PUT \/sets\/s 200 \d+\.\dms$/);
    assert.match(lines[2], /^GET \/nowhere 404 \d+\.\dms$/);
  } finally {
    await ops.close();
  }
});

Deno.test("startHttpServer() logs the real port, refuses a taken one, and shuts down once", async () => {
  const lines: string[] = [];
  const ops = await openBackend({ kind: "memory" });
  const server = await startHttpServer(ops, {
    hostname: "127.0.0.1",
    port: 0,
    limits: DEFAULT_LIMITS,
    log: (line) => lines.push(line),
  });
  try {
    assert.equal(server.protocol, "HTTP");
    assert.ok(server.port > 0);
    assert.deepEqual(lines, [`Starting up the HTTP server on port ${server.port}`]);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/ping`)).status, 200);
    await assert.rejects(
      startHttpServer(ops, { hostname: "127.0.0.1", port: server.port, limits: DEFAULT_LIMITS }),
      Deno.errors.AddrInUse,
    );
  } finally {
    await Promise.all([server.shutdown(), server.shutdown()]);
    await ops.close();
  }
});

Deno.test("shutdown() lets a request whose body is still arriving finish, and refuses new ones", async () => {
  const ops = await openBackend({ kind: "memory" });
  const server = await startHttpServer(ops, {
    hostname: "127.0.0.1",
    port: 0,
    limits: DEFAULT_LIMITS,
    log: quiet,
  });
  const encoder = new TextEncoder();
  const slow = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const late = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const read = async (conn: Deno.Conn) => {
    const buffer = new Uint8Array(4096);
    const n = await conn.read(buffer);
    return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
  };
  try {
    await slow.write(encoder.encode(
      "PUT /kv/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n" +
        "Content-Length: 10\r\n\r\nhello",
    ));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stopped = server.shutdown();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await late.write(encoder.encode("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
    const refused = await read(late);
    assert.match(refused, /^HTTP\/1\.1 503 /);
    assert.match(refused, /shutting down/);
    await slow.write(encoder.encode("world"));
    assert.match(await read(slow), /^HTTP\/1\.1 204 /);
    await stopped;
    assert.equal(new TextDecoder().decode(await ops.kvGet("slow")), "helloworld");
  } finally {
    slow.close();
    late.close();
    await server.shutdown();
    await ops.close();
  }
});

// ---------------------------------------------------------------------------------------------
// HttpClient: what it does before and around fetch.

interface Recorded {
  url: string;
  method: string;
  headers: Headers;
  body?: Uint8Array;
}

/** A client whose transport answers with `reply` and records every request. */
function fake(reply: (request: Recorded) => Response) {
  const requests: Recorded[] = [];
  const client = new HttpClient("http://purple.test:8080/", {
    headers: { authorization: "Bearer t" },
    fetch: (url, init) => {
      const request: Recorded = {
        url,
        method: init.method ?? "GET",
        headers: new Headers(init.headers),
        body: init.body as Uint8Array | undefined,
      };
      requests.push(request);
      return Promise.resolve(reply(request));
    },
  });
  return { client, requests };
}

const jsonAnswer = (body: string, status = 200) =>
  new Response(body, { status, headers: { "content-type": "application/json" } });

Deno.test("HttpClient refuses bad input with InvalidArgumentError before any request", async () => {
  const { client, requests } = fake(() => new Response(null, { status: 204 }));
  const bad: Array<() => Promise<unknown>> = [
    () => client.cacheGet(""),
    () => client.cacheSet("k", ""),
    () => client.cacheSet("k", "v", -1),
    () => client.cacheSet("k", "v", 1.5),
    () => client.counterIncrement("k", 1.5),
    () => client.counterIncrement("k", 2 ** 53 + 2),
    () => client.counterIncrement("k", 2n ** 63n),
    () => client.flagSet("k", "true" as unknown as boolean),
    () => client.kvPut("k", ""),
    () => client.kvPut("k", new Uint8Array()),
    () => client.kvPut("k", "lone \ud800"),
    () => client.kvPut("k", 42 as unknown as string),
    () => client.setAdd("s", ""),
    () => client.setRemove("lone \udc00", "x"),
    () => client.kvGet("."),
    () => client.kvGet(".."),
  ];
  for (const call of bad) await assert.rejects(call(), InvalidArgumentError);
  assert.equal(requests.length, 0);
  assert.throws(() => new HttpClient("localhost:8080"), InvalidArgumentError);
  assert.throws(() => new HttpClient("ftp://x"), InvalidArgumentError);
  assert.throws(() => new HttpClient("http://x", { timeoutMs: -1 }), InvalidArgumentError);
});

Deno.test("HttpClient encodes keys, query values and bodies, and sends its headers", async () => {
  const { client, requests } = fake((request) => {
    if (request.url.includes("/counters/")) {
      return jsonAnswer('{"counter":"x","value":1}');
    }
    if (request.url.includes("/sets/")) return jsonAnswer('{"set":"x","items":["a"]}');
    return new Response(null, { status: 204 });
  });
  await client.cacheSet("a/b c?#%", "v&w=x+y", 60);
  await client.cacheSet("d", "v");
  await client.counterIncrement("ключ", -5n);
  await client.flagSet("f", false);
  await client.kvPut("k", "hé");
  await client.setRemove("s", "it em");
  assert.deepEqual(requests.map((r) => `${r.method} ${r.url}`), [
    "PUT http://purple.test:8080/cache/a%2Fb%20c%3F%23%25?value=v%26w%3Dx%2By&ttl=60",
    "PUT http://purple.test:8080/cache/d?value=v&ttl=5",
    "PUT http://purple.test:8080/counters/%D0%BA%D0%BB%D1%8E%D1%87?increment=-5",
    "PUT http://purple.test:8080/flags/f?value=false",
    "PUT http://purple.test:8080/kv/k",
    "DELETE http://purple.test:8080/sets/s?item=it%20em",
  ]);
  assert.equal(requests[4].headers.get("content-type"), "application/octet-stream");
  assert.deepEqual(requests[4].body, new TextEncoder().encode("hé"));
  assert.ok(requests.every((r) => r.headers.get("authorization") === "Bearer t"));
});

Deno.test("HttpClient reads counters exactly, whatever the key looks like", async () => {
  const { client } = fake(() =>
    jsonAnswer('{"counter":"\\"value\\":1,","value":9223372036854775807}')
  );
  assert.equal(await client.counterGet('"value":1,'), 9223372036854775807n);
  const negative = fake(() => jsonAnswer('{"value": -9223372036854775808 , "counter":"k"}'));
  assert.equal(await negative.client.counterGet("k"), -9223372036854775808n);
  const wrong = fake(() => jsonAnswer('{"counter":"k","value":"12"}'));
  await assert.rejects(wrong.client.counterGet("k"), InternalError);
});

Deno.test("HttpClient turns error answers into the typed errors, with the server's message", async () => {
  const cases: Array<[Response, new (message: string) => PurpleError, RegExp]> = [
    [jsonAnswer('{"error":"Cannot find kv key \'k\': not found"}', 404), NotFoundError, /kv key/],
    [jsonAnswer('{"error":"no item supplied"}', 400), InvalidArgumentError, /no item supplied/],
    [jsonAnswer('{"error":"too big"}', 413), ValueTooLargeError, /too big/],
    [jsonAnswer('{"error":"Cannot reach Redis"}', 503), UnavailableError, /Redis/],
    [new Response("Bad Gateway", { status: 502 }), UnavailableError, /HTTP 502: Bad Gateway/],
    [new Response("x".repeat(5000), { status: 500 }), InternalError, /HTTP 500: x+…$/],
    [new Response(null, { status: 418 }), InternalError, /HTTP 418$/],
  ];
  for (const [answer, kind, message] of cases) {
    const { client } = fake(() => answer);
    await assert.rejects(client.kvGet("k"), (error: Error) => {
      assert.ok(error instanceof kind, `${error.name} for ${answer.status}`);
      assert.match(error.message, message);
      assert.ok(error.message.length < 300);
      return true;
    });
  }
});

Deno.test("HttpClient reads the JSON answer of a server without the binary extension", async () => {
  const { client, requests } = fake(() => jsonAnswer('{"value":"plain text"}'));
  assert.deepEqual(await client.kvGet("k"), new TextEncoder().encode("plain text"));
  assert.equal(requests[0].headers.get("accept"), "application/octet-stream");
});

Deno.test("HttpClient sends a long cache value as a text/plain body, a short one in the URL", async () => {
  const { client, requests } = fake(() => new Response(null, { status: 204 }));
  await client.cacheSet("k", "short", 7);
  await client.cacheSet("k", "é".repeat(20_000), 7);
  assert.equal(new URL(requests[0].url).search, "?value=short&ttl=7");
  assert.equal(new URL(requests[1].url).search, "?ttl=7");
  assert.equal(requests[1].headers.get("content-type"), "text/plain");
  assert.equal(new TextDecoder().decode(requests[1].body), "é".repeat(20_000));
});

Deno.test("PUT /cache/:key takes its value from a text/plain body when ?value= is absent", async () => {
  const ops = await openBackend({ kind: "memory" });
  try {
    const app = createHttpApp(ops, { limits: { ...DEFAULT_LIMITS, maxValueBytes: 8 } });
    const put = (body: BodyInit, type = "text/plain; charset=utf-8") =>
      app.request("/cache/k?ttl=60", { method: "PUT", body, headers: { "content-type": type } });
    assert.equal((await put("8 bytes!")).status, 204);
    assert.equal(await ops.cacheGet("k"), "8 bytes!");
    assert.equal((await put("9 bytes!!")).status, 413);
    assert.equal((await put(new Uint8Array([0xff, 0xfe]))).status, 400);
    assert.equal((await put("value", "application/json")).status, 400);
    assert.equal(await ops.cacheGet("k"), "8 bytes!");
  } finally {
    await ops.close();
  }
});

Deno.test("HttpClient.close() makes later calls reject with UnavailableError", async () => {
  const { client, requests } = fake(() => jsonAnswer('{"value":true}'));
  assert.equal(await client.flagGet("f"), true);
  await client.close();
  await assert.rejects(client.flagGet("f"), UnavailableError);
  assert.equal(requests.length, 1);
});

/** A TCP server that accepts connections and never answers. */
function silentServer(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) conns.push(conn);
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      listener.close();
      conns.forEach((conn) => conn.close());
    },
  };
}

Deno.test("HttpClient times out with UnavailableError that says so", async () => {
  const silent = silentServer();
  const client = new HttpClient(`http://127.0.0.1:${silent.port}`, { timeoutMs: 150 });
  try {
    const start = Date.now();
    await assert.rejects(client.cacheGet("k"), (error: Error) => {
      assert.ok(error instanceof UnavailableError);
      assert.match(error.message, /timed out.*150 ms/);
      return true;
    });
    assert.ok(Date.now() - start < 2_000);
    await assert.rejects(client.cacheGet("k", { timeoutMs: 50 }), /within 50 ms/);
  } finally {
    silent.close();
  }
});

Deno.test("HttpClient rethrows the reason of the caller's own abort", async () => {
  const silent = silentServer();
  const client = new HttpClient(`http://127.0.0.1:${silent.port}`, { timeoutMs: 0 });
  try {
    const controller = new AbortController();
    const reason = new Error("the user left");
    setTimeout(() => controller.abort(reason), 50);
    await assert.rejects(client.setGet("s", { signal: controller.signal }), (error) => {
      assert.equal(error, reason);
      return true;
    });
    const aborted = AbortSignal.abort(new Error("already"));
    await assert.rejects(client.setGet("s", { signal: aborted }), /already/);
  } finally {
    silent.close();
  }
});

Deno.test("HttpClient reports a server nobody listens on as UnavailableError", async () => {
  const client = new HttpClient(`http://127.0.0.1:${freePort()}`);
  await assert.rejects(client.counterGet("c"), (error: Error) => {
    assert.ok(error instanceof UnavailableError);
    assert.match(error.message, /network error/);
    return true;
  });
});

Deno.test("HttpClient runs unchanged in Node (bundled, fetch only)", async (t) => {
  const node = await new Deno.Command("node", { args: ["--version"] }).output().catch(() => null);
  if (node === null || !node.success) {
    console.error("!!! SKIPPING the Node test: node is not on PATH !!!");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "purple_node_" });
  const ops = await openBackend({ kind: "memory" });
  const { server } = await serve(ops);
  try {
    const bundle = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "--platform",
        "browser",
        "-o",
        `${dir}/client.mjs`,
        "client/mod.ts",
      ],
    }).output();
    assert.ok(bundle.success, new TextDecoder().decode(bundle.stderr));
    await Deno.writeTextFile(
      `${dir}/run.mjs`,
      `import { HttpClient, NotFoundError } from "./client.mjs";
const client = new HttpClient(process.argv[2]);
await client.cacheSet("player1-session", "a1b2c3d4e5f6", 120);
const value = await client.cacheGet("player1-session");
const points = await client.counterIncrement("player1-points", 9007199254740993n);
let notFound = false;
try { await client.kvGet("nothing"); } catch (error) { notFound = error instanceof NotFoundError; }
console.log(JSON.stringify({ value, points: String(points), notFound }));
`,
    );
    await t.step("a Node script calls every kind of answer", async () => {
      const run = await new Deno.Command("node", {
        args: [`${dir}/run.mjs`, `http://127.0.0.1:${server.port}`],
      }).output();
      assert.ok(run.success, new TextDecoder().decode(run.stderr));
      assert.deepEqual(JSON.parse(new TextDecoder().decode(run.stdout)), {
        value: "a1b2c3d4e5f6",
        points: "9007199254740993",
        notFound: true,
      });
    });
  } finally {
    await server.shutdown();
    await ops.close();
    await Deno.remove(dir, { recursive: true });
  }
});
