/**
 * Test harness: runs the real `purple` process (`deno run -A --unstable-kv mod.ts ...`) from the
 * repository root with the one spawner of `_process.ts`, learns its ports from the start-up
 * lines, and stops it with a signal.
 *
 * @module
 */

import { type Program, ROOT, start } from "./_process.ts";

const decoder = new TextDecoder();

/** A running `purple` process. */
export interface Purple {
  child: Deno.ChildProcess;
  /** The process, as the harness runs it. */
  program: Program;
  /** Every stdout line so far. */
  lines: string[];
  httpPort?: number;
  grpcPort?: number;
  /** Waits for a stdout line matching `pattern`. */
  waitFor(pattern: RegExp, ms?: number): Promise<string>;
  /** Sends a signal and returns the exit code and stderr. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stderr: string }>;
  /** Waits for the process to end on its own; returns the exit code and stderr. */
  exited(): Promise<{ code: number; stderr: string }>;
}

/** The arguments of `deno` that run purple with `args`. */
export function purpleArgs(args: string[]): string[] {
  return ["run", "-A", "--unstable-kv", `${ROOT}/mod.ts`, ...args];
}

/** Runs purple to its end (for the commands that do not serve). */
export async function runPurple(args: string[], env: Record<string, string> = {}) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: purpleArgs(args),
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: withoutDenoLockWait(decoder.decode(stderr)),
  };
}

/**
 * Drops the line Deno itself prints while another Deno process of the suite holds the lock of
 * `node_modules` (tests run in parallel): it is the runtime's, not Purple's.
 */
function withoutDenoLockWait(text: string): string {
  return text.replace(/^Blocking waiting for file lock on node_modules directory\n/gm, "");
}

/** Starts purple and waits for its start-up lines. */
export async function startPurple(
  args: string[],
  env: Record<string, string> = {},
): Promise<Purple> {
  const program = start(Deno.execPath(), purpleArgs(args), {
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    name: "purple",
  });
  const stderr = () => withoutDenoLockWait(program.stderr.map((line) => `${line}\n`).join(""));
  const purple: Purple = {
    child: program.child,
    program,
    lines: program.stdout,
    waitFor: async (pattern, ms = 15_000) =>
      (await program.line(pattern, { timeoutMs: ms, stream: "stdout" })).input!,
    stop: async (signal = "SIGTERM") => ({ code: await program.stop(signal), stderr: stderr() }),
    exited: async () => ({ code: await program.exit(), stderr: stderr() }),
  };
  const port = (line: string) => Number(/on port (\d+)$/.exec(line)![1]);
  try {
    if (args[0] !== "grpc") {
      purple.httpPort = port(await purple.waitFor(/^Starting up the HTTP server on port \d+$/));
    }
    if (args[0] !== "http") {
      purple.grpcPort = port(await purple.waitFor(/^Starting up the gRPC server on port \d+$/));
    }
  } catch (error) {
    await purple.stop("SIGKILL");
    throw error;
  }
  return purple;
}
