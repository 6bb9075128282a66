// The watch bench: per backend, 1,000 watchers of one counter, over HTTP (event streams) and gRPC
// (server streams): the time from a write to the first and to the last watcher's event (p50,
// p99 over the writes); and what those watchers cost plain request throughput: counter
// increments (wrk, 64 connections) with no watcher, with 1,000 watchers of another key (idle),
// and with 1,000 watchers of the key being incremented (every write fans out, coalesced),
// interleaved round by round in one run. Run it alone on the machine:
//
//   flock /tmp/purple-bench.lock deno run -A --unstable-kv bench/watch.ts [options]
//
// Options: --backends memory,disk,redis  --watchers 1000  --writes 50  --seconds 5  --rounds 3
//          --out DIR (default bench/results)
// Results: DIR/watch-latest.md (and on stdout).

import { parseArgs } from "node:util";
import { available, type Server, sleep, spawnServer } from "./_process.ts";
import { wrk } from "./_wrk.ts";
import { median } from "./_report.ts";
import { percentile } from "./_h2load.ts";
import { startRedis } from "../tests/_redis.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MOD = `${ROOT}mod.ts`;
const WATCHERS = `${ROOT}bench/_watchers.ts`;

const { values: options } = parseArgs({
  args: Deno.args,
  options: {
    backends: { type: "string", default: "memory,disk,redis" },
    watchers: { type: "string", default: "1000" },
    writes: { type: "string", default: "50" },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    out: { type: "string", default: `${ROOT}bench/results` },
  },
});
const backends = options.backends!.split(",");
const watchers = Number(options.watchers);
const writes = Number(options.writes);
const seconds = Number(options.seconds);
const rounds = Number(options.rounds);

const log = (line: string) => console.error(`[watch bench] ${line}`);

