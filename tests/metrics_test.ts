/**
 * `GET /metrics`: Prometheus' text format, every name prefixed `purple_`, counting both
 * protocols of one process by operation (from the operation table) and outcome, with latency
 * histograms, requests in flight, refusals by limit, backend errors and timeouts, and
 * prom-client's process metrics; behind the token when tokens are set (a read-only token may
 * read it).
 */

import assert from "node:assert/strict";
import { HttpClient } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import type { Operations } from "@purple/protocol";
import { OPERATION_NAMES } from "@purple/protocol";
import { UnavailableError as Busy, ValueTooLargeError } from "@purple/protocol/errors";
import { DEFAULT_LIMITS, openBackend } from "../backends/mod.ts";
import { Metrics, startGrpcServer, startHttpServer } from "../mod.ts";
import { LIMITS, OUTCOMES } from "../server/_metrics.ts";
import { startPurple } from "./_purple.ts";

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const FULL = "full-access-token-0123456789";
const READ = "read-only-token-0123456789ab";

/** The samples of a scrape: `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const cut = line.lastIndexOf(" ");
    found.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return found;
}

async function scrape(base: string, token?: string): Promise<Map<string, number>> {
  const answer = await fetch(`${base}/metrics`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  assert.equal(answer.status, 200);
  assert.equal(answer.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return samples(await answer.text());
}

const requests = (protocol: string, operation: string, outcome: string) =>
  `purple_requests_total{protocol="${protocol}",operation="${operation}",outcome="${outcome}"}`;

Deno.test("GET /metrics counts both protocols of the purple command, by operation and outcome", async () => {
  const purple = await startPurple(["--backend", "memory", "--http-port", "0", "--grpc-port", "0"]);
  const base = `http://127.0.0.1:${purple.httpPort}`;
  const http = new HttpClient(base);
  const grpc = new GrpcClient(`127.0.0.1:${purple.grpcPort}`);
  try {
    await http.counterIncrement("hits", 2);
    await http.counterIncrement("hits", 3);
    await assert.rejects(http.cacheGet("absent"));
    await (await fetch(`${base}/sets/s`, { method: "PUT" })).body?.cancel(); // no item: 400
    await grpc.flagSet("beta", true);
    await assert.rejects(grpc.kvGet("absent"));
    await (await fetch(`${base}/nowhere`)).body?.cancel();

    const text = await (await fetch(`${base}/metrics`)).text();
    for (const line of text.split("\n").filter((line) => line.startsWith("# TYPE "))) {
      assert.match(line, /^# TYPE purple_/, "every name is prefixed purple_");
    }
    const found = samples(text);
    assert.equal(found.get(requests("http", "counterIncrement", "ok")), 2);
    assert.equal(found.get(requests("http", "cacheGet", "not_found")), 1);
    assert.equal(found.get(requests("http", "setAdd", "invalid_argument")), 1);
    assert.equal(found.get(requests("http", "none", "not_found")), 1);
    assert.equal(found.get(requests("grpc", "flagSet", "ok")), 1);
    // KVGet serves kvGetEntry (the value and its version): its label.
    assert.equal(found.get(requests("grpc", "kvGetEntry", "not_found")), 1);
    // The latency histogram of an operation: cumulative buckets, a count, a sum.
    const bucket = (le: string) =>
      found.get(
        `purple_request_duration_seconds_bucket{protocol="http",operation="counterIncrement",le="${le}"}`,
      );
    assert.equal(bucket("+Inf"), 2);
    assert.ok(bucket("0.0001")! <= bucket("10")!);
    assert.equal(
      found.get(
        'purple_request_duration_seconds_count{protocol="http",operation="counterIncrement"}',
      ),
      2,
    );
    assert.ok(
      found.get(
        'purple_request_duration_seconds_sum{protocol="http",operation="counterIncrement"}',
      )! > 0,
    );
    // The scrape itself is in flight on HTTP; nothing is on gRPC.
    assert.equal(found.get('purple_requests_in_flight{protocol="http"}'), 1);
    assert.equal(found.get('purple_requests_in_flight{protocol="grpc"}'), 0);
    // prom-client's process metrics, prefixed too.
    assert.ok(found.get("purple_process_cpu_user_seconds_total")! > 0);
    assert.ok(found.get("purple_process_resident_memory_bytes")! > 0);
    // Every operation label is a name of the operation table, or none.
    for (const key of found.keys()) {
      const operation = /operation="([^"]+)"/.exec(key)?.[1];
      if (operation !== undefined) {
        assert.ok([...OPERATION_NAMES, "none"].includes(operation as never), key);
      }
    }
  } finally {
    await grpc.close();
    await http.close();
    assert.equal((await purple.stop()).code, 0);
  }
});

Deno.test("GET /metrics counts refusals by limit: requests at once, body time and body size", async () => {
  const purple = await startPurple([
    "http",
    "--backend",
    "memory",
    "--port",
    "0",
    "--max-concurrent-requests",
    "1",
    "--body-timeout-ms",
    "300",
    "--max-value-bytes",
    "16",
  ]);
  const base = `http://127.0.0.1:${purple.httpPort}`;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: purple.httpPort! });
  try {
    // One upload holds the only slot, then stops sending: the next request is refused (busy),
    // and the upload itself runs out of time.
    await conn.write(encoder.encode(
      "PUT /kv/slow HTTP/1.1\r\nHost: purple\r\nContent-Type: application/octet-stream\r\n" +
        "Content-Length: 10\r\n\r\nhello",
    ));
    await sleep(100);
    const busy = await fetch(`${base}/flags/x`);
    assert.equal(busy.status, 503);
    await busy.body?.cancel();
    await sleep(500);
    const big = await fetch(`${base}/kv/big`, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: new Uint8Array(100),
    });
    assert.equal(big.status, 413);
    await big.body?.cancel();

    const found = await scrape(base);
    const refusals = (limit: string) =>
      found.get(`purple_refusals_total{protocol="http",limit="${limit}"}`);
    assert.equal(refusals("concurrent_requests"), 1);
    assert.equal(refusals("body_timeout"), 1);
    assert.equal(refusals("body_size"), 1);
    assert.equal(found.get(requests("http", "flagGet", "unavailable")), 1);
    assert.equal(found.get(requests("http", "kvPut", "invalid_argument")), 1);
    assert.equal(found.get(requests("http", "kvPut", "value_too_large")), 1);
    // A refusal is not the backend's failure.
    assert.equal(
      found.get('purple_backend_errors_total{protocol="http",operation="flagGet"}'),
      undefined,
    );
  } finally {
    conn.close();
    await purple.stop();
  }
});

Deno.test("GET /metrics counts backend timeouts and errors, on both protocols", async () => {
  const backend = await openBackend({ kind: "memory" });
  // A backend whose KV gets never answer and whose flagGet fails as a Redis that is down would.
  const { UnavailableError } = await import("@purple/protocol/errors");
  const ops = new Proxy(backend, {
    get(target, name, receiver) {
      if (name === "settlesAtOnce") return false; // It does not: the time limit applies.
      if (name === "kvGet" || name === "kvGetEntry") return () => new Promise(() => {});
      if (name === "flagGet") return () => Promise.reject(new UnavailableError("Redis is down"));
      return Reflect.get(target, name, receiver);
    },
  }) as Operations;
  const metrics = new Metrics({ process: false });
  const limits = { ...DEFAULT_LIMITS, backendTimeoutMs: 100 };
  const options = { hostname: "127.0.0.1", port: 0, limits, metrics, log: () => {} };
  const httpServer = await startHttpServer(ops, options);
  const grpcServer = await startGrpcServer(ops, options);
  const grpc = new GrpcClient(`127.0.0.1:${grpcServer.port}`);
  const http = new HttpClient(`http://127.0.0.1:${httpServer.port}`);
  try {
    await assert.rejects(http.kvGet("k"), /did not answer within 100 ms/);
    await assert.rejects(grpc.kvGet("k"), /did not answer within 100 ms/);
    await assert.rejects(http.flagGet("f"), /Redis is down/);
    await assert.rejects(grpc.flagGet("f"), /Redis is down/);
    const found = samples(await metrics.text());
    for (const protocol of ["http", "grpc"]) {
      assert.equal(
        found.get(
          `purple_backend_timeouts_total{protocol="${protocol}",operation="kvGetEntry"}`,
        ),
        1,
      );
      for (const operation of ["kvGetEntry", "flagGet"]) {
        assert.equal(
          found.get(`purple_backend_errors_total{protocol="${protocol}",operation="${operation}"}`),
          1,
          `${protocol} ${operation}`,
        );
        assert.equal(found.get(requests(protocol, operation, "unavailable")), 1);
      }
    }
    assert.ok(!(await metrics.text()).includes("purple_process_"), "process: false");
  } finally {
    await grpc.close();
    await http.close();
    await httpServer.shutdown();
    await grpcServer.shutdown();
    await backend.close();
  }
});

Deno.test("GET /metrics is behind the token when tokens are set; a read-only token may read it", async () => {
  const purple = await startPurple([
    "--backend",
    "memory",
    "--http-port",
    "0",
    "--grpc-port",
    "0",
    "--auth-token",
    FULL,
    "--read-token",
    READ,
  ]);
  const base = `http://127.0.0.1:${purple.httpPort}`;
  const grpc = new GrpcClient(`127.0.0.1:${purple.grpcPort}`);
  try {
    const open = await fetch(`${base}/metrics`);
    assert.equal(open.status, 401);
    await open.body?.cancel();
    await assert.rejects(grpc.counterGet("c"));
    await scrape(base, FULL);
    const found = await scrape(base, READ);
    assert.equal(found.get(requests("http", "none", "unauthenticated")), 1);
    assert.equal(found.get(requests("grpc", "counterGet", "unauthenticated")), 1);
  } finally {
    await grpc.close();
    await purple.stop();
  }
});

Deno.test("GET /metrics names the operations of fixed paths and of query-picked routes", async () => {
  const ops = await openBackend({ kind: "memory" });
  const metrics = new Metrics({ process: false });
  const server = await startHttpServer(ops, {
    hostname: "127.0.0.1",
    port: 0,
    limits: DEFAULT_LIMITS,
    metrics,
    log: () => {},
  });
  const base = `http://127.0.0.1:${server.port}`;
  const call = async (method: string, path: string, body?: string) => {
    const answer = await fetch(`${base}${path}`, { method, body, headers: { accept: "*/*" } });
    await answer.body?.cancel();
    return answer.status;
  };
  try {
    assert.equal(await call("PUT", "/sets/s?item=a"), 200);
    assert.equal(await call("DELETE", "/sets/s?item=a"), 200);
    assert.equal(await call("DELETE", "/sets/s"), 404);
    assert.equal(await call("GET", "/kv?prefix=a"), 200);
    assert.equal(await call("POST", "/batch", '{"operations":[]}'), 200);
    // A malformed query parameter name: 400 from the route, never a 500 from the counting.
    assert.equal(await call("DELETE", "/sets/s?%zz=1"), 400);
    const found = samples(await metrics.text());
    const requests = (operation: string, outcome: string) =>
      found.get(
        `purple_requests_total{protocol="http",operation="${operation}",outcome="${outcome}"}`,
      );
    assert.equal(requests("setRemove", "ok"), 1);
    assert.equal(requests("setDelete", "not_found"), 1);
    assert.equal(requests("kvList", "ok"), 1);
    assert.equal(requests("batch", "ok"), 1);
    assert.equal(requests("setDelete", "invalid_argument"), 1);
  } finally {
    await server.shutdown();
    await ops.close();
  }
});

