/**
 * The Purple bench: `deno task bench`.
 *
 * Starts `purple` as a separate process for each backend and protocol, drives it with a load
 * generator in another process (wrk for HTTP, h2load for gRPC), and measures, in the same run
 * and with the same settings, the baselines it is compared with: a bare `Deno.serve`, a bare
 * grpc-js server (under Deno and under Node), and `redis-benchmark` against the same Redis.
 * Every scenario has a warm-up and then timed runs; the table gives the medians, the errors,
 * the ratio to the baseline, and the result of the write checks. Lost writes or any error make
 * the bench fail (exit code 1). See bench/README.md.
 *
 * ```sh
 * deno task bench                                  # everything, about 20 minutes
 * deno task bench --quick --filter http/memory     # a quick look at one group
 * deno task bench --list                           # the ids --filter matches
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { GrpcClient } from "@purple/client/grpc";
import { HttpClient, type Operations } from "@purple/client";
import { h2load, type H2loadResult } from "./_h2load.ts";
import { framePath, staleFrames } from "./_grpc_frames.ts";
import {
  available,
  freePort,
  loadAverage,
  machineCpuSeconds,
  residentBytes,
  run,
  type Server,
  sleep,
  spawnServer,
  treeCpuSeconds,
} from "./_process.ts";
import {
  evaluateTargets,
  type Extra,
  markdown,
  median,
  type Report,
  type Row,
  type RunFigure,
  summarize,
} from "./_report.ts";
import {
  DATA,
  incrementReplyBytes,
  type Scenario,
  SCENARIO_NAMES,
  SCENARIOS,
  snapshot,
} from "./_scenarios.ts";
import { type HttpRequest, wrk, wrkFill } from "./_wrk.ts";
import { casContention } from "./_contention.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MOD = new URL("../mod.ts", import.meta.url).pathname;
const BACKENDS = ["memory", "disk", "redis"] as const;
type BackendName = typeof BACKENDS[number];

const HELP = `Purple bench: Purple against bare baselines, in one run (see bench/README.md)

Usage: deno task bench [options]

Options:
  --quick            short runs (1 s warm-up, 1 s runs, 20,000 entries for the memory test)
  --filter A,B       only the ids containing A or B (see --list); baselines come along
  --duration S       seconds per timed run (default 5)
  --warmup S         seconds of warm-up per scenario (default 2)
  --runs N           timed runs per scenario (default 3)
  --connections N    concurrent connections (default 64)
  --out DIR          where to write latest.json and latest.md (default bench/results)
  --against REF      also measure Purple as of git REF (a commit, a branch), scenario by
                     scenario right after this one, and report the ratio of each (A/B in one
                     run); REF is checked out in .tmp/bench-against/
  --variant N=PATH   the same, against the mod.ts at PATH (another checkout, named N in the
                     report) instead of a git ref
  --go-grpc BIN      also measure the original Go server (a purple-grpc binary built from
                     github.com/purpledb/purple; memory backend) in the gap/ group
  --list             print the ids and exit
  -h, --help         show this help

Needs wrk for the HTTP scenarios and h2load for the gRPC ones (apt-get install wrk
nghttp2-client), redis-server and redis-benchmark for the redis scenarios (apt-get install
redis-server), node for the Node comparisons.`;

interface Settings {
  quick: boolean;
  /** A git ref to measure beside this checkout (`--against`). */
  against?: string;
  /** Another checkout to measure beside this one (`--variant`): its name and mod.ts. */
  variant?: { label: string; mod: string };
  filters: string[];
  duration: number;
  warmup: number;
  runs: number;
  connections: number;
  out: string;
  /** A build of the original Go gRPC server to measure beside Purple (`--go-grpc`). */
  goGrpc?: string;
}

/** Every id the bench can measure, in order. */
/** The disk ceilings: one Deno KV file committing 1 KiB entries, so many a commit. */
const DISK_CEILINGS = [1, 64] as const;

function allIds(): string[] {
  const ids = DISK_CEILINGS.map((batch) => `baseline/disk-${batch}-per-commit`);
  ids.push("baseline/http-bare");
  for (const backend of BACKENDS) {
    for (const name of SCENARIO_NAMES) ids.push(`http/${backend}/${name}`);
  }
  ids.push("baseline/grpc-js-deno", "baseline/grpc-js-node");
  for (const backend of BACKENDS) {
    for (const name of SCENARIO_NAMES) ids.push(`grpc/${backend}/${name}`);
  }
  for (const backend of BACKENDS) {
    for (const protocol of ["http", "grpc"]) ids.push(`cas/${protocol}/${backend}`);
  }
  ids.push("baseline/redis-benchmark-incr", "baseline/redis-benchmark-get");
  ids.push(...COMPARISONS.map((comparison) => comparison.id));
  for (const protocol of ["http", "grpc"]) {
    for (const backend of SHARED_BACKENDS) {
      for (const n of WORKER_COUNTS) ids.push(`workers/${protocol}/${backend}/${n}`);
    }
  }
  for (const server of GAP_SERVERS) {
    for (const call of GAP_CALLS) {
      if (server.id !== "go" || !("withoutGo" in call)) ids.push(`gap/${server.id}/${call.id}`);
    }
  }
  ids.push("startup/http-memory", "startup/default", "rss/kv-1m");
  return ids;
}

function parseSettings(args: string[]): Settings | "help" | "list" {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean" },
      filter: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      runs: { type: "string" },
      connections: { type: "string" },
      out: { type: "string" },
      against: { type: "string" },
      variant: { type: "string" },
      "go-grpc": { type: "string" },
      list: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  if (values.list) return "list";
  const number = (name: string, text: string | undefined, fallback: number, min: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) {
      throw new Error(`Bad --${name}: expected a whole number from ${min}, found '${text}'`);
    }
    return value;
  };
  const quick = values.quick ?? false;
  let variant: Settings["variant"];
  if (values.variant !== undefined) {
    const [label, path] = values.variant.split("=", 2);
    if (!/^[a-z0-9-]+$/.test(label) || !path) {
      throw new Error(
        `Bad --variant: expected NAME=PATH (NAME in a-z, 0-9, -), found '${values.variant}'`,
      );
    }
    if (values.against !== undefined) throw new Error("Give --against or --variant, not both");
    variant = { label, mod: new URL(path, `file://${Deno.cwd()}/`).pathname };
  }
  return {
    quick,
    filters: (values.filter ?? "").split(",").map((part) => part.trim()).filter(Boolean),
    duration: number("duration", values.duration, quick ? 1 : 5, 1),
    warmup: number("warmup", values.warmup, quick ? 1 : 2, 1),
    runs: number("runs", values.runs, 3, 1),
    connections: number("connections", values.connections, 64, 1),
    out: values.out ?? new URL("./results", import.meta.url).pathname,
    against: values.against,
    variant,
    goGrpc: values["go-grpc"],
  };
}

/** The state of one bench run. */
class Bench {
  readonly settings: Settings;
  readonly rows: Row[] = [];
  readonly extras: Extra[] = [];
  readonly failures: string[] = [];
  readonly skipped: string[] = [];
  redisUrl: string | undefined;
  nodeMissing: string | undefined;
  /** The reference checkout of `--against`: its `mod.ts` and a label. */
  against: { mod: string; label: string } | undefined;

  constructor(settings: Settings) {
    this.settings = settings;
  }

  /** Whether an id is selected by --filter. */
  selected(id: string): boolean {
    return this.settings.filters.length === 0 ||
      this.settings.filters.some((filter) => id.includes(filter));
  }

