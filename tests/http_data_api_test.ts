// The HTTP side of the data API v2 that the conformance suite cannot see through a client: the
// routes, status codes, headers (ETag, If-Match, If-None-Match, Allow) and JSON bodies of deletes,
// listings, versions and POST /batch, on a memory backend through app.request() (no socket).

import assert from "node:assert/strict";
import { DEFAULT_LIMITS, type Limits, openBackend } from "../backends/mod.ts";
import { createHttpApp } from "../server/http.ts";
import type { Operations } from "@purple/client";

interface Answer {
  status: number;
  text: string;
  headers: Headers;
}

type Call = (method: string, path: string, init?: RequestInit) => Promise<Answer>;

async function withApp(
  fn: (call: Call, ops: Operations) => Promise<void>,
  limits: Limits = DEFAULT_LIMITS,
): Promise<void> {
  const ops = await openBackend({ kind: "memory", limits });
  const app = createHttpApp(ops, { limits, log: () => {} });
  try {
    await fn(async (method, path, init = {}) => {
      // With an Accept header, as every client but the original Go one sends (which gets the
      // original's empty body on a 404).
      const headers = new Headers(init.headers);
      if (!headers.has("accept")) headers.set("accept", "*/*");
      const response = await app.request(path, { method, ...init, headers });
      return { status: response.status, text: await response.text(), headers: response.headers };
    }, ops);
  } finally {
    await ops.close();
  }
}

function assertError(answer: Answer, status: number, message?: RegExp): void {
  assert.equal(answer.status, status, answer.text);
  assert.equal(answer.headers.get("content-type"), "application/json");
  const { error } = JSON.parse(answer.text);
  assert.equal(typeof error, "string");
  if (message) assert.match(error, message);
}

const put = (body: string, headers: Record<string, string> = {}): RequestInit => ({
  body,
  headers: { "content-type": "application/octet-stream", ...headers },
});

Deno.test("DELETE on every service: 204, then 404 with an error body", async () => {
  await withApp(async (call) => {
    await call("PUT", "/cache/k?value=v&ttl=60");
    await call("PUT", "/counters/k?increment=0");
    await call("PUT", "/flags/k?value=false");
    await call("PUT", "/kv/k", put("v"));
    await call("PUT", "/sets/k?item=a");
    for (const service of ["cache", "counters", "flags", "kv", "sets"]) {
      const first = await call("DELETE", `/${service}/k`);
      assert.equal(first.status, 204, `${service}: ${first.text}`);
      assert.equal(first.text, "");
      assertError(await call("DELETE", `/${service}/k`), 404, /not found|does not exist/);
    }
    assert.equal((await call("GET", "/counters/k")).text, '{"counter":"k","value":0}');
    assert.equal((await call("GET", "/flags/k")).text, '{"value":false}');
  });
});

Deno.test("DELETE /sets/:key with ?item removes one item; without it, the whole set", async () => {
  await withApp(async (call) => {
    await call("PUT", "/sets/s?item=a");
    await call("PUT", "/sets/s?item=b");
    const one = await call("DELETE", "/sets/s?item=a");
    assert.equal(one.status, 200);
    assert.equal(one.text, '{"set":"s","items":["b"]}');
    assertError(await call("DELETE", "/sets/s?item="), 400);
    assert.equal((await call("DELETE", "/sets/s")).status, 204);
    assert.equal((await call("GET", "/sets/s")).text, '{"set":"s","items":[]}');
  });
});

