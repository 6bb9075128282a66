/**
 * `purple --workers N`: N processes serve the same HTTP and gRPC ports over one shared backend
 * (disk or redis), so that Purple uses every core of a machine. Private to the server.
 *
 * The process started by the user becomes the **supervisor**: it prints the start-up lines,
 * starts the workers, prints the real ports once every worker listens, starts again a worker
 * that dies (with a log line and a back-off), and on SIGINT or SIGTERM drains them all. It opens
 * no backend and serves nothing itself.
 *
 * Each **worker** is Purple run once more (`deno run` of `mod.ts`, the same Deno; a compiled
 * binary runs itself) with {@linkcode WORKER_VARIABLE} set. It reads its configuration as one
 * JSON line on its standard input (the configuration the supervisor resolved from its flags and
 * variables, so every worker serves exactly the same thing), and serves it with `serve()`, its
 * listeners set to share their port (`SO_REUSEPORT`: `Deno.serve`'s `reusePort`, which takes
 * `--unstable-net`; `node:net`'s `reusePort` for gRPC). The Linux kernel then spreads new
 * connections over the workers. Its standard input stays open: when it ends, the supervisor is
 * gone (even killed with SIGKILL), and the worker stops as on SIGTERM. Workers run in a session
 * of their own, so that Ctrl+C in a terminal reaches the supervisor only, once.
 *
 * Ports: a worker prints `Starting up the HTTP server on port N` as Purple always does; the
 * supervisor reads those lines (and relays every other line, prefixed `worker N: `). With port 0,
 * worker 1 starts alone, and the others then bind the port it was given; with fixed ports all
 * start at once. A fixed port is first bound once without `SO_REUSEPORT` and let go, so that a
 * port held by another program (or another Purple with workers) is refused at start-up instead
 * of being shared with it.
 *
 * @module
 */

import type { CliConfig } from "./config.ts";
import { describeBinding, fail, isListenError, serve, signals, startupLines } from "./serve.ts";

/** Set in a worker's environment (its number); its configuration comes on standard input. */
export const WORKER_VARIABLE = "PURPLE_INTERNAL_WORKER";

/** How long a worker may take to listen before it counts as failed to start. */
const START_LIMIT_MS = 30_000;
/** Sets a shorter start-up limit, for the test that workers outlive it. Not a setting. */
const START_LIMIT_VARIABLE = "PURPLE_INTERNAL_START_LIMIT_MS";
/** A worker that served this long before it died is started again after the shortest delay. */
const STABLE_MS = 30_000;
/** The first delay before a worker that died is started again; it doubles while they keep dying. */
const FIRST_DELAY_MS = 100;
/** The longest delay between two starts of a worker. */
const LAST_DELAY_MS = 30_000;
/** How long the drain may take (the servers' own grace, 10 s for HTTP, and some) before SIGKILL. */
const DRAIN_LIMIT_MS = 15_000;

const STARTUP_LINE = /^Starting up the (HTTP|gRPC) server on port (\d+)$/;

/** The ports the workers listen on; `undefined` for a server that is not served. */
interface Ports {
  http?: number;
  grpc?: number;
}

/** How to run a worker. */
interface WorkerCommand {
  command: string;
  args: string[];
}

/** Permissions a worker gets when this process has them in full (never `run`). */
const PASSED_PERMISSIONS = ["net", "env", "read", "write", "sys", "ffi", "import"] as const;

function granted(descriptor: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false; // A permission this Deno does not know.
  }
}

/** The command that runs a worker, or why none can run. */
function workerCommand(count: number): WorkerCommand | string {
  const deno = Deno.execPath();
  if (!granted({ name: "run", command: deno })) {
    return `Cannot start ${count} workers: this process may not run ${deno} ` +
      `(add --allow-run=${deno}, as bin/purple does with --workers)`;
  }
  if ((Deno.build as { standalone?: boolean }).standalone === true) {
    return { command: deno, args: [] }; // A compiled purple: its flags are built in.
  }
  const permissions = PASSED_PERMISSIONS.filter((name) => granted({ name }))
    .map((name) => `--allow-${name}`);
  const config = new URL("../deno.json", import.meta.url);
  const withConfig = config.protocol === "file:" && exists(config)
    ? ["--config", config.pathname]
    : [];
  return {
    command: deno,
    args: [
      "run",
      "--no-prompt",
      ...permissions,
      "--unstable-kv",
      "--unstable-net",
      ...withConfig,
      new URL("../mod.ts", import.meta.url).href,
    ],
  };
}

