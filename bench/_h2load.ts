// Runs h2load for gRPC: unary calls over h2c with a prebuilt length-prefixed frame as the body,
// `content-type: application/grpc` and `te: trailers`, one stream per connection unless told.
// Private to the bench.
//
// h2load knows HTTP statuses, not gRPC ones: a gRPC error is an HTTP 200 whose status travels
// in the trailers (or in the headers of a trailers-only answer). An answer that failed carries
// no message, though, so the count of DATA bytes received tells how many calls got their reply:
// each reply is a 5-byte prefix and a message whose size the scenario knows. `replyBytes` gives
// the exact total that n successful calls receive, and any shortfall is counted as errors.

import { run } from "./_process.ts";

/** What one h2load run measured. */
export interface H2loadResult {
  /** Calls completed (HTTP answers). */
  requests: number;
  /** Calls per second. */
  rps: number;
  /** Latency percentiles and maximum, in milliseconds (from h2load's per-request log). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Calls that failed: HTTP errors, stream errors, and answers without a reply message. */
  errors: number;
  /** The DATA bytes received. */
  dataBytes: number;
}

/** The gRPC call to repeat. */
export interface GrpcCall {
  /** The method's path, such as `/proto.Counter/CounterIncrement`. */
  path: string;
  /** The file holding the length-prefixed request frame. */
  frameFile: string;
  /**
   * The DATA bytes that `n` successful calls receive in total (the replies of counter
   * increments grow with the counter, so the caller knows the state before the run), or only
   * a lower bound (`atLeast`) where the replies cannot be foreseen exactly (several server
   * processes, each with its own counters).
   */
  replyBytes(n: number): number | { atLeast: number };
}

/**
 * Runs `n` calls over `connections` connections and waits for every answer. With `seconds`
 * instead, runs for that long after `warmupSeconds` (h2load's -D): for a server that cannot
 * survive h2load closing its connections, whose replies are then not counted.
 */
export async function h2load(
  baseUrl: string,
  call: GrpcCall,
  options: {
    n?: number;
    seconds?: number;
    warmupSeconds?: number;
    connections: number;
    /** Concurrent streams per connection (h2load's -m, default 1). */
    streams?: number;
  },
): Promise<H2loadResult> {
  const log = await Deno.makeTempFile({ prefix: "purple-bench-h2load-" });
  const timed = options.seconds !== undefined;
  const n = Math.max(options.n ?? 0, options.connections);
  const args = [
    ...(timed
      ? [`-D${options.seconds}`, `--warm-up-time=${options.warmupSeconds ?? 1}`]
      : [`-n${n}`]),
    `-c${options.connections}`,
    `-m${options.streams ?? 1}`,
    "-t1",
    "-d",
    call.frameFile,
    "-H",
    "content-type: application/grpc",
    "-H",
    "te: trailers",
    `--log-file=${log}`,
    `${baseUrl}${call.path}`,
  ];
  try {
    const result = await run("h2load", args);
    const out = result.stdout;
    const finished = out.match(/finished in ([\d.]+)(m?s), ([\d.]+) req\/s/);
    const counts = out.match(
      /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/,
    );
    const traffic = out.match(/traffic: .*\((\d+)\) total, .*\((\d+)\) headers .*\((\d+)\) data/);
    if (result.code !== 0 || !finished || !counts || !traffic) {
      throw new Error(
        `Cannot run h2load ${args.join(" ")}: exit code ${result.code}\n${out}${result.stderr}`,
      );
    }
    const total = Number(counts[1]);
    const done = Number(counts[3]);
    const succeeded = Number(counts[4]);
    const dataBytes = Number(traffic[3]);
    let missing = 0;
    if (!timed) {
      const expected = call.replyBytes(succeeded);
      const exact = typeof expected === "number";
      const bytes = exact ? expected : expected.atLeast;
      // Each missing reply is at least its 5-byte prefix short; more when its message is larger.
      const perReply = succeeded > 0 ? bytes / succeeded : 5;
      if (exact ? dataBytes !== bytes : dataBytes < bytes) {
        missing = Math.max(1, Math.ceil(Math.abs(bytes - dataBytes) / perReply));
      }
    }
    const latencies = await latenciesUs(log);
    return {
      requests: done,
      rps: Number(finished[3]),
      p50Ms: percentile(latencies, 50) / 1000,
      p99Ms: percentile(latencies, 99) / 1000,
      maxMs: (latencies.at(-1) ?? 0) / 1000,
      errors: (timed ? done : total) - succeeded + missing,
      dataBytes,
    };
  } finally {
    await Deno.remove(log).catch(() => {});
  }
}

/** The per-request durations of an h2load log (third column, µs), sorted. */
async function latenciesUs(file: string): Promise<Float64Array> {
  const text = await Deno.readTextFile(file);
  const values: number[] = [];
  for (const line of text.split("\n")) {
    const tab = line.lastIndexOf("\t");
    if (tab > 0) values.push(Number(line.slice(tab + 1)));
  }
  return new Float64Array(values).sort();
}

/** The nearest-rank percentile of sorted values. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}