Deno.test("GET /kv, /cache, /counters, /flags, /sets list keys in pages", async () => {
  await withApp(async (call) => {
    for (const key of ["a1", "a2", "a3", "b1", "a/é"]) {
      await call("PUT", `/kv/${encodeURIComponent(key)}`, put("v"));
      await call("PUT", `/counters/${encodeURIComponent(key)}?increment=1`);
    }
    const first = await call("GET", "/kv?prefix=a&limit=2");
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("content-type"), "application/json");
    const page = JSON.parse(first.text);
    assert.deepEqual(page.keys, ["a/é", "a1"]);
    assert.equal(typeof page.cursor, "string");
    const second = JSON.parse(
      (await call("GET", `/kv?prefix=a&limit=2&cursor=${encodeURIComponent(page.cursor)}`)).text,
    );
    assert.deepEqual(second.keys, ["a2", "a3"]);
    assert.equal(second.cursor, undefined, "the last page has no cursor");
    assert.equal(
      (await call("GET", "/counters?prefix=a%2F")).text,
      '{"keys":["a/é"]}',
      "the prefix is percent-decoded",
    );
    assert.equal((await call("GET", "/kv")).text, '{"keys":["a/é","a1","a2","a3","b1"]}');
    assert.equal((await call("GET", "/sets")).text, '{"keys":[]}');
    assert.equal((await call("GET", "/flags?limit=1000")).text, '{"keys":[]}');
    assert.equal((await call("GET", "/cache?prefix=")).text, '{"keys":[]}');
    assert.equal((await call("HEAD", "/kv")).status, 200);
  });
});

Deno.test("bad listings are 400: limit, cursor", async () => {
  await withApp(async (call) => {
    for (const query of ["limit=0", "limit=1001", "limit=abc", "limit=1.5", "limit=-1"]) {
      assertError(await call("GET", `/kv?${query}`), 400, /limit/);
    }
    assertError(await call("GET", "/kv?cursor=nonsense"), 400, /cursor/);
    assertError(await call("GET", "/sets?cursor=eyJiIjoicmVkaXMifQ"), 400, /cursor/);
  });
});

Deno.test("GET /kv/:key has an ETag; If-Match and If-None-Match make PUT and DELETE conditional", async () => {
  await withApp(async (call) => {
    assert.equal((await call("PUT", "/kv/k", put("one"))).status, 204);
    const first = await call("GET", "/kv/k");
    assert.equal(first.text, '{"value":"one"}');
    const etag = first.headers.get("etag")!;
    assert.match(etag, /^"[\x21\x23-\x7e]+"$/);
    const bytes = await call("GET", "/kv/k", { headers: { accept: "application/octet-stream" } });
    assert.equal(bytes.headers.get("etag"), etag);
    assert.equal((await call("HEAD", "/kv/k")).headers.get("etag"), etag);

    assert.equal((await call("PUT", "/kv/k", put("two", { "if-match": etag }))).status, 204);
    const stale = await call("PUT", "/kv/k", put("three", { "if-match": etag }));
    assertError(stale, 412, /version/);
    const now = await call("GET", "/kv/k");
    assert.equal(now.text, '{"value":"two"}');
    assert.notEqual(now.headers.get("etag"), etag);

    assertError(await call("PUT", "/kv/k", put("x", { "if-none-match": "*" })), 412, /exists/);
    assert.equal((await call("PUT", "/kv/new", put("x", { "if-none-match": "*" }))).status, 204);
    assert.equal((await call("PUT", "/kv/k", put("x", { "if-match": "*" }))).status, 204);
    assertError(await call("PUT", "/kv/none", put("x", { "if-match": "*" })), 412);

    assertError(await call("DELETE", "/kv/k", { headers: { "if-match": etag } }), 412);
    const current = (await call("GET", "/kv/k")).headers.get("etag")!;
    assert.equal((await call("DELETE", "/kv/k", { headers: { "if-match": current } })).status, 204);
    assertError(await call("GET", "/kv/k"), 404);

    for (const bad of ["unquoted", 'W/"weak"', '"a", "b"', '""']) {
      assertError(await call("PUT", "/kv/new", put("y", { "if-match": bad })), 400, /If-Match/);
    }
    assertError(
      await call("PUT", "/kv/new", put("y", { "if-none-match": '"v"' })),
      400,
      /If-None-Match/,
    );
    assert.equal(
      (await call("GET", "/kv/new")).text,
      '{"value":"x"}',
      "refused writes changed nothing",
    );
  });
});