function exists(file: URL): boolean {
  try {
    return Deno.statSync(file).isFile;
  } catch {
    return false;
  }
}

/**
 * Binds each fixed port once without `SO_REUSEPORT` and lets it go: a port another program holds
 * (even one that shares it) is refused now. Returns the one-line failure, if any.
 */
function probePorts(config: CliConfig): string | undefined {
  for (const [protocol, port] of [["HTTP", config.http], ["gRPC", config.grpc]] as const) {
    if (port === undefined || port === 0) continue;
    try {
      Deno.listen({ hostname: config.hostname, port }).close();
    } catch (error) {
      if (!isListenError(error)) throw error;
      return `Cannot listen on ${
        describeBinding(config.hostname, port, protocol)
      }: ${error.message}`;
    }
  }
  return undefined;
}

/** Splits a stream of bytes into lines and hands each to `onLine`; resolves at its end. */
async function eachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + text).split("\n");
    rest = parts.pop()!;
    parts.forEach(onLine);
  }
  if (rest !== "") onLine(rest);
}

/** How a process ended, in words. */
function describeEnd(status: Deno.CommandStatus): string {
  return status.signal === null ? `exit code ${status.code}` : `killed by ${status.signal}`;
}

/** One running worker process. */
class WorkerProcess {
  readonly index: number;
  readonly child: Deno.ChildProcess;
  readonly startedAt = Date.now();
  /** Resolves with its ports once it listens; rejects with a one-line reason if it never does. */
  readonly ready: Promise<Ports>;
  /** Resolves when it has ended and all its output is relayed. */
  readonly ended: Promise<Deno.CommandStatus>;
  #listening = false;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;

