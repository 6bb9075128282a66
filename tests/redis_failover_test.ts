// A Redis Cluster failover under load, against two real `purple --redis-cluster` processes side
// by side on one cluster: one plain, one with `--redis-wait-replicas 1` (each under its own key
// prefix). HTTP and gRPC clients write to both; a master's replica falls behind, and the master
// is killed (SIGKILL) before it catches up. Purple must answer
// 503 / UNAVAILABLE quickly while the cluster fails over, serve again soon after a replica is
// promoted, never crash; the test reports the writes acknowledged and then lost (replication is
// asynchronous) and what WAIT saves and costs. With WAIT and one replica per master, the
// promoted master has no replica until the killed node returns: its keys' writes are refused
// until then, so the test restarts the killed node (it rejoins as a replica) and waits for that.

import assert from "node:assert/strict";
import { HttpClient, type Operations } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import { UnavailableError } from "@purple/client/errors";
import { openBackend } from "../backends/mod.ts";
import { Redis } from "ioredis";
import { slotOf } from "../backends/_redis_layout.ts";
import {
  CLUSTER_MISSING,
  type ClusterNode,
  type RedisCluster,
  startRedisCluster,
} from "./_redis_cluster.ts";
import { type Purple, startPurple } from "./_purple.ts";
import { grpcTest, sleep } from "./_hardening.ts";

/** One write's outcome: when it ended, how long it took, and how. */
interface Outcome {
  at: number;
  ms: number;
  result: "ok" | "unavailable" | "other";
  detail?: string;
}

/** What the writers of one Purple saw. */
interface Writes {
  outcomes: Outcome[];
  /** KV keys whose put was acknowledged, with the value. */
  kv: Map<string, string>;
  /** Acknowledged increments (each of 1) per counter. */
  counters: Map<string, number>;
  stop(): Promise<void>;
}

/** Keeps `workers` HTTP and `workers` gRPC clients writing in loops until stopped. */
function write(purple: Purple, workers: number): Writes {
  const writes: Writes = { outcomes: [], kv: new Map(), counters: new Map(), stop: async () => {} };
  let running = true;
  const clients: Operations[] = [];
  for (let w = 0; w < workers; w++) {
    clients.push(new HttpClient(`http://127.0.0.1:${purple.httpPort}`, { timeoutMs: 10_000 }));
    clients.push(new GrpcClient(`127.0.0.1:${purple.grpcPort}`, { timeoutMs: 10_000 }));
  }
  const loops = clients.map(async (client, c) => {
    for (let i = 0; running; i++) {
      const start = performance.now();
      let result: Outcome["result"] = "ok";
      let detail: string | undefined;
      try {
        if (i % 2 === 0) {
          const key = `doc-${c}-${i}`;
          await client.kvPut(key, `value ${i}`);
          writes.kv.set(key, `value ${i}`);
        } else {
          const key = `hits-${c}-${i % 16}`; // 16 counters a client, spread over the slots
          await client.counterIncrement(key, 1);
          writes.counters.set(key, (writes.counters.get(key) ?? 0) + 1);
        }
      } catch (error) {
        result = error instanceof UnavailableError ? "unavailable" : "other";
        detail = `${(error as Error).name}: ${(error as Error).message}`;
      }
      const end = performance.now();
      writes.outcomes.push({ at: end, ms: end - start, result, detail });
      if (result !== "ok") await sleep(5); // A client backs off a little after a failure.
    }
  });
  writes.stop = async () => {
    running = false;
    await Promise.all(loops);
    await Promise.all(clients.map((client) => client.close()));
  };
  return writes;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

/** The first moment from `since` after which 50 writes in a row succeeded. */
function recoveredAt(outcomes: Outcome[], since: number): number | undefined {
  let streak = 0;
  let first: number | undefined;
  for (const outcome of outcomes.filter((o) => o.at >= since).sort((a, b) => a.at - b.at)) {
    if (outcome.result !== "ok") {
      streak = 0;
      continue;
    }
    if (streak++ === 0) first = outcome.at;
    if (streak === 50) return first;
  }
  return undefined;
}

async function waitUntil(condition: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`not done within ${ms} ms: ${condition}`);
    await sleep(50);
  }
}