Deno.test("POST /batch runs operations in order, each with a value or an error", async () => {
  await withApp(async (call) => {
    const body = JSON.stringify({
      operations: [
        { op: "counterIncrement", key: "c", amount: "9007199254740993" },
        { op: "kvPut", key: "k", value: "text" },
        { op: "kvPut", key: "b", value: { base64: "AP8=" } },
        { op: "kvGet", key: "b" },
        { op: "kvGetEntry", key: "k" },
        { op: "kvGet", key: "missing" },
        { op: "setAdd", set: "s", item: "i" },
        { op: "flagGet", key: "f" },
        { op: "cacheSet", key: "c", value: "v", ttl: 60 },
        { op: "kvPut", key: "k", value: "again", options: { ifNoneMatch: "*" } },
      ],
    });
    const answer = await call("POST", "/batch", { body });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers.get("content-type"), "application/json");
    const { results } = JSON.parse(answer.text);
    assert.deepEqual(results[0], { value: "9007199254740993" });
    assert.deepEqual(results[1], { value: null });
    assert.deepEqual(results[3], { value: { base64: "AP8=" } });
    assert.equal(typeof results[4].value.version, "string");
    assert.deepEqual(results[4].value.value, { base64: btoa("text") });
    assert.equal(results[5].error.code, "NOT_FOUND");
    assert.match(results[5].error.message, /missing/);
    assert.deepEqual(results[6], { value: ["i"] });
    assert.deepEqual(results[7], { value: false });
    assert.equal(results[9].error.code, "PRECONDITION_FAILED");
  });
});

Deno.test("POST /batch with atomic: all or nothing, the failure's status", async () => {
  await withApp(async (call, ops) => {
    await ops.kvPut("k", "v");
    const body = JSON.stringify({
      atomic: true,
      operations: [
        { op: "counterIncrement", key: "c", amount: "1" },
        { op: "kvPut", key: "k", value: "w", options: { ifMatch: "stale" } },
      ],
    });
    assertError(await call("POST", "/batch", { body }), 412, /operation 1 .*nothing was changed/);
    assert.equal(await ops.counterGet("c"), 0n);
    const ok = await call("POST", "/batch", {
      body: JSON.stringify({
        atomic: true,
        operations: [{ op: "counterIncrement", key: "c", amount: "1" }],
      }),
    });
    assert.equal(ok.text, '{"results":[{"value":"1"}]}');
  });
});

Deno.test("POST /batch refuses a bad batch whole: 400, and 413 past the limits", async () => {
  await withApp(async (call) => {
    const batch = (operations: unknown, extra = {}) => ({
      body: JSON.stringify({ operations, ...extra }),
    });
    assertError(await call("POST", "/batch", { body: "not json" }), 400, /not JSON/);
    assertError(await call("POST", "/batch", { body: "{}" }), 400);
    assertError(await call("POST", "/batch", batch([{ op: "kvList" }])), 400);
    assertError(await call("POST", "/batch", batch([{ op: "flush" }])), 400);
    assertError(
      await call("POST", "/batch", batch([{ op: "kvGet", key: "k" }], { atomic: "yes" })),
      400,
    );
    const tooMany = Array.from({ length: 1001 }, () => ({ op: "counterGet", key: "c" }));
    assertError(
      await call("POST", "/batch", batch(tooMany)),
      413,
      /1001 operations, the limit is 1000/,
    );
    const allowed = await call("POST", "/batch", batch(tooMany.slice(1)));
    assert.equal(allowed.status, 200);
    assert.equal(JSON.parse(allowed.text).results.length, 1000);
  });
  const limits = { ...DEFAULT_LIMITS, maxValueBytes: 1000 };
  await withApp(async (call) => {
    const huge = JSON.stringify({
      operations: [{ op: "kvPut", key: "k", value: "x".repeat(8000) }],
    });
    assertError(await call("POST", "/batch", { body: huge }), 413);
  }, limits);
});

Deno.test("the new routes answer 405 to other methods, with Allow", async () => {
  await withApp(async (call) => {
    const cases: [string, string, string][] = [
      ["PATCH", "/cache/k", "GET, PUT, DELETE, HEAD"],
      ["POST", "/kv", "GET, HEAD"],
      ["DELETE", "/sets", "GET, HEAD"],
      ["GET", "/batch", "POST"],
      ["PUT", "/batch", "POST"],
    ];
    for (const [method, path, allow] of cases) {
      const answer = await call(method, path);
      assertError(answer, 405, /method not allowed/);
      assert.equal(answer.headers.get("allow"), allow, `${method} ${path}`);
    }
    assertError(await call("GET", "/kv/"), 400, /non-empty key/);
  });
});
