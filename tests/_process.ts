/**
 * Test harness for programs run as their own process (`purple`, the TODO example, a compiled
 * binary): start one, wait for a line it prints, stop it with a signal and read its exit code.
 *
 * @module
 */

/** A running program and what it printed so far. */
export interface Program {
  /** The process. */
  child: Deno.ChildProcess;
  /** Every line printed so far, stdout and stderr interleaved as they arrived. */
  lines: string[];
  /**
   * Waits for a line matching `pattern` (already printed or to come) and returns its match.
   * Throws, with everything printed, when the program ends or 30 s pass without one.
   */
  line(pattern: RegExp): Promise<RegExpMatchArray>;
  /** Sends `signal` (SIGTERM by default) and returns the exit code once all output is read. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** Waits for the program to end by itself and returns its exit code. */
  exit(): Promise<number>;
}

/** Options of {@linkcode start}. */
export interface StartOptions {
  /** The working directory. */
  cwd?: string | URL;
  /** Variables to add to (or, with `clearEnv`, to use instead of) the environment. */
  env?: Record<string, string>;
  /** Start from an empty environment (PATH and HOME are kept). */
  clearEnv?: boolean;
}

/** Starts `command` with `args`, reading its stdout and stderr line by line. */
export function start(command: string, args: string[], options: StartOptions = {}): Program {
  const env = options.clearEnv
    ? { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "", ...options.env }
    : options.env;
  const child = new Deno.Command(command, {
    args,
    cwd: options.cwd,
    env,
    clearEnv: options.clearEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let ended = false;
  const waiters = new Set<() => void>();
  const wakeAll = () => waiters.forEach((wake) => wake());
  const read = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + text).split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
      wakeAll();
    }
    if (rest !== "") lines.push(rest);
  };
  const done = Promise.all([read(child.stdout), read(child.stderr)]).then(() => {
    ended = true;
    wakeAll();
  });

  const line = async (pattern: RegExp) => {
    const deadline = Date.now() + 30_000;
    while (true) {
      for (const text of lines) {
        const match = text.match(pattern);
        if (match) return match;
      }
      if (ended || Date.now() > deadline) {
        throw new Error(
          `${command} never printed ${pattern}; it printed:\n${lines.join("\n")}`,
        );
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, 200);
        waiters.add(wake);
      });
    }
  };
  const exit = async () => {
    const { code } = await child.status;
    await done;
    return code;
  };
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch {
      // It already ended; its exit code tells how.
    }
    return await exit();
  };
  return { child, lines, line, stop, exit };
}

/** The repository's root directory, as a path. */
export const ROOT: string = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** Runs a command to its end and returns its exit code and output. */
export async function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(command, {
    args,
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