/** How many acknowledged writes the cluster no longer holds. */
async function lost(url: string, prefix: string, writes: Writes) {
  const ops = await openBackend({
    kind: "redis",
    redisUrl: url,
    redisCluster: true,
    redisPrefix: prefix,
  });
  try {
    let kv = 0;
    for (const [key, value] of writes.kv) {
      const stored = await ops.kvGet(key).then(
        (bytes) => new TextDecoder().decode(bytes),
        () => "",
      );
      if (stored !== value) kv++;
    }
    let increments = 0;
    for (const [key, acknowledged] of writes.counters) {
      // A failed increment may have happened too, so this counts at least the lost ones.
      increments += Math.max(0, acknowledged - Number(await ops.counterGet(key)));
    }
    return { kv, increments, acknowledged: writes.kv.size + sum(writes.counters.values()) };
  } finally {
    await ops.close();
  }
}

/** Writes `bytes` of filler straight into one master (keys with a hash tag of its slots). */
async function fill(cluster: RedisCluster, master: ClusterNode, bytes: number): Promise<void> {
  let tag = 0;
  while ((await cluster.masterOf(slotOf(`{filler${tag}}`))).port !== master.port) tag++;
  const client = new Redis(master.url, { lazyConnect: true });
  await client.connect();
  try {
    const chunk = "x".repeat(64 * 1024);
    const writes = [];
    for (let i = 0; i * chunk.length < bytes; i++) {
      writes.push(client.set(`{filler${tag}}:${i}`, chunk));
    }
    await Promise.all(writes);
  } finally {
    client.disconnect();
  }
}

const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);

