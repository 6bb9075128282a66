/**
 * The original Go Purple's HTTP client (`http_client.go` of github.com/purpledb/purple, before
 * the clients moved out in December 2019), replayed byte for byte: no Go toolchain here. Its
 * `CacheGet` sends, through go-resty v2.0.0 on Go's net/http, a GET with no `Accept` header
 * (resty adds one only when the request has a JSON or XML `Content-Type`), and does not look at
 * the status: it `json.Unmarshal`s the body into `struct{ Value string }` and returns the error of
 * that, if any. The original server answered a miss 404 with an empty body, which fails to parse:
 * the Go client's error on a miss. A `{"error": "..."}` body parses (an unknown field, no
 * `value`): an empty value and no error, a miss taken for a hit. So Purple answers a request
 * without `Accept` with the original's empty 404, and every other client (curl, browsers, fetch,
 * HttpClient: all send `Accept`) with the JSON body that says why.
 */

import assert from "node:assert/strict";
import { HttpClient } from "@purple/client";
import { NotFoundError } from "@purple/client/errors";
import { startPurple } from "./_purple.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What go-resty v2.0.0 over Go's net/http writes for `R().Get(url)`, byte for byte. */
function goRestyGet(port: number, path: string): string {
  return `GET ${path} HTTP/1.1\r\n` +
    `Host: 127.0.0.1:${port}\r\n` +
    "User-Agent: go-resty/2.0.0 (https://github.com/go-resty/resty)\r\n" +
    "Accept-Encoding: gzip\r\n" +
    "\r\n";
}

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
}

/** Sends raw bytes and reads one HTTP/1.1 response (with a Content-Length, as Purple's have). */
async function exchange(port: number, request: string): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(request));
    let bytes = new Uint8Array(0);
    const buffer = new Uint8Array(65536);
    const headEnd = () => decoder.decode(bytes).indexOf("\r\n\r\n");
    const read = async () => {
      const n = await conn.read(buffer);
      if (n === null) throw new Error(`The connection closed: ${decoder.decode(bytes)}`);
      const next = new Uint8Array(bytes.length + n);
      next.set(bytes);
      next.set(buffer.subarray(0, n), bytes.length);
      bytes = next;
    };
    while (headEnd() < 0) await read();
    const end = headEnd();
    const [statusLine, ...lines] = decoder.decode(bytes.subarray(0, end)).split("\r\n");
    const headers = new Map(lines.map((line) => {
      const colon = line.indexOf(":");
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
    }));
    assert.ok(headers.has("content-length"), `no Content-Length: ${statusLine}`);
    const length = Number(headers.get("content-length"));
    while (bytes.length < end + 4 + length) await read();
    return {
      status: Number(statusLine.split(" ")[1]),
      headers,
      body: bytes.subarray(end + 4, end + 4 + length),
    };
  } finally {
    conn.close();
  }
}

/**
 * Go's `json.Unmarshal(body, &struct{ Value string `json:"value"` }{})`, for the bodies that
 * matter here: the error it returns (`undefined` for none) and the value it leaves.
 */
function goUnmarshalValue(body: Uint8Array): { error?: string; value: string } {
  const text = decoder.decode(body);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {
      error: text.trim() === "" ? "unexpected end of JSON input" : "invalid character",
      value: "",
    };
  }
  if (parsed === null) return { value: "" }; // null into a struct: no change, no error.
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    return { error: `json: cannot unmarshal ${typeof parsed} into Go value`, value: "" };
  }
  // Fields match case-insensitively; unknown fields are ignored.
  const entry = Object.entries(parsed).find(([name]) => name.toLowerCase() === "value");
  if (entry === undefined || entry[1] === null) return { value: "" };
  if (typeof entry[1] !== "string") {
    return { error: "json: cannot unmarshal into Go struct field .value", value: "" };
  }
  return { value: entry[1] };
}

Deno.test("goUnmarshalValue() is Go's json.Unmarshal for the bodies of a cache get", () => {
  assert.deepEqual(goUnmarshalValue(encoder.encode("")), {
    error: "unexpected end of JSON input",
    value: "",
  });
  assert.deepEqual(goUnmarshalValue(encoder.encode('{"value":"v"}')), { value: "v" });
  // Why a JSON error body would not do: the Go client sees a hit with an empty value.
  assert.deepEqual(goUnmarshalValue(encoder.encode('{"error":"Cannot get cache key"}')), {
    value: "",
  });
});

Deno.test("the original Go HTTP client gets an error on every miss, HttpClient and curl a reason", async (t) => {
  const purple = await startPurple(["http", "--backend", "memory", "--port", "0"]);
  const port = purple.httpPort!;
  const client = new HttpClient(`http://127.0.0.1:${port}`);
  try {
    await t.step("Go CacheGet on a miss: 404, no body, so json.Unmarshal fails", async () => {
      const answer = await exchange(port, goRestyGet(port, "/cache/never-set"));
      assert.equal(answer.status, 404);
      assert.equal(answer.headers.get("content-length"), "0");
      assert.equal(answer.headers.get("content-type"), undefined);
      assert.equal(goUnmarshalValue(answer.body).error, "unexpected end of JSON input");
    });

    await t.step("Go CacheGet on an expired entry: the same error", async () => {
      await client.cacheSet("short", "lived", 1);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const answer = await exchange(port, goRestyGet(port, "/cache/short"));
      assert.equal(answer.status, 404);
      assert.ok(goUnmarshalValue(answer.body).error);
    });

    await t.step("Go CacheGet on a hit: the value, no error", async () => {
      await client.cacheSet("player1-session", "a1b2c3", 60);
      const answer = await exchange(port, goRestyGet(port, "/cache/player1-session"));
      assert.equal(answer.status, 200);
      assert.deepEqual(goUnmarshalValue(answer.body), { value: "a1b2c3" });
    });

    await t.step(
      "Go KVGet and KVDelete on a miss: 404, which their status checks refuse",
      async () => {
        for (const [method, path] of [["GET", "/kv/absent"], ["DELETE", "/kv/absent"]]) {
          const request = goRestyGet(port, path).replace(/^GET/, method);
          const answer = await exchange(port, request);
          assert.equal(answer.status, 404, `${method} ${path}`);
          assert.equal(answer.body.length, 0);
        }
      },
    );

    await t.step("curl (Accept: */*) on a miss: 404 with the JSON reason", async () => {
      const answer = await exchange(
        port,
        `GET /cache/never-set HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
          "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
      );
      assert.equal(answer.status, 404);
      assert.equal(answer.headers.get("content-type"), "application/json");
      assert.deepEqual(JSON.parse(decoder.decode(answer.body)), {
        error: "Cannot find cache key 'never-set': not found",
      });
    });

    await t.step("HttpClient on a miss: NotFoundError with the server's reason", async () => {
      await assert.rejects(
        client.cacheGet("never-set"),
        (error: Error) =>
          error instanceof NotFoundError &&
          error.message === "Cannot find cache key 'never-set': not found",
      );
      // Even through a fetch that adds no Accept of its own.
      const bare = new HttpClient(`http://127.0.0.1:${port}`, {
        fetch: (input, init) => {
          const headers = new Headers(init?.headers);
          assert.equal(headers.get("accept"), "application/json");
          return fetch(input, init);
        },
      });
      await assert.rejects(bare.cacheGet("absent"), /Cannot find cache key 'absent': not found/);
    });
  } finally {
    await client.close();
    assert.equal((await purple.stop()).code, 0);
  }
});
