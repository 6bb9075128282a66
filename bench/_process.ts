// Child processes of the bench: servers (Purple, the baselines, redis-server) whose start-up
// lines are read for their ports, and one-shot tools (wrk, h2load, redis-benchmark) whose output
// is parsed. Private to the bench.

import { start } from "../tests/_process.ts";

/** A server running in another process. */
export interface Server {
  /** The process id. */
  readonly pid: number;
  /** What it is, for messages. */
  readonly name: string;
  /** Waits for a line matching `pattern` (already printed or to come) and returns its match. */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Everything it printed so far (stdout and stderr), for failure messages. */
  output(): string;
  /** Whether it has exited. */
  exited(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
}

/**
 * Starts a server process whose output is collected line by line, with the one spawner of the
 * tests and the bench (`tests/_process.ts`).
 */
export function spawnServer(
  name: string,
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Server {
  const program = start(command, args, { ...options, name });
  let stopping: Promise<Deno.CommandStatus> | undefined;
  return {
    pid: program.child.pid,
    name,
    line: (pattern, timeoutMs = 30_000) => program.line(pattern, { timeoutMs }),
    output: program.output,
    exited: program.ended,
    stop: (graceMs = 10_000) =>
      stopping ??= program.stop("SIGTERM", graceMs).then(() => program.child.status),
  };
}

/** The result of a one-shot command. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end and returns its output. */
export async function run(
  command: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<Ran> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Whether a command can be run (it answers `args`, such as `--version`). */
export async function available(command: string, args: string[] = ["--version"]): Promise<boolean> {
  try {
    await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output();
    return true;
  } catch {
    return false;
  }
}

/** A free TCP port on the loopback interface. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** The resident memory of a process, in bytes (Linux: `VmRSS` of `/proc/<pid>/status`). */
export async function residentBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const match = status.match(/^VmRSS:\s+(\d+) kB$/m);
  if (match === null) throw new Error(`Cannot read the resident memory of process ${pid}`);
  return Number(match[1]) * 1024;
}

/** The 1-minute load average (Linux), or `undefined` where it cannot be read. */
export async function loadAverage(): Promise<number | undefined> {
  try {
    return Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]);
  } catch {
    return undefined;
  }
}

/** Sleeps. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