grpcTest(
  "purple on a Redis Cluster survives a master's failover under load, with and without WAIT",
  async () => {
    const cluster = await startRedisCluster({ nodeTimeoutMs: 1000 });
    const common = [
      ...["--backend", "redis", "--redis-cluster", "--redis-url", cluster.url],
      ...["--http-port", "0", "--grpc-port", "0", "--backend-timeout-ms", "1000"],
    ];
    const [plain, waiting] = await Promise.all([
      startPurple([...common, "--redis-prefix", "plain:"]),
      startPurple([...common, "--redis-prefix", "waiting:", "--redis-wait-replicas", "1"]),
    ]);
    const purples = { plain, waiting };
    const alive = { plain: true, waiting: true };
    plain.child.status.then(() => alive.plain = false);
    waiting.child.status.then(() => alive.waiting = false);
    const load = { plain: write(plain, 2), waiting: write(waiting, 2) };
    const report: string[] = [];
    try {
      assert.match(
        plain.lines[0],
        /redis backend on the Redis Cluster at redis:\/\/127\.0\.0\.1:\d+,.*, prefixed layout \(a cluster implies prefixed\), key prefix 'plain:'/,
      );
      assert.match(waiting.lines[0], /writes wait for 1 replica\(s\) \(500 ms\)/);
      const steadyFrom = performance.now() + 500;
      await sleep(2000);
      const steadyTo = performance.now();
      for (const [name, writes] of Object.entries(load)) {
        const steady = writes.outcomes.filter((o) => o.at >= steadyFrom && o.at < steadyTo);
        assert.deepEqual(
          steady.filter((o) => o.result !== "ok").map((o) => o.detail).slice(0, 3),
          [],
          `${name}: every write succeeds while the cluster is whole`,
        );
        const ms = steady.map((o) => o.ms);
        report.push(
          `${name}: ${
            (steady.length / ((steadyTo - steadyFrom) / 1000)).toFixed(0)
          } writes/s over 4 clients before the failover, latency p50 ${
            percentile(ms, 0.5).toFixed(2)
          } ms, p99 ${percentile(ms, 0.99).toFixed(2)} ms`,
        );
      }

      // The replica of a master falls behind (it stalls while 10 MB are written to its master,
      // more than the sockets between them buffer), and the master dies before the replica
      // catches up: what the master acknowledged last never reaches the replica that takes over.
      const victim = (await cluster.masters())[0];
      const replica = await cluster.replicaOf(victim);
      replica.pause();
      await fill(cluster, victim, 10 * 1024 * 1024);
      await sleep(300);
      const killedAt = performance.now();
      await victim.kill();
      replica.resume();
      await waitUntil(async () => (await cluster.masters()).length === 3, 20_000);
      const promotedAt = performance.now();
      // Purple answers while the cluster fails over.
      for (const purple of Object.values(purples)) {
        assert.equal((await fetch(`http://127.0.0.1:${purple.httpPort}/ping`)).status, 200);
      }
      await waitUntil(() => recoveredAt(load.plain.outcomes, promotedAt) !== undefined, 10_000);
      await victim.start(); // it rejoins as the replica of the promoted master
      const restartedAt = performance.now();
      await waitUntil(async () => {
        const info = await cluster.cli(victim.port, "info", "replication").catch(String);
        return info.includes("master_link_status:up");
      }, 20_000);
      const replicaAt = performance.now();
      await waitUntil(() => recoveredAt(load.waiting.outcomes, replicaAt) !== undefined, 10_000);
      await sleep(300);
      const endedAt = performance.now();
      await Promise.all(Object.values(load).map((writes) => writes.stop()));
      assert.deepEqual(alive, { plain: true, waiting: true }, "both purples still run");

      report.push(
        `stalled the replica of master :${victim.port}, wrote 10 MB to the master, killed it 300 ms later; the replica was promoted ${
          (promotedAt - killedAt).toFixed(0)
        } ms later; the killed node was back as a replica ${
          (replicaAt - restartedAt).toFixed(0)
        } ms after its restart`,
      );
      for (const [name, writes] of Object.entries(load)) {
        const during = writes.outcomes.filter((o) => o.at > killedAt && o.at < endedAt);
        const failed = during.filter((o) => o.result !== "ok");
        assert.deepEqual(
          failed.filter((o) => o.result === "other").map((o) => o.detail).slice(0, 5),
          [],
          `${name}: failures are 503 / UNAVAILABLE only`,
        );
        assert.ok(failed.length > 0, `${name}: some writes failed during the failover`);
        const ms = failed.map((o) => o.ms);
        const max = Math.max(...ms);
        assert.ok(max < 1500, `${name}: every failure took under 1.5 s (max ${max.toFixed(0)} ms)`);
        const since = name === "plain" ? promotedAt : replicaAt;
        const recovered = recoveredAt(writes.outcomes, since)!;
        const loss = await lost(cluster.url, `${name}:`, writes);
        if (name === "waiting") {
          assert.deepEqual([loss.kv, loss.increments], [0, 0], "WAIT: no acknowledged write lost");
        }
        report.push(
          `${name}: ${failed.length} writes failed with 503 / UNAVAILABLE (p50 ${
            percentile(ms, 0.5).toFixed(1)
          } ms, max ${max.toFixed(0)} ms), 0 other errors; all writes succeed again ${
            Math.max(0, recovered - since).toFixed(0)
          } ms after the ${name === "plain" ? "promotion" : "replica returned"} (${
            (recovered - killedAt).toFixed(0)
          } ms after the kill); acknowledged writes lost: ${loss.kv} KV puts and ${loss.increments} increments of ${loss.acknowledged} acknowledged`,
        );
      }
      console.log(report.map((line) => `  ${line}`).join("\n"));
    } catch (error) {
      // What the writers saw, half a second at a time, to tell what went wrong.
      for (const [name, writes] of Object.entries(load)) {
        const seconds = new Map<number, Map<string, number>>();
        for (const { at, result, detail } of writes.outcomes) {
          const slot = Math.floor(at / 500) * 500;
          const kind = result === "ok" ? "ok" : (detail ?? "").replace(/.*: (Redis|Cannot)/, "$1");
          const counts = seconds.get(slot) ?? new Map<string, number>();
          counts.set(kind, (counts.get(kind) ?? 0) + 1);
          seconds.set(slot, counts);
        }
        for (const [at, counts] of seconds) {
          console.log(`${name} ${at.toFixed(0)} ms: ${[...counts].slice(0, 4).join("; ")}`);
        }
      }
      throw error;
    } finally {
      await Promise.all(Object.values(load).map((writes) => writes.stop()));
      const codes = await Promise.all(Object.values(purples).map((purple) => purple.stop()));
      await cluster.stop();
      assert.deepEqual(codes.map(({ code }) => code), [0, 0], "both purples stop gracefully");
    }
  },
  CLUSTER_MISSING !== undefined,
);
