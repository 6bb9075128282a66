// Watches over the wire, beyond the conformance suite: the Server-Sent Events framing (a raw
// fetch, curl -N, the runtime's own EventSource, the client's parser), the refusals and the
// limits (keys, watchers, request slots, time limits), the end of a watch (break, abort,
// shutdown: nothing left behind), a consumer that does not read, and access tokens.

import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { HttpClient, type Operations, type WatchChange } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import {
  PermissionDeniedError,
  UnauthenticatedError,
  UnavailableError,
  ValueTooLargeError,
} from "@purple/client/errors";
import { grpcMethod } from "@purple/protocol/wire";
import { changeFromJson } from "@purple/protocol/watch";
import { DEFAULT_LIMITS, type Limits, openBackend } from "../backends/mod.ts";
import { startHttpServer } from "../server/http.ts";
import { startGrpcServer } from "../server/grpc.ts";
import { serverSentEvents } from "../client/_sse.ts";
import { Watching } from "./_conformance_watch.ts";
import { goawayAbortRetried } from "./_process.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const decoder = new TextDecoder();
const FULL = "full-access-token-0123456789";
const READ = "read-only-token-0123456789ab";

/** A memory backend served over both protocols, with `limits`; closed by `close()`. */
async function served(
  limits: Partial<Limits> = {},
  options: { heartbeatMs?: number; auth?: boolean } = {},
) {
  const all = { ...DEFAULT_LIMITS, ...limits };
  const ops = await openBackend({ kind: "memory", limits: all });
  const lines: string[] = [];
  const serve = {
    hostname: "127.0.0.1",
    port: 0,
    limits: all,
    log: (line: string) => lines.push(line),
    heartbeatMs: options.heartbeatMs,
    auth: options.auth ? { full: [FULL], read: [READ] } : undefined,
  };
  const http = await startHttpServer(ops, serve);
  const grpcServer = await startGrpcServer(ops, serve);
  return {
    ops,
    lines,
    http,
    grpc: grpcServer,
    url: `http://127.0.0.1:${http.port}`,
    address: `127.0.0.1:${grpcServer.port}`,
    async close() {
      await Promise.all([http.shutdown(), grpcServer.shutdown()]);
      await ops.close();
    },
  };
}

/** Reads a response body as text until `done` holds for what came so far (then cancels it). */
async function readUntil(
  body: ReadableStream<Uint8Array>,
  done: (text: string) => boolean,
  ms = 3_000,
): Promise<string> {
  const reader = body.getReader();
  let text = "";
  const timer = setTimeout(() => reader.cancel(), ms);
  try {
    while (!done(text)) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      text += decoder.decode(value, { stream: true });
    }
    return text;
  } finally {
    clearTimeout(timer);
    await reader.cancel();
  }
}

async function* chunksOf(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield new TextEncoder().encode(part);
}

async function eventsOf(...parts: string[]) {
  const events = [];
  for await (const event of serverSentEvents(chunksOf(...parts))) events.push(event);
  return events;
}

Deno.test("the SSE parser follows the standard: line endings, comments, fields, cut chunks", async () => {
  assert.deepEqual(await eventsOf("data: a\n\n"), [{ event: "message", data: "a", id: "" }]);
  // CRLF, CR and LF, a CRLF cut between two chunks, a BOM, a comment, multi-line data, no space.
  assert.deepEqual(
    await eventsOf(
      "\ufeff: hello\r\ndata:one\r",
      '\ndata:  two\r\revent: end\nid: 7\ndata: {"x":1}\n',
      "\n",
      "data: cut off",
    ),
    [
      { event: "message", data: "one\n two", id: "" },
      { event: "end", data: '{"x":1}', id: "7" },
    ],
  );
  // An event without data is not dispatched; an unknown field is ignored; "data" alone is "".
  assert.deepEqual(await eventsOf("event: x\n\nretry: 5\nfoo: bar\ndata\n\n"), [
    { event: "message", data: "", id: "" },
  ]);
  // A UTF-8 character cut between chunks.
  const bytes = new TextEncoder().encode("data: é✓\n\n");
  const events = [];
  for await (
    const event of serverSentEvents((async function* () {
      for (const byte of bytes) yield new Uint8Array([byte]);
    })())
  ) events.push(event);
  assert.deepEqual(events, [{ event: "message", data: "é✓", id: "" }]);
});

