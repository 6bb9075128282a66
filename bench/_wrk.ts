// Runs wrk with bench/wrk/bench.lua and reads its one JSON line. Private to the bench.

const SCRIPT = new URL("./wrk/bench.lua", import.meta.url).pathname;

/** One HTTP request, as wrk sends it over and over. */
export interface HttpRequest {
  /** `GET`, `PUT` or `POST`. */
  method: "GET" | "PUT" | "POST";
  /** The path and query, such as `/counters/bench?increment=1`. */
  path: string;
  /** The body's bytes, if any. */
  body?: Uint8Array;
  /** Extra headers. */
  headers?: Record<string, string>;
}

/** What one wrk run measured. */
export interface WrkResult {
  /** Answered requests. */
  requests: number;
  /** Requests per second over the sending time. */
  rps: number;
  /** Latency percentiles and maximum, in milliseconds. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Answers with a status of 400 or more. */
  statusErrors: number;
  /** Connect, read, write errors and timeouts. */
  socketErrors: number;
}

interface WrkJson {
  requests: number;
  durationUs: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  statusErrors: number;
  timeouts: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

/**
 * Runs wrk (one thread) against `baseUrl` + `request.path` for `seconds`. With `drain`, wrk
 * stops sending after `seconds` and lets every request in flight finish (one more second of
 * idle connections): the count of answers is then exactly the count of requests the server got.
 */
export async function wrk(
  baseUrl: string,
  request: HttpRequest,
  options: { seconds: number; connections: number; drain?: boolean },
): Promise<WrkResult> {
  const env: Record<string, string> = { BENCH_METHOD: request.method };
  let bodyFile: string | undefined;
  if (request.body !== undefined) {
    bodyFile = await Deno.makeTempFile({ prefix: "purple-bench-body-" });
    await Deno.writeFile(bodyFile, request.body);
    env.BENCH_BODY_FILE = bodyFile;
  }
  const headers = Object.entries(request.headers ?? {}).map(([name, value]) => `${name}: ${value}`);
  if (headers.length > 0) env.BENCH_HEADERS = headers.join("\n");
  const seconds = Math.max(1, Math.round(options.seconds));
  if (options.drain) env.BENCH_DRAIN_MS = String(seconds * 1000);
  const args = [
    "-t1",
    `-c${options.connections}`,
    `-d${options.drain ? seconds + 1 : seconds}s`,
    "--timeout",
    "10s",
    "-s",
    SCRIPT,
    `${baseUrl}${request.path}`,
  ];
  try {
    const result = await runWithEnv("wrk", args, env);
    const line = result.stdout.split("\n").find((text) => text.startsWith("BENCH_JSON "));
    if (result.code !== 0 || line === undefined) {
      throw new Error(
        `Cannot run wrk ${
          args.join(" ")
        }: exit code ${result.code}\n${result.stdout}${result.stderr}`,
      );
    }
    const json = JSON.parse(line.slice("BENCH_JSON ".length)) as WrkJson;
    const sendingUs = options.drain ? seconds * 1e6 : json.durationUs;
    return {
      requests: json.requests,
      rps: json.requests / (sendingUs / 1e6),
      p50Ms: json.p50Us / 1000,
      p99Ms: json.p99Us / 1000,
      maxMs: json.maxUs / 1000,
      statusErrors: json.statusErrors,
      socketErrors: json.connectErrors + json.readErrors + json.writeErrors + json.timeouts,
    };
  } finally {
    if (bodyFile !== undefined) await Deno.remove(bodyFile).catch(() => {});
  }
}

/** Runs `command` with extra environment variables. */
async function runWithEnv(command: string, args: string[], env: Record<string, string>) {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** What filling the memory backend with wrk did. */
export interface FillResult {
  /** PUTs answered 204. */
  stored: number;
  /** PUTs answered with anything else, and socket errors. */
  failed: number;
  /** Seconds it took. */
  seconds: number;
}

/** PUTs `count` values of `valueBytes` bytes under /kv/key-1 ... /kv/key-<count>. */
export async function wrkFill(
  baseUrl: string,
  count: number,
  valueBytes: number,
  connections: number,
): Promise<FillResult> {
  const script = new URL("./wrk/kv_fill.lua", import.meta.url).pathname;
  const args = [
    "-t1",
    `-c${connections}`,
    `-d${Math.max(60, Math.ceil(count / 1000))}s`,
    "--timeout",
    "10s",
    "-s",
    script,
    `${baseUrl}/`,
  ];
  const start = performance.now();
  const result = await runWithEnv("wrk", args, {
    BENCH_FILL_COUNT: String(count),
    BENCH_VALUE_BYTES: String(valueBytes),
  });
  const seconds = (performance.now() - start) / 1000;
  const line = result.stdout.split("\n").find((text) => text.startsWith("BENCH_JSON "));
  if (result.code !== 0 || line === undefined) {
    throw new Error(`Cannot fill the memory backend with wrk: ${result.stdout}${result.stderr}`);
  }
  const json = JSON.parse(line.slice("BENCH_JSON ".length));
  return {
    stored: json.stored,
    failed: json.failed + json.socketErrors + (json.sent + json.pings - json.answered),
    seconds,
  };
}
