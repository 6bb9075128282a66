/**
 * The benches in their smoke form: bench/run.ts works, its write checks hold and it loses no
 * writes; bench/watch.ts reports every row. Speed is never asserted here: these machines are
 * noisy, and the figures belong to `deno task bench`, not to a test.
 */

import assert from "node:assert/strict";
import type { Operations } from "@purple/client";
import { messageCodecOf } from "@purple/protocol/wire";
import { staleFrames } from "../bench/_grpc_frames.ts";
import { incrementReplyBytes, SCENARIOS } from "../bench/_scenarios.ts";
import type { Report } from "../bench/_report.ts";
import { loadGenerators } from "../bench/run.ts";

async function missingTools(): Promise<string | undefined> {
  const missing: string[] = [];
  for (const tool of ["wrk", "h2load"]) {
    try {
      await new Deno.Command(tool, { args: ["--version"], stdout: "null", stderr: "null" })
        .output();
    } catch {
      missing.push(tool);
    }
  }
  return missing.length === 0 ? undefined : `${missing.join(" and ")} not on PATH`;
}

const TOOLS_MISSING = await missingTools();
if (TOOLS_MISSING !== undefined) {
  const line = `!!! SKIPPING the bench smoke test: ${TOOLS_MISSING} ` +
    "(apt-get install wrk nghttp2-client) !!!";
  if (Deno.env.get("CI") === "true") throw new Error(`${line} (CI=true: failing instead)`);
  console.error(line);
}

Deno.test("bench: loadGenerators() asks for h2load only for gRPC scenarios, wrk only for HTTP", () => {
  assert.deepEqual(loadGenerators(["http/memory"]), ["wrk"]);
  assert.deepEqual(loadGenerators(["http/memory/kv-put", "startup"]), ["wrk"]);
  assert.deepEqual(loadGenerators(["grpc/redis"]), ["h2load"]);
  assert.deepEqual(loadGenerators(["startup"]), []);
  assert.deepEqual(loadGenerators(["memory"]), ["wrk", "h2load"]);
  assert.deepEqual(loadGenerators([]), ["wrk", "h2load"]);
});

Deno.test("bench: the gRPC frame files are the encodings of Purple's codecs", async () => {
  assert.deepEqual(await staleFrames(), []);
});

Deno.test("bench: incrementReplyBytes() counts the replies of increments exactly, across varint sizes", () => {
  for (const [start, n] of [[0n, 300], [100n, 20_000], [2_097_100n, 200]] as const) {
    let expected = 0;
    for (let value = start + 1n; value <= start + BigInt(n); value++) {
      expected += 5 + messageCodecOf("GetCounterResponse").encode({ value }).length;
    }
    assert.equal(incrementReplyBytes(n, start), expected, `from ${start}, ${n} increments`);
  }
});

/** Operations whose counter reads as given: enough for the counter checks. */
function counterReading(value: bigint): Operations {
  return { counterGet: () => Promise.resolve(value) } as unknown as Operations;
}

Deno.test("bench: the counter check fails a run that lost writes, and passes an exact one", async () => {
  const check = SCENARIOS["counter-increment"].check;
  const before = { counter: 1000n };
  assert.equal(await check(counterReading(1500n), before, 500, 0), undefined);
  assert.match(
    (await check(counterReading(1499n), before, 500, 0))!,
    /^LOST WRITES: the counter grew by 499, 500 increments were acknowledged$/,
  );
  // A plain wrk run may leave one write per connection unanswered, never one write fewer.
  assert.equal(await check(counterReading(1564n), before, 500, 64), undefined);
  assert.match((await check(counterReading(1565n), before, 500, 64))!, /more than/);
  assert.match((await check(counterReading(1499n), before, 500, 64))!, /^LOST WRITES/);
});

Deno.test({
  name: "bench: the quick form measures memory over HTTP and gRPC and the disk counter, exactly",
  ignore: TOOLS_MISSING !== undefined,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "purple-bench-smoke-" });
    try {
      const ids = [
        "http/memory/counter-increment",
        "http/disk/counter-increment",
        "grpc/memory/counter-increment",
      ];
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--unstable-kv",
          "bench/run.ts",
          "--quick",
          "--runs",
          "1",
          "--connections",
          "16",
          "--filter",
          ids.join(","),
          "--out",
          out,
        ],
        cwd: new URL("..", import.meta.url),
        stdout: "null",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(stderr);
      assert.equal(code, 0, log);
      const report = JSON.parse(await Deno.readTextFile(`${out}/latest.json`)) as Report;
      assert.deepEqual(report.failures, []);
      for (const id of ids) {
        const row = report.rows.find((candidate) => candidate.id === id);
        assert.ok(row, `no row ${id} in the report`);
        assert.equal(row.errors, 0, id);
        assert.equal(row.check, "exact", id);
        assert.ok(row.rps > 0 && row.ratio! > 0, id);
      }
      for (const id of ["baseline/http-bare", "baseline/grpc-js-deno"]) {
        assert.ok(report.rows.some((row) => row.id === id), `no baseline ${id}`);
      }
      assert.match(
        await Deno.readTextFile(`${out}/latest.md`),
        /\| purple \(disk\) \| counter-increment \|/,
      );
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "bench: the watch bench in small (memory, 20 watchers) reports latency and throughput rows",
  ignore: TOOLS_MISSING !== undefined,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "purple-watch-bench-smoke-" });
    try {
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--unstable-kv",
          "bench/watch.ts",
          "--backends",
          "memory",
          "--watchers",
          "20",
          "--writes",
          "3",
          "--seconds",
          "1",
          "--rounds",
          "1",
          "--out",
          out,
        ],
        cwd: new URL("..", import.meta.url),
        stdout: "null",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(stderr);
      assert.equal(code, 0, log);
      const report = await Deno.readTextFile(`${out}/watch-latest.md`);
      for (const protocol of ["http", "grpc"]) {
        assert.match(report, new RegExp(`^\\| memory \\| ${protocol} \\| [\\d.]+ \\|`, "m"));
      }
      for (const variant of ["none", "idle http", "idle grpc", "hot http", "hot grpc"]) {
        const row = new RegExp(`^\\| memory \\| ${variant} \\| (\\d+) \\|`, "m").exec(report);
        assert.ok(row && Number(row[1]) > 0, `${variant}: ${report}`);
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