  anySelected(prefix: string): boolean {
    return allIds().some((id) => id.startsWith(prefix) && this.selected(id));
  }

  add(row: Row): Row {
    this.rows.push(row);
    for (const failure of row.failures) this.failures.push(`${row.id}: ${failure}`);
    const ratio = row.ratio === undefined ? "" : `, ${row.ratio.toFixed(2)} × ${row.baseline}`;
    log(
      `${row.id}: ${Math.round(row.rps)} req/s, p50 ${row.p50Ms.toFixed(2)} ms, p99 ${
        row.p99Ms.toFixed(2)
      } ms, ${row.errors} errors${ratio}, ${row.check}`,
    );
    return row;
  }

  /** Adds a side-by-side row, with its ratio to the bare grpc-js server under Deno. */
  addCompared(row: Row): Row {
    const baseline = this.rows.find((candidate) => candidate.id === "baseline/grpc-js-deno");
    if (baseline === undefined) return this.add(row);
    return this.add({ ...row, baseline: baseline.id, ratio: row.rps / baseline.rps });
  }

  addExtra(extra: Extra): void {
    this.extras.push(extra);
    for (const failure of extra.failures) this.failures.push(`${extra.id}: ${failure}`);
    log(`${extra.id}: ${extra.value.toFixed(1)} ${extra.unit} (${extra.detail})`);
  }
}

function log(line: string): void {
  console.error(`[bench] ${line}`);
}

// ---------------------------------------------------------------------------------------------
// Servers