Deno.test("GET /watch is an event stream: retry, then one data event per change, as JSON", async () => {
  const s = await served();
  try {
    await s.ops.counterIncrement("hits", 9007199254740993n);
    await s.ops.kvPut("doc", new Uint8Array([0, 255, 1]));
    const response = await fetch(`${s.url}/watch?counters=hits&kv=doc&kv=doc&flags=a%2Fb+c`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
    assert.equal(response.headers.get("cache-control"), "no-cache");
    const written = (async () => {
      await sleep(100);
      await s.ops.flagSet("a/b c", true);
    })();
    const text = await readUntil(response.body!, (text) => text.split("\n\n").length > 4);
    await written;
    const { version } = await s.ops.kvGetEntry("doc");
    assert.equal(
      text,
      "retry: 1000\n" +
        'data: {"service":"counters","key":"hits","exists":true,"value":"9007199254740993"}\n\n' +
        'data: {"service":"flags","key":"a/b c","exists":false,"value":false}\n\n' +
        `data: {"service":"kv","key":"doc","exists":true,"value":{"base64":"AP8B"},"version":"${version}"}\n\n` +
        'data: {"service":"flags","key":"a/b c","exists":true,"value":true}\n\n',
    );
  } finally {
    await s.close();
  }
});

Deno.test("GET /watch refuses as every route does: JSON and a status, before any event", async () => {
  const s = await served({ maxWatchKeys: 3 });
  try {
    const cases: Array<[string, number, RegExp]> = [
      ["/watch", 400, /no key to watch/],
      ["/watch?kv=", 400, /Bad key: expected a non-empty string/],
      ["/watch?keys=a", 400, /unknown query parameter 'keys'/],
      ["/watch?kv=%FF", 400, /malformed percent-encoding/],
      [`/watch?kv=${"x".repeat(513)}`, 400, /Bad key/],
      ["/watch?kv=a&kv=b&flags=c&sets=d", 413, /4 keys, the limit is 3/],
    ];
    for (const [path, status, message] of cases) {
      const response = await fetch(s.url + path);
      assert.equal(response.status, status, path);
      assert.equal(response.headers.get("content-type"), "application/json", path);
      assert.match((await response.json()).error, message, path);
    }
    const post = await fetch(`${s.url}/watch?kv=a`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    await post.body?.cancel();
    const grpcClient = new GrpcClient(s.address);
    await assert.rejects(grpcClient.watch({ kv: ["a", "b", "c", "d"] }).next(), ValueTooLargeError);
    await grpcClient.close(); // Before the server goes: see the shutdown test.
  } finally {
    await s.close();
  }
});

Deno.test("curl -N prints each event as it comes", async () => {
  const s = await served();
  try {
    const curl = new Deno.Command("curl", {
      args: ["-sN", "--max-time", "2", `${s.url}/watch?counters=visits`],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = curl.stdout.getReader();
    let text = "";
    const read = async (count: number) => {
      while (text.split("\n\n").length <= count) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value);
      }
    };
    await read(1);
    assert.equal(
      text,
      'retry: 1000\ndata: {"service":"counters","key":"visits","exists":false,"value":"0"}\n\n',
    );
    await s.ops.counterIncrement("visits", 2);
    await read(2);
    assert.ok(
      text.endsWith('data: {"service":"counters","key":"visits","exists":true,"value":"2"}\n\n'),
    );
    reader.releaseLock();
    await curl.stdout.cancel();
    await curl.status;
  } finally {
    await s.close();
  }
});

Deno.test("an idle stream sends a heartbeat comment every heartbeatMs", async () => {
  const s = await served({}, { heartbeatMs: 100 });
  try {
    const response = await fetch(`${s.url}/watch?flags=f`);
    const text = await readUntil(
      response.body!,
      (text) => text.split(": heartbeat\n\n").length > 3,
    );
    assert.match(text, /^retry: 1000\ndata: [^\n]+\n\n(: heartbeat\n\n){3}$/);
  } finally {
    await s.close();
  }
});

Deno.test("the runtime's own EventSource reads the stream: messages, then the end event", async () => {
  const s = await served();
  const source = new EventSource(`${s.url}/watch?sets=team`);
  try {
    const changes: WatchChange[] = [];
    const ended = new Promise<string>((resolve) => {
      source.addEventListener("end", (event) => resolve((event as MessageEvent).data));
    });
    const got = (count: number) =>
      new Promise<void>((resolve) => {
        const check = () => changes.length >= count && resolve();
        source.onmessage = (event) => {
          changes.push(changeFromJson(JSON.parse(event.data)));
          check();
        };
        check();
      });
    await got(1);
    await s.ops.setAdd("team", "ann");
    await got(2);
    assert.deepEqual(changes, [
      { service: "sets", key: "team", exists: false, items: [] },
      { service: "sets", key: "team", exists: true, items: ["ann"] },
    ]);
    source.onerror = () => source.close(); // Do not reconnect after the end.
    await s.http.shutdown();
    assert.deepEqual(JSON.parse(await ended), {
      error: {
        code: "UNAVAILABLE",
        message: "Purple is shutting down: watch again elsewhere or later",
      },
    });
  } finally {
    source.close();
    await s.close();
  }
});

Deno.test("HttpClient.watch(): break and abort end the request; nothing is left open", async () => {
  const s = await served();
  const client = new HttpClient(s.url);
  try {
    let seen = 0;
    for await (const change of client.watch({ counters: ["c"] })) {
      seen++;
      if (change.service === "counters" && change.value === 0n) {
        queueMicrotask(() => s.ops.counterIncrement("c", 1));
        continue;
      }
      break;
    }
    assert.equal(seen, 2);
    const controller = new AbortController();
    const reason = new Error("enough");
    const watch = client.watch({ counters: ["c"] }, { signal: controller.signal });
    assert.equal((await watch.next()).done, false);
    const pending = watch.next();
    controller.abort(reason);
    await assert.rejects(pending, (error) => error === reason);
    // return() while a step waits: the step ends (done), the request is cancelled.
    const returned = client.watch({ counters: ["c"] });
    await returned.next();
    const waiting = returned.next();
    await returned.return!();
    assert.deepEqual(await waiting, { value: undefined, done: true });
  } finally {
    await client.close();
    await s.close();
  }
});

/** Operations whose watches are counted while open. */
function counting(ops: Operations): Operations & { open: () => number } {
  let open = 0;
  const watch = (...args: Parameters<Operations["watch"]>) => {
    const changes = ops.watch(...args)[Symbol.asyncIterator]();
    let counted = false;
    let ended = false;
    const end = () => {
      if (counted && !ended) open--;
      ended = true;
    };
    return {
      async next() {
        if (!counted && !ended) {
          counted = true;
          open++;
        }
        try {
          const result = await changes.next();
          if (result.done) end();
          return result;
        } catch (error) {
          end();
          throw error;
        }
      },
      async return() {
        end();
        return await changes.return!();
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  };
  return new Proxy(ops, {
    get: (target, name) =>
      name === "watch" ? watch : name === "open" ? () => open : Reflect.get(target, name),
  }) as Operations & { open: () => number };
}

async function eventually(check: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail("the condition did not hold in time");
    await sleep(10);
  }
}

Deno.test({
  name: "GrpcClient.watch(): break, abort and return() cancel the call; the server's watch ends",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const backend = await openBackend({ kind: "memory" });
    const ops = counting(backend);
    const options = { hostname: "127.0.0.1", port: 0, limits: DEFAULT_LIMITS, log: () => {} };
    const server = await startGrpcServer(ops, options);
    const client = new GrpcClient(`127.0.0.1:${server.port}`);
    try {
      for await (const _ of client.watch({ kv: ["k"] })) break;
      await eventually(() => ops.open() === 0);
      const controller = new AbortController();
      const reason = new Error("enough");
      const watch = client.watch({ kv: ["k"] }, { signal: controller.signal });
      await watch.next();
      assert.equal(ops.open(), 1);
      const pending = watch.next();
      controller.abort(reason);
      await assert.rejects(pending, (error) => error === reason);
      await eventually(() => ops.open() === 0);
      const returned = client.watch({ kv: ["k"] });
      await returned.next();
      const waiting = returned.next();
      await returned.return!();
      assert.deepEqual(await waiting, { value: undefined, done: true });
      await eventually(() => ops.open() === 0);
    } finally {
      await client.close();
      await server.shutdown();
      await backend.close();
    }
  },
});

Deno.test({
  name: "watches hold no request slot, and no time limit cuts them",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "purple_watch_" });
    // Disk: the backend time limit applies to it (memory settles at once and is never timed).
    const limits = {
      ...DEFAULT_LIMITS,
      maxConcurrentRequests: 2,
      backendTimeoutMs: 200,
      bodyTimeoutMs: 200,
    };
    const ops = await openBackend({ kind: "disk", dataDir, limits });
    const options = { hostname: "127.0.0.1", port: 0, limits, log: () => {} };
    const http = await startHttpServer(ops, options);
    const grpcServer = await startGrpcServer(ops, options);
    const httpClient = new HttpClient(`http://127.0.0.1:${http.port}`);
    const grpcClient = new GrpcClient(`127.0.0.1:${grpcServer.port}`);
    const watches: Watching[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        watches.push(new Watching(httpClient, { counters: ["n"] }));
        watches.push(new Watching(grpcClient, { counters: ["n"] }));
      }
      for (const watch of watches) await watch.next();
      // Eight watches are open, on servers that take two requests at once.
      assert.equal(await httpClient.counterIncrement("n", 1), 1n);
      assert.equal(await grpcClient.counterIncrement("n", 1), 2n);
      for (const watch of watches) {
        const last = await watch.until((c) => c.service === "counters" && c.value === 2n);
        assert.ok(last.length >= 1);
      }
      await sleep(600); // Three times each time limit.
      await httpClient.counterIncrement("n", 1);
      for (const watch of watches) {
        assert.deepEqual(await watch.next(), {
          service: "counters",
          key: "n",
          exists: true,
          value: 3n,
        });
      }
    } finally {
      await Promise.all(watches.map((watch) => watch.close()));
      await httpClient.close();
      await grpcClient.close();
      await Promise.all([http.shutdown(), grpcServer.shutdown()]);
      await ops.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "maxWatchers: one watch more is 503 / UNAVAILABLE at once, over both protocols together",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const s = await served({ maxWatchers: 3 });
    const httpClient = new HttpClient(s.url);
    const grpcClient = new GrpcClient(s.address);
    const watches = [
      new Watching(httpClient, { flags: ["a"] }),
      new Watching(grpcClient, { flags: ["a"] }),
      new Watching(s.ops, { flags: ["a"] }),
    ];
    try {
      for (const watch of watches) await watch.next();
      const response = await fetch(`${s.url}/watch?flags=a`);
      assert.equal(response.status, 503);
      assert.match((await response.json()).error, /serving 3 watches \(the limit\)/);
      await assert.rejects(httpClient.watch({ flags: ["b"] }).next(), UnavailableError);
      await assert.rejects(grpcClient.watch({ flags: ["b"] }).next(), UnavailableError);
      // A closed watch frees its place once the server sees the request go.
      await watches[0].close();
      for (let attempt = 1;; attempt++) {
        const again = new Watching(grpcClient, { flags: ["b"] });
        watches.push(again);
        try {
          assert.equal((await again.next()).key, "b");
          break;
        } catch (error) {
          if (!(error instanceof UnavailableError) || attempt === 100) throw error;
          await sleep(20);
        }
      }
    } finally {
      await Promise.all(watches.map((watch) => watch.close()));
      await httpClient.close();
      await grpcClient.close();
      await s.close();
    }
  },
});

