/**
 * The soak: the real `purple` process under mixed load (HTTP and gRPC clients calling every
 * operation of every service over a bounded set of keys) for a while, sampling its request
 * rate, its errors and its resident memory (`VmRSS` of `/proc/<pid>/status`) every second.
 *
 * It passes when there is no error (a `NotFoundError` for a key that is absent or expired is an
 * answer, not an error) and memory levels off: after a warm-up (JIT, the heap sizing itself to
 * the load, the key space filling), the median RSS of the last third of the run is within
 * `maxGrowthMiB` of the median of the middle third. The data itself is bounded (at most `keys` keys a service,
 * 64 items a set, values up to 16 KiB, cache entries expiring after 1 to 3 s), so a server that
 * keeps growing past the warm-up holds on to something it should have let go.
 *
 * `tests/soak_test.ts` runs it in CI for 30 s (10 s of warm-up, 20 s measured); `deno task soak`
 * for 20 s of warm-up and 3 minutes measured:
 *
 * ```sh
 * deno task soak                                  # memory backend
 * deno task soak --seconds 600 --backend disk     # 10 minutes on disk (or --backend redis)
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { HttpClient, type Operations } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import { NotFoundError } from "@purple/client/errors";
import { startPurple } from "./_purple.ts";
import { startRedis } from "./_redis.ts";

/** How to soak. */
export interface SoakOptions {
  /** How long the load runs, in seconds, after the warm-up. */
  seconds: number;
  /** How long the load runs first, in seconds, before the measured part (JIT, heap sizing). */
  warmupSeconds: number;
  /** The backend: memory, disk (in a temporary directory) or redis (a private redis-server). */
  backend: "memory" | "disk" | "redis";
  /** Clients per protocol, each making one call at a time. */
  workers: number;
  /** Keys per service. */
  keys: number;
  /** The largest growth of the median RSS from the middle third to the last third, in MiB. */
  maxGrowthMiB: number;
  /** Prints a line every this many seconds (0: never). */
  reportEverySeconds: number;
}

/** One second of the run. */
export interface Sample {
  /** Seconds since the load started. */
  t: number;
  /** Calls answered during this second. */
  calls: number;
  /** Errors during this second. */
  errors: number;
  /** The server's resident memory, in KiB. */
  rssKiB: number;
}

/** What a soak measured. */
export interface SoakResult {
  calls: number;
  errors: number;
  notFound: number;
  /** The first errors, for the report. */
  firstErrors: string[];
  seconds: number;
  callsPerSecond: number;
  samples: Sample[];
  rssStartKiB: number;
  /** After the warm-up, in KiB. */
  warmedKiB: number;
  rssEndKiB: number;
  rssMaxKiB: number;
  /** Median RSS of the middle third and of the last third of the run, in KiB. */
  middleMedianKiB: number;
  lastMedianKiB: number;
  /** `lastMedianKiB - middleMedianKiB`, in MiB. */
  growthMiB: number;
  /** No error, and growth within `maxGrowthMiB`. */
  passed: boolean;
}

const DEFAULTS: SoakOptions = {
  seconds: 180,
  warmupSeconds: 20,
  backend: "memory",
  workers: 4,
  keys: 500,
  maxGrowthMiB: 16,
  reportEverySeconds: 10,
};

async function rss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** A small deterministic generator, so that two runs make the same calls. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One call of a random operation on a random key of `keys`. */
function call(ops: Operations, random: () => number, keys: number): Promise<unknown> {
  const key = `soak-${Math.floor(random() * keys)}`;
  const item = `item-${Math.floor(random() * 64)}`;
  switch (Math.floor(random() * 12)) {
    case 0:
      return ops.cacheGet(key);
    case 1:
      return ops.cacheSet(
        key,
        `value of ${key} `.repeat(1 + Math.floor(random() * 20)),
        1 + Math.floor(random() * 3),
      );
    case 2:
      return ops.counterIncrement(key, 1 + Math.floor(random() * 10));
    case 3:
      return ops.counterGet(key);
    case 4:
      return ops.flagGet(key);
    case 5:
      return ops.flagSet(key, random() < 0.5);
    case 6:
      return ops.kvGet(key);
    case 7:
      return ops.kvPut(
        key,
        new Uint8Array(1 + Math.floor(random() ** 3 * 16 * 1024)).fill(key.length),
      );
    case 8:
      return random() < 0.1 ? ops.kvDelete(key) : ops.kvGet(key);
    case 9:
      return ops.setGet(key);
    case 10:
      return ops.setAdd(key, item);
    default:
      return ops.setRemove(key, item);
  }
}

/**
 * Runs a soak: starts `purple` with the backend, loads it for `seconds`, stops it.
 *
 * @param options What differs from the defaults (3 minutes, memory, 4 clients a protocol).
 * @returns The measures, and whether they pass.
 */