  constructor(index: number, command: WorkerCommand, config: CliConfig, startLimitMs: number) {
    this.index = index;
    this.child = new Deno.Command(command.command, {
      args: command.args,
      env: { [WORKER_VARIABLE]: String(index) },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    // The configuration, then nothing: the pipe stays open while the supervisor lives.
    this.#stdin = this.child.stdin.getWriter();
    this.#stdin.write(new TextEncoder().encode(`${JSON.stringify({ config })}\n`)).catch(() => {});
    const prefix = `worker ${index}: `;
    const expected: Array<keyof Ports> = [];
    if (config.http !== undefined) expected.push("http");
    if (config.grpc !== undefined) expected.push("grpc");
    const ports: Ports = {};
    const early: string[] = []; // stderr before it listens: the reason if it never does.
    let listening!: (ports: Ports) => void;
    let failed!: (reason: string) => void;
    this.ready = new Promise((resolve, reject) => {
      listening = resolve;
      failed = (reason) => reject(new Error(reason));
    });
    this.ready.catch(() => {});
    const timer = setTimeout(() => {
      failed(`worker ${index} did not listen within ${startLimitMs / 1000} s`);
      this.kill("SIGKILL");
    }, startLimitMs);
    const out = eachLine(this.child.stdout, (line) => {
      const startup = this.#listening ? null : STARTUP_LINE.exec(line);
      if (startup === null) return console.log(prefix + line);
      ports[startup[1] === "HTTP" ? "http" : "grpc"] = Number(startup[2]);
      if (expected.every((protocol) => ports[protocol] !== undefined)) {
        this.#listening = true;
        clearTimeout(timer);
        early.splice(0).forEach((text) => console.error(prefix + text));
        listening(ports);
      }
    });
    const err = eachLine(this.child.stderr, (line) => {
      if (this.#listening) console.error(prefix + line);
      else early.push(line);
    });
    this.ended = Promise.all([this.child.status, out, err]).then(([status]) => {
      clearTimeout(timer);
      if (!this.#listening) {
        // Its own one-line reason (`purple: ...`), or the last thing it printed.
        const reason = early.findLast((text) => text.startsWith("purple: "))?.slice(8) ??
          `worker ${index} ended at start-up (${describeEnd(status)})` +
            (early.length > 0 ? `: ${early.at(-1)}` : "");
        failed(reason);
      }
      return status;
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Whether it has listened. */
  get listening(): boolean {
    return this.#listening;
  }

  kill(signal: Deno.Signal): void {
    try {
      this.child.kill(signal);
    } catch {
      // Already ended.
    }
  }
}

/** A worker's place: the process now filling it, and how often it died young in a row. */
interface Slot {
  index: number;
  current?: WorkerProcess;
  quickDeaths: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** Starts the workers, starts again the ones that die, and drains them. */
class Supervisor {
  #command: WorkerCommand;
  #config: CliConfig;
  #slots: Slot[];
  #draining = false;
  #log = (line: string) => console.log(line);
  #startLimitMs = Number(Deno.env.get(START_LIMIT_VARIABLE)) || START_LIMIT_MS;

  constructor(config: CliConfig, command: WorkerCommand, count: number) {
    this.#config = config;
    this.#command = command;
    this.#slots = Array.from({ length: count }, (_, i) => ({ index: i + 1, quickDeaths: 0 }));
  }

  /** The pids of the workers now serving. */
  get pids(): number[] {
    return this.#slots.flatMap((slot) => slot.current?.listening ? [slot.current.pid] : []);
  }

  /**
   * Starts every worker and resolves with the ports once all listen (with port 0, worker 1
   * first, the others on the ports it got); rejects with a one-line reason when one cannot
   * start, after stopping the others.
   */
  async start(): Promise<Ports> {
    const [first, ...others] = this.#slots;
    try {
      const fixed = this.#config.http !== 0 && this.#config.grpc !== 0;
      if (!fixed) {
        const ports = await this.#spawn(first).ready;
        this.#config = { ...this.#config, ...ports };
      }
      await Promise.all((fixed ? this.#slots : others).map((slot) => this.#spawn(slot).ready));
      return { http: this.#config.http, grpc: this.#config.grpc };
    } catch (error) {
      this.#draining = true;
      for (const slot of this.#slots) slot.current?.kill("SIGKILL");
      await Promise.all(this.#slots.map((slot) => slot.current?.ended));
      throw error;
    }
  }

  #spawn(slot: Slot): WorkerProcess {
    const worker = new WorkerProcess(slot.index, this.#command, this.#config, this.#startLimitMs);
    slot.current = worker;
    worker.ended.then((status) => {
      if (slot.current === worker && !this.#draining && worker.listening) {
        this.#died(slot, worker, status);
      }
    });
    return worker;
  }

  /** A serving worker ended on its own: start it again after a delay that grows while they die young. */
  #died(slot: Slot, worker: WorkerProcess, status: Deno.CommandStatus): void {
    slot.quickDeaths = Date.now() - worker.startedAt >= STABLE_MS ? 0 : slot.quickDeaths + 1;
    slot.current = undefined;
    this.#restartLater(
      slot,
      `Worker ${slot.index} (pid ${worker.pid}) died (${describeEnd(status)})`,
    );
  }

  #restartLater(slot: Slot, what: string): void {
    const delay = Math.min(LAST_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.max(0, slot.quickDeaths - 1));
    const serving = this.pids.length;
    this.#log(
      `${what}: starting it again in ${delay / 1000} s; ${serving} of ${this.#slots.length} ` +
        "workers serve meanwhile",
    );
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (this.#draining) return;
      const worker = this.#spawn(slot);
      worker.ready.then(
        () => this.#log(`Worker ${slot.index} serves again (pid ${worker.pid})`),
        (error: Error) => {
          if (this.#draining || slot.current !== worker) return;
          slot.current = undefined;
          slot.quickDeaths++;
          this.#restartLater(slot, `Worker ${slot.index} could not start: ${error.message}`);
        },
      );
    }, delay);
  }

  /**
   * Sends SIGTERM to every worker (each lets its requests in flight finish, then closes the
   * backend), waits for all, and returns 0 when every serving worker stopped cleanly, else 1.
   * A worker still running after {@linkcode DRAIN_LIMIT_MS} is killed.
   */
  async drain(): Promise<number> {
    this.#draining = true;
    for (const slot of this.#slots) clearTimeout(slot.timer);
    const workers = this.#slots.flatMap((slot) => slot.current ? [slot.current] : []);
    workers.forEach((worker) => worker.kill("SIGTERM"));
    const limit = setTimeout(() => {
      this.#log(`Workers still running after ${DRAIN_LIMIT_MS / 1000} s: killing them`);
      this.kill();
    }, DRAIN_LIMIT_MS);
    const statuses = await Promise.all(workers.map((worker) => worker.ended));
    clearTimeout(limit);
    let code = 0;
    statuses.forEach((status, i) => {
      if (status.success || !workers[i].listening) return;
      this.#log(
        `Worker ${workers[i].index} (pid ${workers[i].pid}) stopped: ${describeEnd(status)}`,
      );
      code = 1;
    });
    return code;
  }

  /** Kills every worker at once (SIGKILL). */
  kill(): void {
    for (const slot of this.#slots) slot.current?.kill("SIGKILL");
  }
}

/**
 * Serves a configuration with `config.workers` processes until SIGINT or SIGTERM (see the module
 * doc). Prints the same start-up lines as one process (the ports once every worker listens),
 * then one line saying how many workers serve; returns 0 after a graceful stop of every worker,
 * 1 when one did not stop cleanly or on a second signal, 2 (after one line) when they cannot
 * start.
 *
 * @param config What to serve, with `workers` above 1 (never the memory backend).
 * @returns The exit code.
 */
export async function supervise(config: CliConfig): Promise<number> {
  const count = config.workers ?? 1;
  if (Deno.build.os !== "linux") {
    return fail(
      `Cannot start ${count} workers: processes share a port (SO_REUSEPORT, balanced by the ` +
        "kernel) on Linux only; run one worker",
    );
  }
  const command = workerCommand(count);
  if (typeof command === "string") return fail(command);
  const log = (line: string) => console.log(line);
  const tls = await startupLines(config, log);
  if (typeof tls === "number") return tls;
  const taken = probePorts(config);
  if (taken !== undefined) return fail(taken);

  const supervisor = new Supervisor(config, command, count);
  const stop = signals(log, () => supervisor.kill());
  let ports: Ports;
  try {
    ports = await supervisor.start();
  } catch (error) {
    stop.dispose();
    return fail((error as Error).message);
  }
  if (ports.http !== undefined) log(`Starting up the HTTP server on port ${ports.http}`);
  if (ports.grpc !== undefined) log(`Starting up the gRPC server on port ${ports.grpc}`);
  log(
    `${count} workers serve (pids ${supervisor.pids.join(", ")}), sharing the ports ` +
      "(SO_REUSEPORT); a worker that dies is started again",
  );
  const signal = await stop.received;
  log(`Received ${signal}: draining the ${count} workers (requests in flight finish)`);
  const code = await supervisor.drain();
  stop.dispose();
  log("Stopped");
  return code;
}

/**
 * Runs this process as worker `index` of a supervisor: reads the configuration from standard
 * input, then serves it until SIGTERM or the end of standard input.
 *
 * @param index The value of {@linkcode WORKER_VARIABLE}.
 * @returns The exit code of `serve()`, or 2 after one line when this is no supervisor's worker.
 */
export async function serveWorker(index: string): Promise<number> {
  const misuse = `${WORKER_VARIABLE} is set only by the supervisor of 'purple --workers': unset it`;
  if (!/^[1-9][0-9]*$/.test(index) || Deno.stdin.isTerminal()) return fail(misuse);
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) return fail(misuse);
    text += value;
  }
  let config: CliConfig;
  try {
    config = JSON.parse(text.slice(0, text.indexOf("\n"))).config;
  } catch {
    return fail(misuse);
  }
  const orphaned = (async () => {
    while (!(await reader.read()).done) { /* Nothing more is sent. */ }
  })();
  return await serve(config, { index: Number(index), orphaned });
}