/**
 * The gRPC watchers of the shutdown test, in their own process: Deno's node:http2 client can
 * abort its whole process on the server's GOAWAY with streams open (an nghttp2 assertion,
 * denoland/deno#36788), which must not take the test runner down. It opens 5 watches, prints
 * "ready" once each has its first state, then the outcome of each as JSON once they end.
 */
const GRPC_WATCHERS = `
  import { GrpcClient } from "@purple/client/grpc";
  const client = new GrpcClient(Deno.args[0]);
  const watches = Array.from({ length: 5 }, () => client.watch({ kv: ["k"] }));
  for (const watch of watches) await watch.next();
  console.log("ready");
  const ends = await Promise.all(watches.map((watch) =>
    watch.next().then(() => "a change", (error) => error.name + ": " + error.message)));
  console.log(JSON.stringify(ends));
  await client.close();
`;

Deno.test({
  name: "shutdown ends every open watch at once: an end event over HTTP, UNAVAILABLE over gRPC",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    for (let attempt = 1;; attempt++) {
      const s = await served();
      const httpClient = new HttpClient(s.url);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          "--config",
          new URL("../deno.json", import.meta.url).pathname,
          GRPC_WATCHERS,
          s.address,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      try {
        const watches = Array.from({ length: 5 }, () => new Watching(httpClient, { kv: ["k"] }));
        for (const watch of watches) await watch.next();
        const ends = watches.map((watch) => watch.next().catch((error) => error));
        const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let out = "";
        while (!out.includes("ready\n")) {
          const { value, done } = await lines.read();
          if (done) break;
          out += value;
        }
        const start = performance.now();
        await Promise.all([s.http.shutdown(), s.grpc.shutdown()]);
        const took = performance.now() - start;
        for (const end of await Promise.all(ends)) {
          assert.ok(end instanceof UnavailableError, String(end));
          assert.match(end.message, /shutting down/);
        }
        for (;;) {
          const { value, done } = await lines.read();
          if (done) break;
          out += value;
        }
        const code = (await child.status).code;
        const errors = await stderr;
        if (goawayAbortRetried(code, errors, attempt)) continue;
        assert.equal(code, 0, errors);
        const outcomes = JSON.parse(out.split("\n")[1]) as string[];
        assert.equal(outcomes.length, 5);
        for (const outcome of outcomes) assert.match(outcome, /^UnavailableError: .*shutting down/);
        assert.ok(took < 1_000, `shutdown took ${took.toFixed(0)} ms`);
        return;
      } finally {
        try {
          child.kill("SIGKILL");
        } catch { /* ended */ }
        await child.status;
        await httpClient.close();
        await s.close();
      }
    }
  },
});