export async function soak(options: Partial<SoakOptions> = {}): Promise<SoakResult> {
  const settings = { ...DEFAULTS, ...options };
  const log = (line: string) => settings.reportEverySeconds > 0 && console.log(line);
  const dataDir = settings.backend === "disk"
    ? await Deno.makeTempDir({ prefix: "purple_soak_" })
    : undefined;
  const redis = settings.backend === "redis" ? await startRedis() : undefined;
  const purple = await startPurple([
    "--backend",
    settings.backend,
    ...(dataDir ? ["--data-dir", dataDir] : []),
    ...(redis ? ["--redis-url", redis.url] : []),
    "--http-port",
    "0",
    "--grpc-port",
    "0",
  ]);
  const pid = purple.child.pid;
  const clients: Operations[] = [];
  for (let i = 0; i < settings.workers; i++) {
    clients.push(new HttpClient(`http://127.0.0.1:${purple.httpPort}`));
    clients.push(new GrpcClient(`127.0.0.1:${purple.grpcPort}`));
  }
  let calls = 0;
  let errors = 0;
  let notFound = 0;
  const firstErrors: string[] = [];
  let running = true;
  const loops = clients.map(async (client, w) => {
    const random = generator(w + 1);
    while (running) {
      try {
        await call(client, random, settings.keys);
      } catch (error) {
        if (error instanceof NotFoundError) notFound++;
        else {
          errors++;
          if (firstErrors.length < 5) {
            firstErrors.push(`${(error as Error).name}: ${(error as Error).message}`);
          }
        }
      }
      calls++;
    }
  });
  const samples: Sample[] = [];
  const rssStartKiB = await rss(pid);
  const start = performance.now();
  log(
    `soak: ${settings.warmupSeconds} s of warm-up then ${settings.seconds} s, ${settings.backend} backend, ${settings.workers} HTTP + ${settings.workers} gRPC clients, ${settings.keys} keys a service; purple pid ${pid}, RSS ${
      (rssStartKiB / 1024).toFixed(1)
    } MiB`,
  );
  try {
    let lastCalls = 0;
    let lastErrors = 0;
    for (let t = 1; t <= settings.warmupSeconds + settings.seconds; t++) {
      await new Promise((resolve) => setTimeout(resolve, start + t * 1000 - performance.now()));
      const sample = {
        t,
        calls: calls - lastCalls,
        errors: errors - lastErrors,
        rssKiB: await rss(pid),
      };
      samples.push(sample);
      lastCalls += sample.calls;
      lastErrors += sample.errors;
      if (settings.reportEverySeconds > 0 && t % settings.reportEverySeconds === 0) {
        const window = samples.slice(-settings.reportEverySeconds);
        const rate = window.reduce((sum, s) => sum + s.calls, 0) / window.length;
        log(
          `  t=${String(t).padStart(4)} s  ${
            rate.toFixed(0).padStart(6)
          } calls/s  errors ${errors}  RSS ${(sample.rssKiB / 1024).toFixed(1)} MiB${
            t <= settings.warmupSeconds ? "  (warm-up)" : ""
          }`,
        );
      }
    }
  } finally {
    running = false;
    await Promise.all(loops);
    await Promise.all(clients.map((client) => (client as HttpClient).close()));
  }
  const seconds = (performance.now() - start) / 1000;
  const rssEndKiB = samples.at(-1)?.rssKiB ?? rssStartKiB;
  const { code } = await purple.stop();
  if (code !== 0) {
    errors++;
    firstErrors.push(`purple exited with ${code} after the soak`);
  }
  if (dataDir) await Deno.remove(dataDir, { recursive: true });
  await redis?.stop();
  const measured = samples.filter((sample) => sample.t > settings.warmupSeconds);
  const third = Math.max(1, Math.floor(measured.length / 3));
  const middleMedianKiB = median(measured.slice(third, 2 * third).map((s) => s.rssKiB));
  const lastMedianKiB = median(measured.slice(2 * third).map((s) => s.rssKiB));
  const warmedKiB = measured[0]?.rssKiB ?? rssStartKiB;
  const growthMiB = (lastMedianKiB - middleMedianKiB) / 1024;
  return {
    calls,
    errors,
    notFound,
    firstErrors,
    seconds,
    callsPerSecond: calls / seconds,
    samples,
    rssStartKiB,
    warmedKiB,
    rssEndKiB,
    rssMaxKiB: Math.max(rssStartKiB, ...samples.map((s) => s.rssKiB)),
    middleMedianKiB,
    lastMedianKiB,
    growthMiB,
    passed: errors === 0 && growthMiB <= settings.maxGrowthMiB,
  };
}

/**
 * One paragraph on a soak's result.
 *
 * @param result What {@linkcode soak} measured.
 * @returns The report.
 */
export function describeSoak(result: SoakResult): string {
  const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
  return [
    `soak: ${result.calls} calls in ${result.seconds.toFixed(0)} s (${
      result.callsPerSecond.toFixed(0)
    } calls/s), ${result.errors} errors, ${result.notFound} not found (absent or expired keys)`,
    `  RSS: ${mib(result.rssStartKiB)} at the start, ${mib(result.warmedKiB)} after the warm-up, ${
      mib(result.rssEndKiB)
    } at the end, ${mib(result.rssMaxKiB)} at most`,
    `  median RSS: ${mib(result.middleMedianKiB)} over the middle third, ${
      mib(result.lastMedianKiB)
    } over the last third (growth ${result.growthMiB.toFixed(1)} MiB)`,
    ...result.firstErrors.map((error) => `  error: ${error}`),
    `  ${result.passed ? "PASSED" : "FAILED"}`,
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string" },
      "warmup-seconds": { type: "string" },
      backend: { type: "string" },
      workers: { type: "string" },
      keys: { type: "string" },
      "max-growth-mib": { type: "string" },
    },
  });
  const result = await soak({
    seconds: Number(values.seconds ?? DEFAULTS.seconds),
    warmupSeconds: Number(values["warmup-seconds"] ?? DEFAULTS.warmupSeconds),
    backend: (values.backend ?? DEFAULTS.backend) as SoakOptions["backend"],
    workers: Number(values.workers ?? DEFAULTS.workers),
    keys: Number(values.keys ?? DEFAULTS.keys),
    maxGrowthMiB: Number(values["max-growth-mib"] ?? DEFAULTS.maxGrowthMiB),
  });
  console.log(describeSoak(result));
  Deno.exit(result.passed ? 0 : 1);
}
