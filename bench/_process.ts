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

/** The CPU time of a process and its descendants so far, in seconds (Linux `/proc`). */
export async function treeCpuSeconds(pid: number): Promise<number> {
  let ticks = 0;
  const pending = [pid];
  while (pending.length > 0) {
    const at = pending.pop()!;
    try {
      const stat = await Deno.readTextFile(`/proc/${at}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
      for (const task of Deno.readDirSync(`/proc/${at}/task`)) {
        const children = await Deno.readTextFile(`/proc/${at}/task/${task.name}/children`);
        pending.push(...children.trim().split(/\s+/).filter(Boolean).map(Number));
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return ticks / 100; // USER_HZ
}

/** The machine's busy and total CPU time so far, in seconds of all cores (`/proc/stat`). */
export async function machineCpuSeconds(): Promise<{ busy: number; total: number }> {
  const line = (await Deno.readTextFile("/proc/stat")).split("\n")[0];
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((sum, value) => sum + value, 0);
  const idle = values[3] + (values[4] ?? 0); // idle, iowait
  return { busy: (total - idle) / 100, total: total / 100 };
}