Deno.test({
  name: "a consumer that does not read: memory stays bounded while a writer floods its key",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const s = await served();
    const value = new Uint8Array(64 * 1024).map((_, i) => i % 251);
    // HTTP: a raw connection that asks for the stream and never reads it.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.http.port });
    await conn.write(new TextEncoder().encode(
      "GET /watch?kv=big HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n",
    ));
    // gRPC: a call whose messages are never taken.
    const client = new grpc.Client(s.address, grpc.credentials.createInsecure());
    const method = grpcMethod("watch");
    const call = client.makeServerStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      { kv: ["big"] },
    );
    call.on("error", () => {});
    call.pause();
    try {
      await sleep(200);
      // The V8 heap and the memory outside it (array buffers: values, events, chunks).
      const used = () => {
        const { heapUsed, external } = Deno.memoryUsage();
        return heapUsed + external;
      };
      const before = used();
      let peak = before;
      const writes = 6_000; // 384 MiB of values, 512 MiB of base64 events
      for (let i = 0; i < writes; i++) {
        value[0] = i % 256;
        await s.ops.kvPut("big", value);
        if (i % 50 === 0) {
          await sleep(0); // Let the streams take what they can.
          peak = Math.max(peak, used());
        }
      }
      const growth = (peak - before) / 2 ** 20;
      assert.ok(growth < 120, `the memory in use grew by ${growth.toFixed(0)} MiB`);
    } finally {
      conn.close();
      call.cancel();
      client.close();
      await s.close();
    }
  },
});

Deno.test({
  name: "access tokens: a read-only token may watch; none is 401 / UNAUTHENTICATED",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const s = await served({}, { auth: true });
    const clients = [
      new HttpClient(s.url, { token: READ }),
      new GrpcClient(s.address, { token: READ }),
    ];
    const strangers = [new HttpClient(s.url), new GrpcClient(s.address)];
    try {
      for (const [i, client] of clients.entries()) {
        const watch = new Watching(client, { counters: [`c${i}`] });
        assert.deepEqual(await watch.next(), {
          service: "counters",
          key: `c${i}`,
          exists: false,
          value: 0n,
        });
        await new HttpClient(s.url, { token: FULL }).counterIncrement(`c${i}`, 1);
        assert.equal((await watch.next()).exists, true);
        await watch.close();
        await assert.rejects(client.counterIncrement("c", 1), PermissionDeniedError);
      }
      for (const stranger of strangers) {
        await assert.rejects(stranger.watch({ counters: ["c"] }).next(), UnauthenticatedError);
      }
      const response = await fetch(`${s.url}/watch?counters=c`);
      assert.equal(response.status, 401);
      await response.body?.cancel();
    } finally {
      for (const client of [...clients, ...strangers]) await client.close();
      await s.close();
    }
  },
});
