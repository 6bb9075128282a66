// Limits are configuration (flag, variable, help) and apply the same on both protocols: key
// length, value size, set item length and count, request body size, requests at once, and the
// time a backend operation may take. Each breach is a clear status with a message.

import assert from "node:assert/strict";
import http2 from "node:http2";
import type { Operations } from "@purple/client";
import {
  InvalidArgumentError,
  type PurpleError,
  UnavailableError,
  ValueTooLargeError,
} from "@purple/client/errors";
import { DEFAULT_LIMITS, type Limits, openBackend } from "../backends/mod.ts";
import { type CliConfig, HELP, parseCli, UsageError } from "../server/config.ts";
import { jsonBodyLimit } from "../server/http.ts";
import {
  grpcFrame,
  grpcTest,
  KINDS,
  openKind,
  rawGrpc,
  runs,
  serveBoth,
  type Served,
  sleep,
} from "./_hardening.ts";

// ---------------------------------------------------------------------------------------------
// Configuration: flags, variables, help.

function limitsOf(args: string[], env: Record<string, string> = {}): Limits {
  const command = parseCli(args, env);
  assert.equal(command.action, "serve");
  return (command as { config: CliConfig }).config.limits;
}

Deno.test("parseCli() reads every limit from its flag, else its variable, else the default", () => {
  assert.deepEqual(limitsOf([]), DEFAULT_LIMITS);
  assert.deepEqual(
    limitsOf([
      "--max-set-items",
      "3",
      "--max-concurrent-requests",
      "7",
      "--backend-timeout-ms",
      "250",
      "--body-timeout-ms",
      "900",
    ], {
      PURPLE_MAX_SET_ITEMS: "99",
      PURPLE_MAX_CONCURRENT_REQUESTS: "99",
      PURPLE_BACKEND_TIMEOUT_MS: "99",
      PURPLE_BODY_TIMEOUT_MS: "99",
    }),
    {
      ...DEFAULT_LIMITS,
      maxSetItems: 3,
      maxConcurrentRequests: 7,
      backendTimeoutMs: 250,
      bodyTimeoutMs: 900,
    },
  );
  assert.deepEqual(
    limitsOf([], {
      PURPLE_MAX_SET_ITEMS: "4",
      PURPLE_MAX_CONCURRENT_REQUESTS: "8",
      PURPLE_BACKEND_TIMEOUT_MS: "300",
      PURPLE_BODY_TIMEOUT_MS: "1000",
    }),
    {
      ...DEFAULT_LIMITS,
      maxSetItems: 4,
      maxConcurrentRequests: 8,
      backendTimeoutMs: 300,
      bodyTimeoutMs: 1000,
    },
  );
});