/** Starts `purple` serving one protocol over one backend, on a free port. */
async function startPurple(
  bench: Bench,
  protocol: "http" | "grpc",
  backend: BackendName,
  mod = MOD,
  workers = 1,
): Promise<{ server: Server; port: number; cleanup: () => Promise<void> }> {
  const args = ["run", "-A", "--unstable-kv", mod, protocol, "--backend", backend, "--port", "0"];
  if (workers > 1) args.push("--workers", String(workers));
  let dataDir: string | undefined;
  if (backend === "disk") {
    dataDir = await Deno.makeTempDir({ prefix: "purple-bench-disk-" });
    args.push("--data-dir", dataDir);
  }
  if (backend === "redis") args.push("--redis-url", bench.redisUrl!);
  const name = `purple${mod === MOD ? "" : `@${bench.against!.label}`} ${protocol} (${backend}` +
    `${workers > 1 ? `, ${workers} workers` : ""})`;
  const server = spawnServer(name, Deno.execPath(), args, {
    cwd: mod === MOD ? ROOT : mod.slice(0, mod.lastIndexOf("/")),
  });
  const [, port] = await server.line(/Starting up the (?:HTTP|gRPC) server on port (\d+)/);
  return {
    server,
    port: Number(port),
    cleanup: async () => {
      const status = await server.stop();
      if (!status.success && status.signal !== "SIGTERM") {
        bench.failures.push(`${server.name} exited with ${status.code}:\n${server.output()}`);
      }
      if (dataDir !== undefined) await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** Starts a baseline or comparison server and reads its port. */
async function startServer(
  name: string,
  command: string,
  args: string[],
  env?: Record<string, string>,
): Promise<{ server: Server; port: number }> {
  const server = spawnServer(name, command, args, { cwd: ROOT, env });
  const [, port] = await server.line(/Starting up the (?:HTTP|gRPC) server on port (\d+)/);
  return { server, port: Number(port) };
}

// ---------------------------------------------------------------------------------------------
// Measuring

/**
 * Measures one HTTP route: a drained warm-up (every request answered, so the write check is
 * exact), then the timed runs (plain wrk, which abandons up to one request per connection when
 * it stops: the write check then allows that many unanswered writes, never fewer writes).
 */
async function measureHttp(
  bench: Bench,
  id: string,
  labels: { server: string; scenario: string },
  baseUrl: string,
  request: HttpRequest,
  scenario?: { definition: Scenario; ops: Operations },
  runsOverride?: number,
): Promise<Row> {
  const { warmup, duration, connections } = bench.settings;
  const count = runsOverride ?? bench.settings.runs;
  const failures: string[] = [];
  let errors = 0;
  const check = async (
    before: Awaited<ReturnType<typeof snapshot>>,
    acked: number,
    slack: number,
    what: string,
  ) => {
    if (scenario === undefined) return;
    const problem = await scenario.definition.check(scenario.ops, before, acked, slack);
    if (problem !== undefined) failures.push(`${what}: ${problem}`);
  };
  if (scenario) await scenario.definition.prepare(scenario.ops);
  let before = scenario ? await snapshot(scenario.ops) : { counter: 0n };
  const warm = await wrk(baseUrl, request, { seconds: warmup, connections, drain: true });
  errors += warm.statusErrors + warm.socketErrors;
  await check(before, warm.requests - warm.statusErrors, 0, "warm-up (drained, exact)");
  const runs: RunFigure[] = [];
  for (let i = 0; i < count; i++) {
    before = scenario ? await snapshot(scenario.ops) : before;
    const result = await wrk(baseUrl, request, { seconds: duration, connections });
    const runErrors = result.statusErrors + result.socketErrors;
    errors += runErrors;
    runs.push({ rps: result.rps, p50Ms: result.p50Ms, p99Ms: result.p99Ms, errors: runErrors });
    if (scenario?.definition.writes) await sleep(300); // Let the abandoned requests finish.
    await check(before, result.requests - result.statusErrors, connections, `run ${i + 1}`);
  }
  if (errors > 0) failures.push(`${errors} errors (non-2xx answers or socket errors)`);
  return summarize({
    id,
    protocol: "HTTP",
    server: labels.server,
    scenario: labels.scenario,
    runs,
    errors,
    check: checkLabel(scenario?.definition, failures),
    failures,
  });
}

function checkLabel(scenario: Scenario | undefined, failures: string[]): string {
  if (failures.length > 0) return `**FAILED**: ${failures[0]}`;
  if (scenario === undefined) return "-";
  return scenario.writes ? "exact" : "unchanged";
}

/**
 * Measures one gRPC method with h2load: a short probe for the rate, a warm-up, then timed
 * runs of as many calls as the warm-up's rate gives in `duration` seconds. h2load waits for
 * every answer, so every write check is exact.
 */
async function measureGrpc(
  bench: Bench,
  id: string,
  labels: { server: string; scenario: string },
  baseUrl: string,
  path: string,
  frameFile: string,
  replies: {
    scenario?: { definition: Scenario; ops: Operations };
    bareCounter?: { done: number };
    /** Several server processes, each with its own counter: replies are only bounded below. */
    processes?: number;
    /** Replies of unknown content: each at least this many bytes (a prefix is 5). */
    atLeastBytes?: number;
  },
  load: { runs?: number; connections?: number; streams?: number } = {},
): Promise<Row> {
  const { warmup, duration } = bench.settings;
  const count = load.runs ?? bench.settings.runs;
  const connections = load.connections ?? bench.settings.connections;
  const streams = load.streams ?? 1;
  const failures: string[] = [];
  let errors = 0;
  const scenario = replies.scenario;
  if (scenario) await scenario.definition.prepare(scenario.ops);
  const once = async (n: number, what: string): Promise<H2loadResult> => {
    const before = scenario ? await snapshot(scenario.ops) : { counter: 0n };
    const bare = replies.bareCounter;
    const result = await h2load(baseUrl, {
      path,
      frameFile,
      replyBytes: (succeeded) => {
        if (scenario) return scenario.definition.replyBytes(succeeded, before);
        if (replies.atLeastBytes !== undefined) {
          return { atLeast: replies.atLeastBytes * succeeded };
        }
        // Each reply is at least a prefix and a one-byte value (7 bytes).
        if ((replies.processes ?? 1) > 1) return { atLeast: 7 * succeeded };
        return incrementReplyBytes(succeeded, BigInt(bare!.done));
      },
    }, { n, connections, streams });
    if (bare) bare.done += result.requests - result.errors;
    errors += result.errors;
    if (scenario) {
      const problem = await scenario.definition.check(
        scenario.ops,
        before,
        result.requests - result.errors,
        0,
      );
      if (problem !== undefined) failures.push(`${what}: ${problem}`);
    }
    return result;
  };
  const inFlight = connections * streams;
  const probe = await once(inFlight * 20, "probe");
  const warm = await once(Math.max(inFlight * 10, Math.round(probe.rps * warmup)), "warm-up");
  const runs: RunFigure[] = [];
  for (let i = 0; i < count; i++) {
    const n = Math.max(inFlight * 10, Math.round(warm.rps * duration));
    const result = await once(n, `run ${i + 1}`);
    runs.push({ rps: result.rps, p50Ms: result.p50Ms, p99Ms: result.p99Ms, errors: result.errors });
  }
  if (errors > 0) failures.push(`${errors} errors (failed calls or calls without a reply)`);
  return summarize({
    id,
    protocol: "gRPC",
    server: labels.server,
    scenario: labels.scenario,
    runs,
    errors,
    check: checkLabel(scenario?.definition, failures),
    failures,
  });
}

// ---------------------------------------------------------------------------------------------
// Groups

/** The bare Deno.serve baseline, measured with the same wrk script and settings. */
async function httpBaseline(bench: Bench, id: string): Promise<Row> {
  const { server, port } = await startServer("bare Deno.serve", Deno.execPath(), [
    "run",
    "--allow-net",
    "bench/baselines/http_bare.ts",
  ]);
  try {
    return await measureHttp(
      bench,
      id,
      { server: "bare Deno.serve", scenario: "constant JSON" },
      `http://127.0.0.1:${port}`,
      { method: "GET", path: `/counters/${DATA.counterKey}` },
    );
  } finally {
    await server.stop();
  }
}

/**
 * The disk ceilings: a separate process commits 1 KiB entries to its own Deno KV file, one
 * writer, 1 and 64 entries a commit (bench/baselines/disk_commits.ts).
 */
async function diskCeilingGroup(bench: Bench): Promise<void> {
  const { warmup, duration, runs: count } = bench.settings;
  for (const batch of DISK_CEILINGS) {
    const id = `baseline/disk-${batch}-per-commit`;
    if (!bench.selected(id) && !bench.anySelected("http/disk") && !bench.anySelected("grpc/disk")) {
      continue;
    }
    log(`Disk ceiling: ${batch} entries a commit`);
    const once = async (seconds: number): Promise<RunFigure> => {
      const result = await run(Deno.execPath(), [
        "run",
        "-A",
        "--unstable-kv",
        "bench/baselines/disk_commits.ts",
        "--batch",
        String(batch),
        "--seconds",
        String(seconds),
      ], { cwd: ROOT });
      const line = result.stdout.split("\n").find((text) => text.startsWith("BENCH_JSON "));
      if (result.code !== 0 || line === undefined) {
        throw new Error(`Cannot measure the disk ceiling: ${result.stdout}${result.stderr}`);
      }
      const figures = JSON.parse(line.slice("BENCH_JSON ".length));
      return { rps: figures.rps, p50Ms: figures.p50Ms, p99Ms: figures.p99Ms, errors: 0 };
    };
    await once(warmup);
    const runs: RunFigure[] = [];
    for (let i = 0; i < count; i++) runs.push(await once(duration));
    bench.add(summarize({
      id,
      protocol: "Deno KV",
      server: "one Deno KV file, no server",
      scenario: `1 KiB sets, ${batch} a commit (entries/s; commit latency)`,
      runs,
      errors: 0,
      check: "-",
      failures: [],
    }));
  }
}

/** Two measurements of a baseline (before and after its group) make one row of all their runs. */
function mergeBaselines(first: Row, second: Row | undefined): Row {
  if (second === undefined) return first;
  return summarize({
    ...first,
    runs: [...first.runs, ...second.runs],
    errors: first.errors + second.errors,
    failures: [...first.failures, ...second.failures],
    check: `${first.runs.length + second.runs.length} runs, before and after the group`,
  });
}

async function httpGroup(bench: Bench): Promise<void> {
  if (!bench.anySelected("http/")) return;
  log("HTTP: the bare Deno.serve baseline");
  const before = await httpBaseline(bench, "baseline/http-bare");
  const pending: Row[] = [];
  for (const backend of BACKENDS) {
    const names = SCENARIO_NAMES.filter((name) => bench.selected(`http/${backend}/${name}`));
    if (names.length === 0) continue;
    if (backend === "redis" && bench.redisUrl === undefined) continue;
    const purple = await startPurple(bench, "http", backend);
    const baseUrl = `http://127.0.0.1:${purple.port}`;
    const ops = new HttpClient(baseUrl);
    const reference = bench.against && await startPurple(bench, "http", backend, bench.against.mod);
    const referenceUrl = reference && `http://127.0.0.1:${reference.port}`;
    try {
      for (const name of names) {
        log(`HTTP: ${backend} ${name}`);
        const definition = SCENARIOS[name];
        const row = await measureHttp(
          bench,
          `http/${backend}/${name}`,
          { server: `purple (${backend})`, scenario: name },
          baseUrl,
          definition.http,
          { definition, ops },
        );
        pending.push(row);
        if (referenceUrl && await lacks(bench, definition, new HttpClient(referenceUrl))) {
          bench.skipped.push(`against/http/${backend}/${name}: ${bench.against!.label} lacks it`);
        } else if (referenceUrl) {
          log(`HTTP: ${backend} ${name}, as of ${bench.against!.label}`);
          const before = await measureHttp(
            bench,
            `against/http/${backend}/${name}`,
            { server: `purple@${bench.against!.label} (${backend})`, scenario: name },
            referenceUrl,
            definition.http,
            { definition, ops: new HttpClient(referenceUrl) },
          );
          pending.push(before);
          addComparison(bench, row, before);
        }
      }
    } finally {
      await purple.cleanup();
      await reference?.cleanup();
    }
  }
  log("HTTP: the bare Deno.serve baseline again");
  const after = await httpBaseline(bench, "baseline/http-bare");
  const baseline = bench.add(mergeBaselines(before, after));
  for (const row of pending) {
    bench.add({ ...row, baseline: baseline.id, ratio: row.rps / baseline.rps });
  }
}

/** Whether the reference server lacks what a scenario calls (an older Purple). */
async function lacks(_bench: Bench, definition: Scenario, ops: Operations): Promise<boolean> {
  return definition.supportedBy !== undefined && !await definition.supportedBy(ops);
}

/** The A/B figure of one scenario: this checkout's rate over the reference's, same run. */
function addComparison(bench: Bench, row: Row, reference: Row): void {
  const runs = (r: Row) => r.runs.map((run) => Math.round(run.rps)).join(", ");
  bench.addExtra({
    id: `ab/${row.id}`,
    what: `${row.id}: this checkout / ${bench.against!.label}`,
    value: row.rps / reference.rps,
    unit: "×",
    detail: `${Math.round(row.rps)} vs ${Math.round(reference.rps)} req/s (median of runs ` +
      `${runs(row)} vs ${runs(reference)}), p99 ${row.p99Ms.toFixed(2)} vs ${
        reference.p99Ms.toFixed(2)
      } ms`,
    failures: [],
  });
}

/**
 * Checks out `ref` in `.tmp/bench-against/<commit>` (once) and installs its dependencies, so
 * that its `purple` can run beside this one.
 */
async function prepareAgainst(ref: string): Promise<{ mod: string; label: string }> {
  const resolved = await run("git", ["rev-parse", "--short", `${ref}^{commit}`], { cwd: ROOT });
  if (resolved.code !== 0) throw new Error(`Bad --against: '${ref}' is not a commit here`);
  const commit = resolved.stdout.trim();
  const dir = `${ROOT}.tmp/bench-against/${commit}`;
  if (!await Deno.stat(`${dir}/mod.ts`).then(() => true, () => false)) {
    const added = await run("git", ["worktree", "add", "--detach", dir, commit], { cwd: ROOT });
    if (added.code !== 0) throw new Error(`Cannot check out ${ref}: ${added.stderr}`);
  }
  const installed = await run(Deno.execPath(), ["install"], { cwd: dir });
  if (installed.code !== 0) {
    throw new Error(`Cannot install ${ref}'s dependencies: ${installed.stderr}`);
  }
  return { mod: `${dir}/mod.ts`, label: ref === commit ? commit : `${ref} (${commit})` };
}

/** The bare grpc-js baseline under Deno (through the GOAWAY guard) or Node. */
async function grpcBaseline(bench: Bench, runtime: "deno" | "node", id: string): Promise<Row> {
  const command = runtime === "deno" ? Deno.execPath() : "node";
  const args = runtime === "deno"
    ? ["run", "-A", "bench/baselines/grpc_bare.mjs"]
    : ["bench/baselines/grpc_bare.mjs"];
  const name = `bare grpc-js (${runtime === "deno" ? "Deno" : "Node"})`;
  const { server, port } = await startServer(name, command, args);
  try {
    return await measureGrpc(
      bench,
      id,
      { server: name, scenario: "CounterIncrement from a Map" },
      `http://127.0.0.1:${port}`,
      SCENARIOS["counter-increment"].grpc.path,
      framePath(SCENARIOS["counter-increment"].grpc.frame),
      { bareCounter: { done: 0 } },
    );
  } finally {
    await server.stop();
  }
}

async function grpcGroup(bench: Bench): Promise<void> {
  if (!bench.anySelected("grpc/") && !bench.selected("baseline/grpc-js")) return;
  log("gRPC: the bare grpc-js baseline (Deno)");
  const before = await grpcBaseline(bench, "deno", "baseline/grpc-js-deno");
  const pending: Row[] = [];
  for (const backend of BACKENDS) {
    const names = SCENARIO_NAMES.filter((name) => bench.selected(`grpc/${backend}/${name}`));
    if (names.length === 0) continue;
    if (backend === "redis" && bench.redisUrl === undefined) continue;
    const purple = await startPurple(bench, "grpc", backend);
    const ops = new GrpcClient(`127.0.0.1:${purple.port}`);
    const reference = bench.against && await startPurple(bench, "grpc", backend, bench.against.mod);
    const referenceOps = reference && new GrpcClient(`127.0.0.1:${reference.port}`);
    try {
      for (const name of names) {
        log(`gRPC: ${backend} ${name}`);
        const definition = SCENARIOS[name];
        const row = await measureGrpc(
          bench,
          `grpc/${backend}/${name}`,
          { server: `purple (${backend})`, scenario: name },
          `http://127.0.0.1:${purple.port}`,
          definition.grpc.path,
          framePath(definition.grpc.frame),
          { scenario: { definition, ops } },
        );
        pending.push(row);
        if (referenceOps && await lacks(bench, definition, referenceOps)) {
          bench.skipped.push(`against/grpc/${backend}/${name}: ${bench.against!.label} lacks it`);
        } else if (reference && referenceOps) {
          log(`gRPC: ${backend} ${name}, as of ${bench.against!.label}`);
          const before = await measureGrpc(
            bench,
            `against/grpc/${backend}/${name}`,
            { server: `purple@${bench.against!.label} (${backend})`, scenario: name },
            `http://127.0.0.1:${reference.port}`,
            definition.grpc.path,
            framePath(definition.grpc.frame),
            { scenario: { definition, ops: referenceOps } },
          );
          pending.push(before);
          addComparison(bench, row, before);
        }
      }
    } finally {
      await ops.close();
      await referenceOps?.close();
      await purple.cleanup();
      await reference?.cleanup();
    }
  }
  log("gRPC: the bare grpc-js baseline (Deno) again");
  const after = await grpcBaseline(bench, "deno", "baseline/grpc-js-deno");
  const baseline = bench.add(mergeBaselines(before, after));
  for (const row of pending) {
    bench.add({ ...row, baseline: baseline.id, ratio: row.rps / baseline.rps });
  }
  if (bench.nodeMissing === undefined) {
    log("gRPC: the bare grpc-js baseline (Node)");
    const node = await grpcBaseline(bench, "node", "baseline/grpc-js-node");
    bench.add({ ...node, baseline: baseline.id, ratio: node.rps / baseline.rps });
  } else bench.skipped.push(`baseline/grpc-js-node: ${bench.nodeMissing}`);
}

/** How many read-modify-write loops the compare-and-set scenario runs on its one key. */
const CAS_LOOPS = 64;

/**
 * Compare-and-set under contention (`cas/<protocol>/<backend>`): 64 read-modify-write loops on
 * one KV key through a client in this process; updates/s that went through, their latency
 * (retries included), and the conflicts each update cost. The value must count every update.
 */
async function contentionGroup(bench: Bench): Promise<void> {
  const { warmup, duration, runs: count } = bench.settings;
  for (const backend of BACKENDS) {
    for (const protocol of ["http", "grpc"] as const) {
      const id = `cas/${protocol}/${backend}`;
      if (!bench.selected(id)) continue;
      if (backend === "redis" && bench.redisUrl === undefined) continue;
      log(`Compare-and-set: ${protocol} ${backend}, ${CAS_LOOPS} loops on one key`);
      const purple = await startPurple(bench, protocol, backend);
      const ops: Operations = protocol === "http"
        ? new HttpClient(`http://127.0.0.1:${purple.port}`)
        : new GrpcClient(`127.0.0.1:${purple.port}`);
      try {
        const failures: string[] = [];
        const runs: RunFigure[] = [];
        let conflicts = 0;
        let updates = 0;
        for (let i = 0; i <= count; i++) {
          const result = await casContention(
            ops,
            "bench-cas",
            CAS_LOOPS,
            i === 0 ? warmup : duration,
          );
          if (result.problem) {
            failures.push(`${i === 0 ? "warm-up" : `run ${i}`}: ${result.problem}`);
          }
          if (result.errors > 0) failures.push(`${result.errors} errors besides conflicts`);
          if (i === 0) continue;
          runs.push({
            rps: result.rps,
            p50Ms: result.p50Ms,
            p99Ms: result.p99Ms,
            errors: result.errors,
          });
          conflicts += result.conflicts;
          updates += result.updates;
        }
        const row = bench.add(summarize({
          id,
          protocol: protocol === "http" ? "HTTP" : "gRPC",
          server: `purple (${backend})`,
          scenario: `KV compare-and-set, ${CAS_LOOPS} loops on one key (updates/s)`,
          runs,
          errors: runs.reduce((sum, run) => sum + run.errors, 0),
          check: failures.length > 0 ? `**FAILED**: ${failures[0]}` : "exact",
          failures,
        }));
        bench.addExtra({
          id: `${id}/conflicts`,
          what: `${row.id}: writes refused (412) per update that went through`,
          value: updates > 0 ? conflicts / updates : NaN,
          unit: "per update",
          detail: `${conflicts} conflicts, ${updates} updates over ${count} runs`,
          failures: [],
        });
      } finally {
        await ops.close();
        await purple.cleanup();
      }
    }
  }
}

/** redis-benchmark against the same Redis, with as many connections. */
async function redisBaseline(bench: Bench, test: "incr" | "get"): Promise<void> {
  const id = `baseline/redis-benchmark-${test}`;
  if (!bench.selected(id) && !bench.anySelected("http/redis") && !bench.anySelected("grpc/redis")) {
    return;
  }
  if (bench.redisUrl === undefined) return;
  const port = new URL(bench.redisUrl).port;
  const { warmup, duration, runs: count, connections } = bench.settings;
  const once = async (n: number) => {
    const result = await run("redis-benchmark", [
      "-h",
      "127.0.0.1",
      "-p",
      port,
      "-c",
      String(connections),
      "-n",
      String(n),
      "-t",
      test,
      "--csv",
    ]);
    const line = result.stdout.split("\n").find((text) =>
      text.startsWith(`"${test.toUpperCase()}"`)
    );
    if (result.code !== 0 || line === undefined) {
      throw new Error(`Cannot run redis-benchmark: ${result.stdout}${result.stderr}`);
    }
    const [, rps, , , p50, , p99] = line.split(",").map((field) =>
      Number(field.replaceAll('"', ""))
    );
    return { rps, p50Ms: p50, p99Ms: p99, errors: 0 };
  };
  log(`redis-benchmark ${test}`);
  const probe = await once(connections * 100);
  const warm = await once(Math.round(probe.rps * warmup));
  const runs: RunFigure[] = [];
  for (let i = 0; i < count; i++) runs.push(await once(Math.round(warm.rps * duration)));
  bench.add(summarize({
    id,
    protocol: "RESP",
    server: "redis-server",
    scenario: `redis-benchmark ${test.toUpperCase()}`,
    runs,
    errors: 0,
    check: "-",
    failures: [],
  }));
}

// ---------------------------------------------------------------------------------------------
// Side by side: what serves gRPC fastest for this project

interface Comparison {
  id: string;
  label: string;
  runtime: "deno" | "node";
  /** The command line, or a function that builds it (a bundle). */
  start: (
    bench: Bench,
  ) => Promise<{ command: string; args: string[]; env?: Record<string, string> }>;
  /** A server that dies when h2load closes its connections: measured in duration mode. */
  crashes?: boolean;
  /** How many server processes share the port (each with its own counter). */
  processes?: number;
}

/** Scratch files of the comparisons (bundles, descriptors): inside the repository, so that
 * Node finds ./node_modules from them; `.tmp/` is ignored by git. */
const SCRATCH = new URL("../.tmp/bench/", import.meta.url).pathname;

const deno = (file: string, ...extra: string[]) => async () => ({
  command: Deno.execPath(),
  args: ["run", "-A", file, ...extra],
  env: { BENCH_DESCRIPTOR: await descriptorFile() },
});
const node = (file: string, ...extra: string[]) => async () => ({
  command: "node",
  args: [file, ...extra],
  env: { BENCH_DESCRIPTOR: await descriptorFile(), BENCH_PORT: String(freePort()) },
});

/** The descriptor of proto/purple.proto, written once for the connect-node servers. */
async function descriptorFile(): Promise<string> {
  const path = `${SCRATCH}purple.binpb`;
  const { fileDescriptorSet } = await import("@purple/protocol/wire");
  await Deno.mkdir(SCRATCH, { recursive: true });
  await Deno.writeFile(path, fileDescriptorSet());
  return path;
}

/** Purple's gRPC server bundled for Node (npm packages external, from ./node_modules). */
async function purpleNodeBundle(): Promise<string> {
  const path = `${SCRATCH}purple_grpc.mjs`;
  await Deno.mkdir(SCRATCH, { recursive: true });
  const result = await run(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--external",
    "@grpc/*",
    "--external",
    "protobufjs",
    "--external",
    "protobufjs/*",
    "--external",
    "ioredis",
    "-o",
    path,
    "bench/compare/purple_grpc.ts",
  ], { cwd: ROOT });
  if (result.code !== 0) throw new Error(`Cannot bundle Purple for Node: ${result.stderr}`);
  return path;
}

const COMPARISONS: Comparison[] = [
  {
    id: "compare/grpc-js-deno-native",
    label: "bare grpc-js, Deno, its own listener (no guard)",
    runtime: "deno",
    start: deno("bench/baselines/grpc_bare.mjs", "--native"),
    crashes: true,
  },
  {
    id: "compare/grpc-js-node-2-processes",
    label: "bare grpc-js, Node, 2 processes (node:cluster)",
    runtime: "node",
    start: node("bench/baselines/grpc_bare.mjs", "--workers", "2"),
    processes: 2,
  },
  {
    id: "compare/purple-node",
    label: "purple (memory), Node (deno bundle)",
    runtime: "node",
    start: async () => ({ command: "node", args: [await purpleNodeBundle()] }),
  },
  {
    id: "compare/connect-node-deno",
    label: "bare @connectrpc/connect-node, Deno",
    runtime: "deno",
    start: deno("bench/compare/connect_unary.mjs"),
  },
  {
    id: "compare/connect-node-node",
    label: "bare @connectrpc/connect-node, Node",
    runtime: "node",
    start: node("bench/compare/connect_unary.mjs"),
  },
  {
    id: "compare/http2-deno",
    label: "no gRPC library, node:http2, Deno",
    runtime: "deno",
    start: deno("bench/compare/http2_unary.mjs"),
  },
  {
    id: "compare/http2-deno-native",
    label: "no gRPC library, node:http2, Deno, its own listener (no guard)",
    runtime: "deno",
    start: deno("bench/compare/http2_unary.mjs", "--native"),
    crashes: true,
  },
  {
    id: "compare/http2-node",
    label: "no gRPC library, node:http2, Node",
    runtime: "node",
    start: node("bench/compare/http2_unary.mjs"),
  },
];

async function compareGroup(bench: Bench): Promise<void> {
  for (const comparison of COMPARISONS) {
    if (!bench.selected(comparison.id)) continue;
    if (comparison.runtime === "node" && bench.nodeMissing !== undefined) {
      bench.skipped.push(`${comparison.id}: ${bench.nodeMissing}`);
      continue;
    }
    log(`Side by side: ${comparison.label}`);
    const { command, args, env } = await comparison.start(bench);
    if (comparison.crashes) {
      bench.addCompared(await measureCrashing(bench, comparison, command, args, env));
      continue;
    }
    const { server, port } = await startServer(comparison.label, command, args, env);
    try {
      bench.addCompared(
        await measureGrpc(
          bench,
          comparison.id,
          { server: comparison.label, scenario: "CounterIncrement" },
          `http://127.0.0.1:${port}`,
          SCENARIOS["counter-increment"].grpc.path,
          framePath(SCENARIOS["counter-increment"].grpc.frame),
          { bareCounter: { done: 0 }, processes: comparison.processes },
        ),
      );
    } finally {
      await server.stop();
    }
  }
}

/** A server that aborts when h2load closes: one process per run, in h2load's duration mode. */
async function measureCrashing(
  bench: Bench,
  comparison: Comparison,
  command: string,
  args: string[],
  env?: Record<string, string>,
): Promise<Row> {
  const { warmup, duration, runs: count, connections } = bench.settings;
  const runs: RunFigure[] = [];
  let errors = 0;
  for (let i = 0; i < count; i++) {
    const { server, port } = await startServer(comparison.label, command, args, env);
    try {
      const result = await h2load(`http://127.0.0.1:${port}`, {
        path: SCENARIOS["counter-increment"].grpc.path,
        frameFile: framePath(SCENARIOS["counter-increment"].grpc.frame),
        replyBytes: () => 0,
      }, { seconds: duration, warmupSeconds: warmup, connections });
      errors += result.errors;
      runs.push({
        rps: result.rps,
        p50Ms: result.p50Ms,
        p99Ms: result.p99Ms,
        errors: result.errors,
      });
    } finally {
      await server.stop(2_000);
    }
  }
  return summarize({
    id: comparison.id,
    protocol: "gRPC",
    server: comparison.label,
    scenario: "CounterIncrement (h2load -D, one process per run)",
    runs,
    errors,
    check: "-",
    failures: [],
  });
}

// ---------------------------------------------------------------------------------------------
// Workers: the same scenario with 1 and 2 worker processes, interleaved

/** The worker counts compared, and the backends that workers can share. */
const WORKER_COUNTS = [1, 2] as const;
const SHARED_BACKENDS = ["disk", "redis"] as const;

/** The rows of one server measured in several rounds, as one row of all their runs. */
function mergeRounds(rows: Row[]): Row {
  const failures = rows.flatMap((row) => row.failures);
  return summarize({
    ...rows[0],
    runs: rows.flatMap((row) => row.runs),
    errors: rows.reduce((sum, row) => sum + row.errors, 0),
    failures,
    check: failures.length > 0 ? rows.find((row) => row.failures.length > 0)!.check : rows[0].check,
  });
}

const percent = (fraction: number) => `${Math.round(fraction * 100)}%`;

/** Ratios per round as `median (low-high over N rounds: a, b, c)`. */
function ratioDetail(ratios: number[]): string {
  const sorted = [...ratios].sort((a, b) => a - b);
  return `${sorted[0].toFixed(2)}-${sorted.at(-1)!.toFixed(2)} over ${ratios.length} ` +
    `interleaved rounds (${ratios.map((ratio) => ratio.toFixed(2)).join(", ")})`;
}

/**
 * Counter increments over HTTP and gRPC, on disk and on redis, with 1 and with 2 workers: both
 * servers run side by side, and each round measures one run of each (the order alternates), so
 * that the machine's noise falls on both alike. The write check stays exact: the workers share
 * one backend.
 */
async function workersGroup(bench: Bench): Promise<void> {
  const scenario = SCENARIOS["counter-increment"];
  for (const protocol of ["http", "grpc"] as const) {
    for (const backend of SHARED_BACKENDS) {
      const ids = WORKER_COUNTS.map((n) => `workers/${protocol}/${backend}/${n}`);
      if (!ids.some((id) => bench.selected(id))) continue;
      if (backend === "redis" && bench.redisUrl === undefined) continue;
      log(`Workers: ${protocol} ${backend}, 1 and 2 workers`);
      const servers: Array<{
        n: number;
        purple: Awaited<ReturnType<typeof startPurple>>;
        ops: Operations & { close(): Promise<void> };
        rows: Row[];
        /** Per round: the cores Purple's processes used, and how busy the machine was. */
        cores: number[];
        busy: number[];
      }> = [];
      try {
        for (const n of WORKER_COUNTS) {
          const purple = await startPurple(bench, protocol, backend, MOD, n);
          const ops = protocol === "http"
            ? new HttpClient(`http://127.0.0.1:${purple.port}`)
            : new GrpcClient(`127.0.0.1:${purple.port}`);
          servers.push({ n, purple, ops, rows: [], cores: [], busy: [] });
        }
        for (let round = 0; round < bench.settings.runs; round++) {
          const order = round % 2 === 0 ? servers : [...servers].reverse();
          for (const server of order) {
            const id = `workers/${protocol}/${backend}/${server.n}`;
            const labels = {
              server: `purple (${backend}, ${server.n} worker${server.n > 1 ? "s" : ""})`,
              scenario: "counter-increment",
            };
            const target = { definition: scenario, ops: server.ops };
            const started = performance.now();
            const cpu = await treeCpuSeconds(server.purple.server.pid);
            const machine = await machineCpuSeconds();
            server.rows.push(
              protocol === "http"
                ? await measureHttp(
                  bench,
                  id,
                  labels,
                  `http://127.0.0.1:${server.purple.port}`,
                  scenario.http,
                  target,
                  1,
                )
                : await measureGrpc(
                  bench,
                  id,
                  labels,
                  `http://127.0.0.1:${server.purple.port}`,
                  scenario.grpc.path,
                  framePath(scenario.grpc.frame),
                  { scenario: target },
                  { runs: 1 },
                ),
            );
            const seconds = (performance.now() - started) / 1000;
            server.cores.push((await treeCpuSeconds(server.purple.server.pid) - cpu) / seconds);
            const after = await machineCpuSeconds();
            server.busy.push((after.busy - machine.busy) / (after.total - machine.total));
          }
        }
        const [one, two] = servers.map((server) => mergeRounds(server.rows));
        bench.add(one);
        bench.add({ ...two, baseline: one.id, ratio: two.rps / one.rps });
        const ratios = servers[1].rows.map((row, i) => row.rps / servers[0].rows[i].rps);
        bench.addExtra({
          id: `workers/${protocol}/${backend}/2-vs-1`,
          what: `${protocol === "http" ? "HTTP" : "gRPC"} ${backend} counter increment, ` +
            "2 workers / 1 worker",
          value: median(ratios),
          unit: "×",
          detail: `${Math.round(two.rps)} vs ${Math.round(one.rps)} req/s (medians); ` +
            `${ratioDetail(ratios)}; Purple used ${median(servers[1].cores).toFixed(2)} cores ` +
            `with 2 workers, ${median(servers[0].cores).toFixed(2)} with 1; the machine's ` +
            `${navigator.hardwareConcurrency} cores were ${
              percent(median([...servers[0].busy, ...servers[1].busy]))
            } busy`,
          failures: [],
        });
      } finally {
        for (const server of servers) {
          if (server.ops instanceof GrpcClient) await server.ops.close();
          await server.purple.cleanup();
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The gRPC gap to the original Go server

/**
 * The calls of the earlier side-by-side measurement with the Go server (same h2load settings),
 * by the method names of the original's current release (Purple serves them, and the earlier
 * `GetCounter` / `IncrementCounter` too).
 */
const GAP_CALLS = [
  {
    id: "get-c64",
    what: "CounterGet, 64 connections",
    path: "/proto.Counter/CounterGet",
    frame: "counter_get.bin",
    connections: 64,
    streams: 1,
    /** The Go server (memory) in the earlier run, calls/s. */
    earlierGo: 28_863,
  },
  {
    id: "get-c4x16",
    what: "CounterGet, 4 connections × 16 streams",
    path: "/proto.Counter/CounterGet",
    frame: "counter_get.bin",
    connections: 4,
    streams: 16,
    earlierGo: 67_275,
  },
  {
    id: "increment-c64",
    what: "CounterIncrement, 64 connections",
    path: "/proto.Counter/CounterIncrement",
    frame: "counter_increment.bin",
    connections: 64,
    streams: 1,
    /** The Go server on Redis in the earlier run (its memory figure was not kept). */
    earlierGo: 14_604,
    earlierGoBackend: "redis",
    /**
     * Not the Go server: its memory backend's maps have no lock, and concurrent increments end
     * it within a second ("fatal error: concurrent map writes"); its redis backend needs a Go
     * Redis client that the build here lacks.
     */
    withoutGo: true,
  },
] as const;

/** The servers of the gap group: the Go server (when given), and Purple on each setting. */
const GAP_SERVERS = [
  { id: "go", backend: "memory", workers: 1 },
  { id: "purple-memory", backend: "memory", workers: 1 },
  { id: "purple-redis-1", backend: "redis", workers: 1 },
  { id: "purple-redis-2", backend: "redis", workers: 2 },
  { id: "purple-disk-2", backend: "disk", workers: 2 },
] as const;

/** Starts the original Go server (`--go-grpc BIN`, memory backend) on a port it accepts. */
async function startGo(binary: string): Promise<{ server: Server; port: number }> {
  let port = freePort();
  while (port < 1024 || port > 49151) port = freePort(); // The range the original accepts.
  const server = spawnServer("purple-grpc (Go)", binary, [
    "--backend",
    "memory",
    "--port",
    String(port),
  ]);
  await server.line(/starting the purple gRPC server/);
  return { server, port };
}

/**
 * The calls the original Go server was measured with, on Purple with 1 and 2 workers (and on the
 * Go server in the same run when `--go-grpc` names a build of it), interleaved round by round.
 */
async function gapGroup(bench: Bench): Promise<void> {
  const servers = GAP_SERVERS.filter((server) =>
    GAP_CALLS.some((call) => bench.selected(`gap/${server.id}/${call.id}`)) &&
    (server.id !== "go" || bench.settings.goGrpc !== undefined) &&
    (server.backend !== "redis" || bench.redisUrl !== undefined)
  );
  if (servers.length === 0) return;
  log(`The gRPC gap: ${servers.map((server) => server.id).join(", ")}`);
  const running: Array<{ id: string; label: string; port: number; stop: () => Promise<unknown> }> =
    [];
  try {
    for (const server of servers) {
      if (server.id === "go") {
        const go = await startGo(bench.settings.goGrpc!);
        running.push({
          id: server.id,
          label: "the original Go server (memory)",
          port: go.port,
          stop: () => go.server.stop(),
        });
        continue;
      }
      const purple = await startPurple(bench, "grpc", server.backend, MOD, server.workers);
      running.push({
        id: server.id,
        label: `purple (${server.backend}, ${server.workers} worker${
          server.workers > 1 ? "s" : ""
        })`,
        port: purple.port,
        stop: purple.cleanup,
      });
    }
    for (const call of GAP_CALLS) {
      const targets = running.filter((server) =>
        bench.selected(`gap/${server.id}/${call.id}`) &&
        (server.id !== "go" || !("withoutGo" in call))
      );
      if (targets.length === 0) continue;
      log(`The gRPC gap: ${call.what}`);
      const rows = new Map(targets.map((server) => [server.id, [] as Row[]]));
      for (let round = 0; round < bench.settings.runs; round++) {
        const order = round % 2 === 0 ? targets : [...targets].reverse();
        for (const server of order) {
          rows.get(server.id)!.push(
            await measureGrpc(
              bench,
              `gap/${server.id}/${call.id}`,
              { server: server.label, scenario: call.what },
              `http://127.0.0.1:${server.port}`,
              call.path,
              framePath(call.frame),
              { atLeastBytes: 5 },
              { runs: 1, connections: call.connections, streams: call.streams },
            ),
          );
        }
      }
      const merged = new Map([...rows].map(([id, list]) => [id, mergeRounds(list)]));
      const go = merged.get("go");
      for (const [id, row] of merged) {
        if (go === undefined || id === "go") bench.add(row);
        else bench.add({ ...row, baseline: go.id, ratio: row.rps / go.rps });
      }
      for (const [id, row] of merged) {
        if (id === "go") continue;
        const earlier = "earlierGoBackend" in call ? ` on ${call.earlierGoBackend}` : "";
        if (go !== undefined) {
          const ratios = rows.get(id)!.map((r, i) => r.rps / rows.get("go")![i].rps);
          bench.addExtra({
            id: `gap/${id}/${call.id}/vs-go`,
            what: `${call.what}: ${row.server} / the Go server (memory), same run`,
            value: median(ratios),
            unit: "×",
            detail: `${Math.round(row.rps)} vs ${Math.round(go.rps)} calls/s; ${
              ratioDetail(ratios)
            }`,
            failures: [],
          });
        }
        bench.addExtra({
          id: `gap/${id}/${call.id}/vs-earlier-go`,
          what: `${call.what}: ${row.server} / the Go server${earlier} in an earlier run`,
          value: row.rps / call.earlierGo,
          unit: "×",
          detail: `${Math.round(row.rps)} vs ${call.earlierGo.toLocaleString("en-US")} ` +
            "calls/s (the Go figure is from an earlier run, not this one)",
          failures: [],
        });
      }
    }
  } finally {
    for (const server of running) await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Start-up and memory

/** Milliseconds from spawning `purple` to its first answered /ping, median of 10. */
async function startupGroup(bench: Bench): Promise<void> {
  const modes = [
    {
      id: "startup/http-memory",
      what: "purple http --backend memory",
      args: (port: number, _dir: string) => ["http", "--backend", "memory", "--port", String(port)],
    },
    {
      id: "startup/default",
      what: "purple (disk, HTTP and gRPC)",
      args: (port: number, dir: string) => [
        "--backend",
        "disk",
        "--data-dir",
        dir,
        "--http-port",
        String(port),
        "--grpc-port",
        String(freePort()),
      ],
    },
  ];
  for (const mode of modes) {
    if (!bench.selected(mode.id)) continue;
    log(`Start-up: ${mode.what}`);
    const times: number[] = [];
    const dir = await Deno.makeTempDir({ prefix: "purple-bench-startup-" });
    try {
      for (let i = 0; i <= 10; i++) {
        const port = freePort();
        const start = performance.now();
        const server = spawnServer(mode.what, Deno.execPath(), [
          "run",
          "-A",
          "--unstable-kv",
          MOD,
          ...mode.args(port, dir),
        ], { cwd: ROOT });
        try {
          const elapsed = await firstPing(port, start, server);
          if (i > 0) times.push(elapsed); // The first start fills Deno's module cache.
        } finally {
          await server.stop();
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    const sorted = [...times].sort((a, b) => a - b);
    bench.addExtra({
      id: mode.id,
      what: `Start-up, ${mode.what}`,
      value: sorted[Math.floor(sorted.length / 2)],
      unit: "ms",
      detail: `median of ${times.length} starts to the first answered /ping (min ${
        sorted[0].toFixed(0)
      }, max ${sorted.at(-1)!.toFixed(0)})`,
      failures: [],
    });
  }
}

async function firstPing(port: number, start: number, server: Server): Promise<number> {
  const url = `http://127.0.0.1:${port}/ping`;
  while (performance.now() - start < 20_000) {
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      if (response.status === 200) return performance.now() - start;
    } catch {
      if (server.exited()) throw new Error(`${server.name} exited:\n${server.output()}`);
      await sleep(2);
    }
  }
  throw new Error(`${server.name} did not answer /ping within 20 s:\n${server.output()}`);
}

/** The resident memory of `purple` holding one million KV entries of 100 bytes. */
async function memoryGroup(bench: Bench): Promise<void> {
  const id = "rss/kv-1m";
  if (!bench.selected(id)) return;
  const count = bench.settings.quick ? 20_000 : 1_000_000;
  const valueBytes = 100;
  log(`Memory: ${count.toLocaleString("en-US")} KV entries of ${valueBytes} bytes`);
  const purple = await startPurple(bench, "http", "memory");
  const failures: string[] = [];
  try {
    const baseUrl = `http://127.0.0.1:${purple.port}`;
    await (await fetch(`${baseUrl}/ping`)).body?.cancel();
    const empty = await residentBytes(purple.server.pid);
    const fill = await wrkFill(baseUrl, count, valueBytes, bench.settings.connections);
    if (fill.stored !== count || fill.failed > 0) {
      failures.push(`stored ${fill.stored} of ${count} entries, ${fill.failed} failed`);
    }
    const ops = new HttpClient(baseUrl);
    for (const key of ["key-1", `key-${count}`]) {
      const value = await ops.kvGet(key);
      if (value.length !== valueBytes || value.some((byte) => byte !== 0x76)) {
        failures.push(`the value of '${key}' read back differs`);
      }
    }
    // V8 keeps the garbage of the fill until its memory reducer runs, some seconds after the
    // load stops: report the figure right after the fill and the settled one.
    const filled = await residentBytes(purple.server.pid);
    let settled = filled;
    for (let second = 0; second < (bench.settings.quick ? 3 : 30); second++) {
      await sleep(1_000);
      settled = Math.min(settled, await residentBytes(purple.server.pid));
    }
    const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
    bench.addExtra({
      id,
      what: `Memory, ${count.toLocaleString("en-US")} KV entries of ${valueBytes} bytes`,
      value: settled / 2 ** 20,
      unit: "MB",
      detail: `resident memory of purple (memory backend) holding ${
        count.toLocaleString("en-US")
      } entries, settled (${mb(filled)} right after the fill, ${mb(empty)} empty; ${
        ((settled - empty) / count).toFixed(0)
      } bytes per entry); filled in ${fill.seconds.toFixed(1)} s`,
      failures,
    });
  } finally {
    await purple.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------
// Main

async function machine(): Promise<Record<string, string>> {
  const cpu = await Deno.readTextFile("/proc/cpuinfo").then(
    (text) => text.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown",
    () => "unknown",
  );
  const version = async (command: string, args: string[]) => {
    const result = await run(command, args).catch(() => undefined);
    return result === undefined ? "missing" : (result.stdout + result.stderr).split("\n")[0].trim();
  };
  return {
    cpu: `${cpu}, ${navigator.hardwareConcurrency} cores`,
    memory: `${(Deno.systemMemoryInfo().total / 2 ** 30).toFixed(1)} GiB`,
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    node: await version("node", ["--version"]),
    wrk: await version("wrk", ["--version"]),
    h2load: await version("h2load", ["--version"]),
    redis: await version("redis-server", ["--version"]),
    "load average at start": String(await loadAverage() ?? "unknown"),
  };
}

/** The Debian package of each load generator. */
const APT = { wrk: "wrk", h2load: "nghttp2-client" } as const;

/**
 * The load generators the scenarios selected by `filters` (as `--filter` takes them) need: wrk
 * for HTTP (and the 1M-entry fill), h2load for gRPC and the compared servers.
 *
 * @param filters The parts of `--filter`; none selects every scenario.
 * @returns `wrk`, `h2load`, both or neither.
 */
export function loadGenerators(filters: string[]): Array<keyof typeof APT> {
  const bench = new Bench({ filters } as unknown as Settings);
  const tools: Array<keyof typeof APT> = [];
  if (["http/", "baseline/http", "rss/"].some((prefix) => bench.anySelected(prefix))) {
    tools.push("wrk");
  }
  if (["grpc/", "baseline/grpc", "compare/"].some((prefix) => bench.anySelected(prefix))) {
    tools.push("h2load");
  }
  return tools;
}

async function main(args: string[]): Promise<number> {
  let parsed: Settings | "help" | "list";
  try {
    parsed = parseSettings(args);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}`);
    return 2;
  }
  if (parsed === "help") {
    console.log(HELP);
    return 0;
  }
  if (parsed === "list") {
    console.log(allIds().join("\n"));
    return 0;
  }
  const bench = new Bench(parsed);
  const missing = [];
  for (const tool of loadGenerators(parsed.filters)) {
    if (!await available(tool, ["--version"])) {
      missing.push(`${tool} (apt-get install ${APT[tool]})`);
    }
  }
  if (missing.length > 0) {
    console.error(
      `bench: cannot run without ${missing.join(" and ")}: install it and run again, ` +
        "or leave out the scenarios that need it with --filter",
    );
    return 2;
  }
  const stale = await staleFrames();
  if (stale.length > 0) {
    console.error(
      `bench: the gRPC frames ${stale.join(", ")} differ from Purple's codecs: ` +
        "run 'deno run -A bench/_grpc_frames.ts' to write them again",
    );
    return 2;
  }
  if (!await available("node")) bench.nodeMissing = "node is not on PATH";

  if (parsed.against !== undefined) {
    try {
      bench.against = await prepareAgainst(parsed.against);
    } catch (error) {
      console.error(`bench: ${(error as Error).message}`);
      return 2;
    }
    log(`Measuring beside this checkout: Purple as of ${bench.against.label}`);
  }
  if (parsed.variant !== undefined) {
    bench.against = parsed.variant;
    log(`Measuring beside this checkout: ${bench.against.label} (${bench.against.mod})`);
  }
  const startedAt = new Date().toISOString();
  const info = await machine();
  let redis: Server | undefined;
  const wantsRedis = bench.anySelected("http/redis") || bench.anySelected("grpc/redis") ||
    bench.anySelected("baseline/redis") || bench.anySelected("workers/http/redis") ||
    bench.anySelected("workers/grpc/redis") || bench.anySelected("gap/purple-redis");
  if (wantsRedis) {
    if (!await available("redis-server") || !await available("redis-benchmark")) {
      console.error(
        "bench: cannot run the redis scenarios without redis-server and redis-benchmark: " +
          "apt-get install redis-server, or leave them out with --filter",
      );
      return 2;
    }
    const port = freePort();
    redis = spawnServer("redis-server", "redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
    ]);
    await redis.line(/Ready to accept connections/);
    bench.redisUrl = `redis://127.0.0.1:${port}`;
  }
  try {
    await diskCeilingGroup(bench);
    await httpGroup(bench);
    await grpcGroup(bench);
    await contentionGroup(bench);
    await redisBaseline(bench, "incr");
    await redisBaseline(bench, "get");
    await compareGroup(bench);
    await workersGroup(bench);
    await gapGroup(bench);
    await startupGroup(bench);
    await memoryGroup(bench);
  } finally {
    await redis?.stop();
  }
  info["load average at end"] = String(await loadAverage() ?? "unknown");
  const report: Report = {
    startedAt,
    machine: info,
    settings: {
      connections: bench.settings.connections,
      "warm-up s": bench.settings.warmup,
      "run s": bench.settings.duration,
      runs: bench.settings.runs,
      "load generators": "wrk -t1 (HTTP), h2load -t1 -m1 (gRPC)",
      ...(bench.settings.filters.length > 0 ? { filter: bench.settings.filters.join(",") } : {}),
      ...(bench.against === undefined ? {} : { against: bench.against.label }),
    },
    rows: bench.rows,
    extras: bench.extras,
    targets: evaluateTargets(bench.rows, bench.extras, bench.failures),
    failures: bench.failures,
  };
  const text = markdown(report);
  await Deno.mkdir(bench.settings.out, { recursive: true });
  await Deno.writeTextFile(`${bench.settings.out}/latest.json`, JSON.stringify(report, null, 2));
  await Deno.writeTextFile(`${bench.settings.out}/latest.md`, `${text}\n`);
  console.log(text);
  for (const skipped of bench.skipped) console.error(`!!! SKIPPED ${skipped} !!!`);
  log(`Wrote ${bench.settings.out}/latest.json and latest.md`);
  return bench.failures.length === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
