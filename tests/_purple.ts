/**
 * Test harness: runs the real `purple` process (`deno run -A --unstable-kv mod.ts ...`) from the
 * repository root, learns its ports from the start-up lines, and stops it with a signal.
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname;
const decoder = new TextDecoder();

/** A running `purple` process. */
export interface Purple {
  child: Deno.ChildProcess;
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

/** Spawns purple with piped stdout and stderr. */
export function spawnPurple(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", "mod.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Runs purple to its end (for the commands that do not serve). */
export async function runPurple(args: string[], env: Record<string, string> = {}) {
  const { code, stdout, stderr } = await spawnPurple(args, env).output();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Starts purple and waits for its start-up lines. */
export async function startPurple(
  args: string[],
  env: Record<string, string> = {},
): Promise<Purple> {
  const child = spawnPurple(args, env);
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const stderr = new Response(child.stderr).text();
  (async () => {
    let rest = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + text).split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
      waiters.forEach((wake) => wake());
    }
  })();
  let exited = false;
  child.status.then(() => {
    exited = true;
    waiters.forEach((wake) => wake());
  });
  const waitFor = async (pattern: RegExp, ms = 15_000) => {
    const deadline = Date.now() + ms;
    while (true) {
      const line = lines.find((line) => pattern.test(line));
      if (line !== undefined) return line;
      if (exited) {
        throw new Error(`purple exited before ${pattern}: ${lines.join("\n")} ${await stderr}`);
      }
      if (Date.now() > deadline) throw new Error(`no line ${pattern} in ${lines.join("\n")}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          waiters.delete(wake);
          resolve();
        };
        waiters.add(wake);
        setTimeout(wake, 50);
      });
    }
  };
  const purple: Purple = {
    child,
    lines,
    waitFor,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      const { code } = await child.status;
      return { code, stderr: await stderr };
    },
    async exited() {
      const { code } = await child.status;
      return { code, stderr: await stderr };
    },
  };
  const port = (line: string) => Number(/on port (\d+)$/.exec(line)![1]);
  try {
    if (args[0] !== "grpc") {
      purple.httpPort = port(await waitFor(/^Starting up the HTTP server on port \d+$/));
    }
    if (args[0] !== "http") {
      purple.grpcPort = port(await waitFor(/^Starting up the gRPC server on port \d+$/));
    }
  } catch (error) {
    await purple.stop("SIGKILL");
    throw error;
  }
  return purple;
}