Deno.test("parseCli() refuses a limit that is not a whole number from 1 up", () => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [["--max-set-items", "0"], {}, /^Bad --max-set-items: expected a whole number, 1 or more/],
    [[], { PURPLE_MAX_CONCURRENT_REQUESTS: "-1" }, /^Bad PURPLE_MAX_CONCURRENT_REQUESTS: /],
    [["--backend-timeout-ms", "1.5"], {}, /^Bad --backend-timeout-ms: expected a whole number/],
    [
      ["--body-timeout-ms", String(2 ** 31)],
      {},
      /^Bad --body-timeout-ms: expected a whole number of milliseconds from 1 to 2147483647, found '2147483648'$/,
    ],
    [["--max-concurrent-requests", "lots"], {}, /found 'lots'$/],
  ];
  for (const [args, env, message] of cases) {
    assert.throws(() => parseCli(args, env), (error: Error) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("HELP gives every limit's flag, variable and default", () => {
  for (
    const [flag, variable, fallback] of [
      ["--max-set-items", "PURPLE_MAX_SET_ITEMS", "10000"],
      ["--max-concurrent-requests", "PURPLE_MAX_CONCURRENT_REQUESTS", "1024"],
      ["--backend-timeout-ms", "PURPLE_BACKEND_TIMEOUT_MS", "5000"],
      ["--body-timeout-ms", "PURPLE_BODY_TIMEOUT_MS", "10000"],
    ]
  ) {
    const line = HELP.split("\n").find((line) => line.startsWith(`  ${flag} `));
    assert.ok(line, `HELP has a line for ${flag}`);
    assert.ok(line.includes(`[${variable}] (default: ${fallback})`), line);
  }
});

// ---------------------------------------------------------------------------------------------
// Size limits: the same answer over HTTP and gRPC, on every backend.

async function rejects(
  promise: Promise<unknown>,
  kind: new (m: string) => PurpleError,
  re: RegExp,
) {
  await assert.rejects(promise, (error: Error) => {
    assert.ok(error instanceof kind, `expected ${kind.name}, got ${error.name}: ${error.message}`);
    assert.match(error.message, re);
    return true;
  });
}

async function answer(url: string, init: RequestInit = {}): Promise<[number, string]> {
  const response = await fetch(url, init);
  return [response.status, await response.text()];
}

const SMALL: Partial<Limits> = {
  maxKeyBytes: 16,
  maxValueBytes: 64,
  maxItemBytes: 8,
  maxSetItems: 3,
};

for (const kind of KINDS) {
  grpcTest(`configured size limits answer alike over HTTP and gRPC (${kind})`, async () => {
    const opened = await openKind(kind, SMALL);
    const served = await serveBoth(opened.ops, SMALL);
    const { url, grpcClient: grpc } = served;
    try {
      const longKey = "k".repeat(17);
      assert.deepEqual(
        await answer(`${url}/flags/${longKey}`),
        [400, JSON.stringify({ error: "Bad key: 17 bytes, the limit is 16" })],
      );
      await rejects(
        grpc.flagGet(longKey),
        InvalidArgumentError,
        /^Bad key: 17 bytes, the limit is 16$/,
      );

      const value = "v".repeat(65);
      assert.deepEqual(
        await answer(`${url}/kv/a`, {
          method: "PUT",
          headers: { "content-type": "application/octet-stream" },
          body: value,
        }),
        [413, JSON.stringify({ error: "Bad KV value: the body is 65 bytes, the limit is 64" })],
      );
      await rejects(
        grpc.kvPut("a", value),
        ValueTooLargeError,
        /^Bad KV value: 65 bytes, the limit is 64$/,
      );
      const [status] = await answer(`${url}/cache/a?value=${value}`, { method: "PUT" });
      assert.equal(status, 413);
      await rejects(grpc.cacheSet("a", value), ValueTooLargeError, /the limit is 64/);

      assert.equal(
        (await answer(`${url}/sets/s?item=${"i".repeat(9)}`, { method: "PUT" }))[0],
        400,
      );
      await rejects(
        grpc.setAdd("s", "i".repeat(9)),
        InvalidArgumentError,
        /^Bad set item: 9 bytes, the limit is 8$/,
      );
    } finally {
      await served.close();
      await opened.close();
    }
  }, !runs(kind));

  grpcTest(`a full set refuses a new item with 413 / RESOURCE_EXHAUSTED (${kind})`, async () => {
    const opened = await openKind(kind, SMALL);
    const served = await serveBoth(opened.ops, SMALL);
    const { url, grpcClient: grpc } = served;
    const full = JSON.stringify({
      error: "Cannot add item 'd' to set 'team': the set holds 3 items, the limit is 3",
    });
    try {
      await grpc.setAdd("team", "a");
      assert.deepEqual(await answer(`${url}/sets/team?item=b`, { method: "PUT" }), [
        200,
        JSON.stringify({ set: "team", items: ["a", "b"] }),
      ]);
      assert.deepEqual(await grpc.setAdd("team", "c"), ["a", "b", "c"]);
      assert.deepEqual(await answer(`${url}/sets/team?item=d`, { method: "PUT" }), [413, full]);
      await rejects(
        grpc.setAdd("team", "d"),
        ValueTooLargeError,
        new RegExp(`^${JSON.parse(full).error}$`),
      );
      assert.deepEqual(await grpc.setGet("team"), ["a", "b", "c"], "nothing changed");
      // Adding an item the set holds is not growth; removing makes room.
      assert.deepEqual(await grpc.setAdd("team", "a"), ["a", "b", "c"]);
      assert.deepEqual(await answer(`${url}/sets/team?item=a`, { method: "PUT" }), [
        200,
        JSON.stringify({ set: "team", items: ["a", "b", "c"] }),
      ]);
      assert.deepEqual(await grpc.setRemove("team", "b"), ["a", "c"]);
      assert.deepEqual(await grpc.setAdd("team", "d"), ["a", "c", "d"]);
      assert.equal((await answer(`${url}/sets/team?item=e`, { method: "PUT" }))[0], 413);
      assert.deepEqual(await grpc.setAdd("other", "e"), ["e"], "the limit is per set");
    } finally {
      await served.close();
      await opened.close();
    }
  }, !runs(kind));

  Deno.test({
    name: `concurrent adds never take a set past maxSetItems, even from two handles (${kind})`,
    ignore: !runs(kind),
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const limits = { maxSetItems: 5 };
      const opened = await openKind(kind, limits);
      const second = kind === "memory" ? opened.ops : await openBackend({
        kind,
        dataDir: opened.dataDir,
        redisUrl: opened.redis?.url,
        limits,
      });
      try {
        const adds = Array.from(
          { length: 40 },
          (_, i) => (i % 2 === 0 ? opened.ops : second).setAdd("race", `item-${i}`),
        );
        const results = await Promise.allSettled(adds);
        const added = results.filter((result) => result.status === "fulfilled");
        const refused = results.filter((result) =>
          result.status === "rejected" && result.reason instanceof ValueTooLargeError
        );
        assert.equal(added.length, 5, "exactly the limit got in");
        assert.equal(refused.length, 35, "every other add was refused as too large");
        assert.equal((await opened.ops.setGet("race")).length, 5);
        assert.equal((await second.setGet("race")).length, 5);
      } finally {
        if (second !== opened.ops) await second.close();
        await opened.close();
      }
    },
  });
}

grpcTest("request bodies are capped from maxValueBytes on both protocols", async () => {
  const limits = { maxValueBytes: 1000 };
  const ops = await openBackend({ kind: "memory", limits });
  const served = await serveBoth(ops, limits);
  const raw = rawGrpc(served.address);
  try {
    // HTTP: a declared length over the JSON cap is refused before a byte is read.
    const over = jsonBodyLimit(1000) + 1;
    const [status, text] = await answer(`${served.url}/kv/a`, {
      method: "PUT",
      body: "x".repeat(over),
    });
    assert.equal(status, 413);
    assert.match(
      text,
      new RegExp(`the body is ${over} bytes, the limit is ${jsonBodyLimit(1000)}`),
    );
    // gRPC: a message over its method's cap (value + key + item limits + 1 KiB) is refused
    // with RESOURCE_EXHAUSTED before it is decoded.
    const cap = 1000 + DEFAULT_LIMITS.maxKeyBytes + DEFAULT_LIMITS.maxItemBytes + 1024;
    const reply = await raw.call({
      ":method": "POST",
      ":path": "/proto.KV/KVPut",
      "content-type": "application/grpc",
      "te": "trailers",
    }, [grpcFrame(new Uint8Array(cap + 1))]);
    assert.equal(reply.grpcStatus, 8, JSON.stringify(reply));
    assert.match(reply.grpcMessage ?? "", /larger than max/);
    // One byte under the cap is read, decoded, and refused by the value limit instead.
    await assert.rejects(served.grpcClient.kvPut("a", new Uint8Array(1001)), ValueTooLargeError);
  } finally {
    raw.close();
    await served.close();
    await ops.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Requests at once, and the time a backend operation may take: a backend double whose
// operations wait until released.

class Stalled {
  #releases: Array<() => void> = [];
  started = 0;

  /**
   * `ops` where kvGet, kvGetEntry (what GET /kv/:key and KVGet call) and cacheGet wait for `release()` (or forever). Unlike the memory
   * backend it wraps, it does not settle at once (`settlesAtOnce` false), so the servers time it.
   */
  wrap(ops: Operations): Operations {
    const wait = <T>(call: () => Promise<T>) => {
      this.started++;
      return new Promise<void>((resolve) => this.#releases.push(resolve)).then(call);
    };
    return new Proxy(ops, {
      get: (target, name: keyof Operations | "settlesAtOnce") => {
        if (name === "settlesAtOnce") return false;
        if (name === "kvGet" || name === "kvGetEntry" || name === "cacheGet") {
          const call = target[name].bind(target) as (key: string) => Promise<unknown>;
          return (key: string) => wait(() => call(key));
        }
        const value = target[name];
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  release(): void {
    for (const release of this.#releases.splice(0)) release();
  }
}

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function withStalled(
  limits: Partial<Limits>,
  fn: (served: Served, stalled: Stalled) => Promise<void>,
): Promise<void> {
  const inner = await openBackend({ kind: "memory" });
  await inner.kvPut("k", "v");
  const stalled = new Stalled();
  const served = await serveBoth(stalled.wrap(inner), limits);
  try {
    await fn(served, stalled);
  } finally {
    stalled.release();
    await served.close();
    await inner.close();
  }
}

grpcTest("beyond maxConcurrentRequests, HTTP answers 503 at once and /ping still 200", async () => {
  await withStalled({ maxConcurrentRequests: 4 }, async ({ url }, stalled) => {
    const held = Array.from({ length: 4 }, () => fetch(`${url}/kv/k`));
    await until(() => stalled.started === 4);
    const start = performance.now();
    const refused = await fetch(`${url}/flags/f`);
    const ms = performance.now() - start;
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get("retry-after"), "1");
    assert.deepEqual(await refused.json(), {
      error: "Cannot serve the request: Purple is busy with 4 requests (the limit), retry shortly",
    });
    assert.ok(ms < 500, `refused in ${ms.toFixed(0)} ms, not queued`);
    assert.equal((await fetch(`${url}/ping`)).status, 200);
    stalled.release();
    for (const response of await Promise.all(held)) {
      assert.equal(response.status, 200);
      await response.body?.cancel();
    }
    assert.equal((await fetch(`${url}/flags/f`)).status, 200, "served again once below the limit");
    console.log(`HTTP: refused the 5th request in ${ms.toFixed(1)} ms`);
  });
});

grpcTest(
  "beyond maxConcurrentRequests, gRPC answers UNAVAILABLE at once; health still serves",
  async () => {
    await withStalled({ maxConcurrentRequests: 4 }, async ({ address, grpcClient }, stalled) => {
      const held = Array.from({ length: 4 }, () => grpcClient.kvGet("k"));
      await until(() => stalled.started === 4);
      const start = performance.now();
      await rejects(
        grpcClient.flagGet("f"),
        UnavailableError,
        /: Cannot serve the request: Purple is busy with 4 requests \(the limit\), retry shortly$/,
      );
      const ms = performance.now() - start;
      assert.ok(ms < 500, `refused in ${ms.toFixed(0)} ms, not queued`);
      const raw = rawGrpc(address);
      try {
        const health = await raw.call({
          ":method": "POST",
          ":path": "/grpc.health.v1.Health/Check",
          "content-type": "application/grpc",
          "te": "trailers",
        }, [grpcFrame(new Uint8Array())]);
        assert.equal(health.grpcStatus, 0, JSON.stringify(health));
      } finally {
        raw.close();
      }
      stalled.release();
      for (const value of await Promise.all(held)) {
        assert.equal(new TextDecoder().decode(value), "v");
      }
      assert.equal(await grpcClient.flagGet("f"), false, "served again once below the limit");
      console.log(`gRPC: refused the 5th call in ${ms.toFixed(1)} ms`);
    });
  },
);

grpcTest(
  "a backend operation over backendTimeoutMs is 503 / UNAVAILABLE with a message",
  async () => {
    await withStalled({ backendTimeoutMs: 200 }, async ({ url, grpcClient }) => {
      let start = performance.now();
      const [status, text] = await answer(`${url}/cache/slow`);
      const httpMs = performance.now() - start;
      assert.equal(status, 503);
      assert.deepEqual(JSON.parse(text), {
        error: "Cannot get cache key 'slow': the backend did not answer within 200 ms",
      });
      start = performance.now();
      await rejects(
        grpcClient.kvGet("k"),
        UnavailableError,
        /: Cannot get KV key 'k': the backend did not answer within 200 ms$/,
      );
      const grpcMs = performance.now() - start;
      for (const ms of [httpMs, grpcMs]) assert.ok(ms >= 190 && ms < 1000, `${ms} ms`);
      // Other operations are not held up.
      assert.equal((await fetch(`${url}/flags/f`)).status, 200);
      console.log(
        `backend timeout 200 ms: HTTP 503 after ${httpMs.toFixed(0)} ms, gRPC after ${
          grpcMs.toFixed(0)
        } ms`,
      );
    });
  },
);

Deno.test("a set add over the limit is refused by the backend itself, not only by servers", async () => {
  const ops = await openBackend({ kind: "memory", limits: { maxSetItems: 1 } });
  try {
    await ops.setAdd("s", "a");
    await rejects(
      ops.setAdd("s", "b"),
      ValueTooLargeError,
      /the set holds 1 items, the limit is 1$/,
    );
    assert.deepEqual(await ops.setAdd("s", "a"), ["a"]);
  } finally {
    await ops.close();
  }
});

grpcTest(
  "bodyTimeoutMs cuts off unary calls only: a reflection stream may stay open longer",
  async () => {
    const limits = { bodyTimeoutMs: 200 };
    const ops = await openBackend({ kind: "memory", limits });
    const served = await serveBoth(ops, limits);
    const session = http2.connect(`http://${served.address}`);
    session.on("error", () => {});
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "content-type": "application/grpc",
        "te": "trailers",
      });
      const answer = new Promise<{ status?: string; bytes: number }>((resolve) => {
        let bytes = 0;
        let status: string | undefined;
        stream.on("data", (chunk: Uint8Array) => bytes += chunk.length);
        stream.on("trailers", (trailers) => status = String(trailers["grpc-status"]));
        stream.on("close", () => resolve({ status, bytes }));
      });
      const listServices = grpcFrame(Uint8Array.from([0x3a, 0x00])); // list_services: ""
      stream.write(listServices);
      await sleep(400); // twice the body timeout, the stream still open
      stream.write(listServices);
      stream.end();
      const { status, bytes } = await answer;
      assert.equal(status, "0", "the stream ends OK");
      assert.ok(bytes > 100, `both requests answered (${bytes} bytes)`);
    } finally {
      session.destroy();
      await served.close();
      await ops.close();
    }
  },
);