Deno.test("docs/metrics.md names every outcome and every limit a metric may carry", async () => {
  const page = await Deno.readTextFile(new URL("../docs/metrics.md", import.meta.url));
  for (const label of [...OUTCOMES.map((outcome) => outcome.toLowerCase()), ...LIMITS]) {
    assert.ok(page.includes(`\`${label}\``), `docs/metrics.md: ${label}`);
  }
});

Deno.test("gRPC refusals are counted by limit too: calls at once and message size", async () => {
  const backend = await openBackend({ kind: "memory" });
  // A backend whose flagGet waits until told: the call holds the only slot meanwhile.
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  let entered = () => {};
  const holding = new Promise<void>((resolve) => entered = resolve);
  const ops = new Proxy(backend, {
    get(target, name, receiver) {
      if (name === "settlesAtOnce") return false;
      if (name === "flagGet") return async () => (entered(), await held, true);
      return Reflect.get(target, name, receiver);
    },
  }) as Operations;
  const metrics = new Metrics({ process: false });
  const limits = { ...DEFAULT_LIMITS, maxConcurrentRequests: 1, maxValueBytes: 16 };
  const server = await startGrpcServer(ops, {
    hostname: "127.0.0.1",
    port: 0,
    limits,
    metrics,
    log: () => {},
  });
  const grpc = new GrpcClient(`127.0.0.1:${server.port}`);
  try {
    const flag = grpc.flagGet("f");
    await holding; // In the backend: the slot is taken (however long the channel took).
    await assert.rejects(grpc.counterGet("c"), Busy);
    release();
    assert.equal(await flag, true);
    // Over kvPut's own cap (the value limit with its key, item and framing: 2.5 KiB here).
    await assert.rejects(grpc.kvPut("big", new Uint8Array(3_000)), ValueTooLargeError);
    const found = samples(await metrics.text());
    const refusals = (limit: string) =>
      found.get(`purple_refusals_total{protocol="grpc",limit="${limit}"}`);
    assert.equal(refusals("concurrent_requests"), 1);
    assert.equal(refusals("body_size"), 1);
    assert.equal(found.get(requests("grpc", "counterGet", "unavailable")), 1);
    assert.equal(found.get(requests("grpc", "kvPut", "value_too_large")), 1);
  } finally {
    await grpc.close();
    await server.shutdown();
    await backend.close();
  }
});