/** Starts purple (both servers) over a backend; returns its URLs and how to stop it. */
async function startPurple(backend: string, redisUrl?: string) {
  const args = ["run", "-A", "--unstable-kv", MOD, "--backend", backend];
  args.push("--http-port", "0", "--grpc-port", "0", "--max-concurrent-requests", "4096");
  let dataDir: string | undefined;
  if (backend === "disk") {
    dataDir = await Deno.makeTempDir({ prefix: "purple-bench-watch-" });
    args.push("--data-dir", dataDir);
  }
  if (backend === "redis") args.push("--redis-url", redisUrl!);
  const server = spawnServer(`purple (${backend})`, Deno.execPath(), args, { cwd: ROOT });
  const [, http] = await server.line(/Starting up the HTTP server on port (\d+)/);
  const [, grpc] = await server.line(/Starting up the gRPC server on port (\d+)/);
  return {
    httpUrl: `http://127.0.0.1:${http}`,
    grpcAddress: `127.0.0.1:${grpc}`,
    stop: async () => {
      await server.stop();
      if (dataDir !== undefined) await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** The watchers process (see _watchers.ts). */
function spawnWatchers(args: string[]): Server {
  return spawnServer("watchers", Deno.execPath(), ["run", "-A", WATCHERS, ...args], { cwd: ROOT });
}

interface Latency {
  first: number[];
  last: number[];
}

async function latency(
  purple: { httpUrl: string; grpcAddress: string },
  protocol: "http" | "grpc",
  key: string,
): Promise<Latency> {
  const process = spawnWatchers([
    "latency",
    protocol,
    purple.httpUrl,
    purple.grpcAddress,
    String(watchers),
    key,
    String(writes),
  ]);
  try {
    const [, json] = await process.line(/^WATCH_JSON (.*)$/, 300_000);
    return JSON.parse(json) as Latency;
  } finally {
    await process.stop();
  }
}

type Variant = "none" | "idle http" | "idle grpc" | "hot http" | "hot grpc";
const VARIANTS: Variant[] = ["none", "idle http", "idle grpc", "hot http", "hot grpc"];

/**
 * Counter increments with wrk while the variant's watchers hold their streams: none; idle (they
 * watch another key); hot (they watch the key being incremented: every write fans out to them,
 * coalesced). Returns the throughput, the p99, and the changes the watchers received.
 */
async function throughput(
  purple: { httpUrl: string; grpcAddress: string },
  variant: Variant,
  round: number,
): Promise<{ rps: number; p99Ms: number; events: number }> {
  const written = `written-${round}-${variant.replace(" ", "-")}`;
  let holder: Server | undefined;
  if (variant !== "none") {
    const [kind, protocol] = variant.split(" ");
    const watched = kind === "hot" ? written : `idle-${round}-${protocol}`;
    holder = spawnWatchers([
      "hold",
      protocol,
      purple.httpUrl,
      purple.grpcAddress,
      String(watchers),
      watched,
    ]);
    await holder.line(/^READY$/, 120_000);
  }
  try {
    const result = await wrk(purple.httpUrl, {
      method: "PUT",
      path: `/counters/${written}?increment=1`,
    }, { seconds, connections: 64 });
    let events = 0;
    if (holder !== undefined) {
      await holder.stop();
      events = Number((await holder.line(/^WATCH_EVENTS (\d+)$/, 10_000))[1]);
    }
    return { rps: result.rps, p99Ms: result.p99Ms, events };
  } finally {
    await holder?.stop();
  }
}

const ms = (value: number) => value < 10 ? value.toFixed(2) : value.toFixed(0);

async function main(): Promise<void> {
  if (!await available("wrk")) throw new Error("the watch bench needs wrk (apt-get install wrk)");
  const lines: string[] = [
    `# Watch bench: ${watchers} watchers, ${new Date().toISOString()}`,
    "",
    `${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ` +
    `${Deno.version.deno}; ${writes} writes a latency run, ${rounds} rounds of ${seconds} s ` +
    "of wrk (64 connections) a throughput variant, interleaved.",
    "",
    "## From a write to the watchers' events (ms)",
    "",
    "| backend | protocol | first p50 | first p99 | last p50 | last p99 | last max |",
    "| ------- | -------- | --------: | --------: | -------: | -------: | -------: |",
  ];
  const throughputLines: string[] = [
    "",
    "## Counter increments with and without the watchers (req/s, p99 ms; ratio to none)",
    "",
    "| backend | variant | rounds (req/s) | median | × none | p99 (median) | events to watchers |",
    "| ------- | ------- | -------------- | -----: | -----: | -----------: | -----------------: |",
  ];
  const redis = backends.includes("redis") ? await startRedis() : undefined;
  try {
    for (const backend of backends) {
      log(`${backend}: starting purple`);
      const purple = await startPurple(backend, redis?.url);
      try {
        for (const protocol of ["http", "grpc"] as const) {
          log(`${backend}: latency over ${protocol}, ${watchers} watchers`);
          const { first, last } = await latency(purple, protocol, `latency-${protocol}`);
          const sortedFirst = first.toSorted((a, b) => a - b);
          const sortedLast = last.toSorted((a, b) => a - b);
          lines.push(
            `| ${backend} | ${protocol} | ${ms(percentile(sortedFirst, 50))} | ${
              ms(percentile(sortedFirst, 99))
            } | ${ms(percentile(sortedLast, 50))} | ${ms(percentile(sortedLast, 99))} | ${
              ms(sortedLast.at(-1)!)
            } |`,
          );
        }
        const results = new Map<Variant, Array<{ rps: number; p99Ms: number; events: number }>>();
        for (let round = 0; round < rounds; round++) {
          for (const variant of VARIANTS) {
            log(`${backend}: throughput, round ${round + 1}, ${variant}`);
            const result = await throughput(purple, variant, round);
            results.set(variant, [...results.get(variant) ?? [], result]);
            await sleep(500);
          }
        }
        const none = median(results.get("none")!.map((r) => r.rps));
        for (const variant of VARIANTS) {
          const runs = results.get(variant)!;
          const rps = median(runs.map((r) => r.rps));
          const ratios = runs.map((r, i) => r.rps / results.get("none")![i].rps);
          throughputLines.push(
            `| ${backend} | ${variant} | ${runs.map((r) => Math.round(r.rps)).join(", ")} | ${
              Math.round(rps)
            } | ${(rps / none).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${
              Math.max(...ratios).toFixed(2)
            }) | ${median(runs.map((r) => r.p99Ms)).toFixed(1)} | ${
              variant.startsWith("hot") ? median(runs.map((r) => r.events)) : ""
            } |`,
          );
        }
      } finally {
        await purple.stop();
      }
    }
  } finally {
    await redis?.stop();
  }
  const report = [...lines, ...throughputLines, ""].join("\n");
  console.log(report);
  await Deno.mkdir(options.out!, { recursive: true });
  await Deno.writeTextFile(`${options.out}/watch-latest.md`, report);
}

await main();
