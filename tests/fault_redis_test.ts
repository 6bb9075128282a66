// Redis failing under load, against the real `purple --backend redis` process: requests fail
// fast with 503 / UNAVAILABLE (nothing else), the process stays up and answers its health
// checks, and it serves again within seconds of Redis returning. Two faults: Redis stopped
// (its connections close), and Redis frozen (SIGSTOP: connections open, nothing answered).

import assert from "node:assert/strict";
import { HttpClient } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import { UnavailableError } from "@purple/client/errors";
import { REDIS_MISSING, startRedis } from "./_redis.ts";
import { startPurple } from "./_purple.ts";
import { grpcFrame, grpcTest, rawGrpc, sleep } from "./_hardening.ts";

/** One request's outcome: when it ended, how long it took, and how. */
interface Outcome {
  at: number;
  ms: number;
  result: "ok" | "unavailable" | "other";
  detail?: string;
}

/** Keeps `workers` HTTP and `workers` gRPC clients calling in loops until stopped. */
function load(url: string, address: string, workers: number) {
  const outcomes: Outcome[] = [];
  let running = true;
  const clients: Array<HttpClient | GrpcClient> = [];
  const loops: Promise<void>[] = [];
  for (let w = 0; w < workers; w++) {
    for (
      const client of [
        new HttpClient(url, { timeoutMs: 10_000 }),
        new GrpcClient(address, { timeoutMs: 10_000 }),
      ]
    ) {
      clients.push(client);
      loops.push((async () => {
        for (let i = 0; running; i++) {
          const start = performance.now();
          let result: Outcome["result"] = "ok";
          let detail: string | undefined;
          try {
            switch (i % 4) {
              case 0:
                await client.counterIncrement(`hits-${w}`, 1);
                break;
              case 1:
                await client.setAdd(`seen-${w}`, `item-${i % 50}`);
                break;
              case 2:
                await client.flagSet(`flag-${w}`, i % 3 === 0);
                break;
              default:
                await client.counterGet(`hits-${w}`);
            }
          } catch (error) {
            result = error instanceof UnavailableError ? "unavailable" : "other";
            detail = `${(error as Error).name}: ${(error as Error).message}`;
          }
          const end = performance.now();
          outcomes.push({ at: end, ms: end - start, result, detail });
          if (result !== "ok") await sleep(5); // A client backs off a little after a failure.
        }
      })());
    }
  }
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(loops);
      await Promise.all(clients.map((client) => client.close()));
    },
  };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

/** The time from `since` until every worker's calls succeed again (20 successes in a row). */
function recoveredAt(outcomes: Outcome[], since: number): number | undefined {
  let streak = 0;
  for (const outcome of outcomes.filter((o) => o.at >= since).sort((a, b) => a.at - b.at)) {
    streak = outcome.result === "ok" ? streak + 1 : 0;
    if (streak === 20) return outcome.at;
  }
  return undefined;
}

async function waitUntil(condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await sleep(20);
}

grpcTest(
  "purple survives Redis stopping and freezing under load, failing fast and recovering",
  async () => {
    const redis = await startRedis();
    const purple = await startPurple([
      "--backend",
      "redis",
      "--redis-url",
      redis.url,
      "--http-port",
      "0",
      "--grpc-port",
      "0",
      "--backend-timeout-ms",
      "1000",
    ]);
    let alive = true;
    purple.child.status.then(() => alive = false);
    const url = `http://127.0.0.1:${purple.httpPort}`;
    const address = `127.0.0.1:${purple.grpcPort}`;
    const traffic = load(url, address, 4);
    const report: string[] = [];
    const healthChecks = async () => {
      assert.equal((await fetch(`${url}/ping`)).status, 200, "/ping answers during the outage");
      const raw = rawGrpc(address);
      try {
        const health = await raw.call({
          ":method": "POST",
          ":path": "/grpc.health.v1.Health/Check",
          "content-type": "application/grpc",
          "te": "trailers",
        }, [grpcFrame(new Uint8Array())]);
        assert.equal(health.grpcStatus, 0, "gRPC health answers during the outage");
      } finally {
        raw.close();
      }
    };
    try {
      await sleep(1000);
      const before = traffic.outcomes.filter((o) => o.result !== "ok");
      assert.deepEqual(before, [], "all calls succeed while Redis is up");
      const served = traffic.outcomes.length;

      for (const fault of ["stopped", "frozen"] as const) {
        const faultAt = performance.now();
        if (fault === "stopped") await redis.stop();
        else redis.pause();
        await sleep(fault === "stopped" ? 2000 : 3000);
        await healthChecks();
        assert.ok(alive, "purple is still running");
        const backAt = performance.now();
        if (fault === "stopped") await redis.start();
        else redis.resume();
        await waitUntil(() => recoveredAt(traffic.outcomes, backAt) !== undefined, 10_000);
        const recovered = recoveredAt(traffic.outcomes, backAt);
        const during = traffic.outcomes.filter((o) => o.at > faultAt && o.at < backAt);
        const failed = during.filter((o) => o.result !== "ok");
        const others = during.filter((o) => o.result === "other");
        assert.deepEqual(
          others.map((o) => o.detail).slice(0, 5),
          [],
          "failures are 503 / UNAVAILABLE only",
        );
        assert.ok(failed.length > 50, `calls kept failing during the outage (${failed.length})`);
        // Fail fast: a stopped Redis is noticed at once; a frozen one after the 1 s command timeout
        // (the bounds leave room for a loaded CI machine; the figures printed are the real ones).
        const settled = failed.filter((o) => o.at > faultAt + 1500);
        const p50 = percentile(settled.map((o) => o.ms), 0.5);
        const max = Math.max(...settled.map((o) => o.ms));
        const bound = fault === "stopped" ? 500 : 2000;
        assert.ok(max < bound, `every failure took under ${bound} ms (max ${max.toFixed(1)} ms)`);
        assert.ok(recovered !== undefined, "purple serves again once Redis is back");
        const recoveryMs = recovered - backAt;
        assert.ok(
          recoveryMs < 5000,
          `served again ${recoveryMs.toFixed(0)} ms after Redis returned`,
        );
        report.push(
          `Redis ${fault}: ${failed.length} calls failed with 503 / UNAVAILABLE (median ${
            p50.toFixed(1)
          } ms, max ${max.toFixed(1)} ms once settled), 0 other errors; served again ${
            recoveryMs.toFixed(0)
          } ms after Redis returned`,
        );
      }
      assert.ok(alive, "purple is still running");
      const total = traffic.outcomes.length;
      report.unshift(
        `${served} calls before the faults, ${total} in all, over 4 HTTP and 4 gRPC clients`,
      );
      console.log(report.join("\n"));
    } finally {
      await traffic.stop();
      const { code } = await purple.stop();
      assert.equal(code, 0, "purple stops gracefully after the faults");
      await redis.stop();
    }
  },
  REDIS_MISSING !== undefined,
);
