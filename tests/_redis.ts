/**
 * Test harness: each Redis test owns its `redis-server`, started on a free loopback port and
 * stopped afterwards. A Redis this harness did not start is never touched.
 *
 * Without `redis-server` on PATH the Redis tests are skipped with one loud line, except under
 * `CI=true`, where loading this module fails.
 *
 * @module
 */

/** A `redis-server` process owned by a test. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** The loopback port it listens on (the same after a restart). */
  readonly port: number;
  /** Stops the process (SIGTERM) and waits for it. Data is not saved. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after `stop()`), empty. */
  start(): Promise<void>;
  /** Freezes the process (SIGSTOP): it keeps its connections open but answers nothing. */
  pause(): void;
  /** Lets a paused process run again (SIGCONT). */
  resume(): void;
}

async function findProblem(): Promise<string | undefined> {
  try {
    const { success } = await new Deno.Command("redis-server", { args: ["--version"] }).output();
    return success ? undefined : "`redis-server --version` failed";
  } catch (error) {
    return error instanceof Deno.errors.NotFound
      ? "redis-server is not on PATH (Debian: apt-get install -y redis-server)"
      : `redis-server cannot run: ${error}`;
  }
}

/** Why Redis tests cannot run here, or `undefined` when they can. */
export const REDIS_MISSING: string | undefined = await findProblem();

if (REDIS_MISSING !== undefined) {
  if (Deno.env.get("CI") === "true") {
    throw new Error(`Redis tests must run in CI, but ${REDIS_MISSING}`);
  }
  console.error(
    `\n!!! SKIPPING REDIS TESTS: ${REDIS_MISSING}. Under CI=true this is a failure. !!!\n`,
  );
}

/** Finds a loopback port nobody listens on right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function waitForPort(port: number, child: Deno.ChildProcess, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  let exited = false;
  child.status.then(() => exited = true);
  while (Date.now() < deadline) {
    if (exited) throw new Error(`redis-server on port ${port} exited at start-up`);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  throw new Error(`redis-server did not listen on port ${port} within ${ms} ms`);
}

/**
 * Starts a private `redis-server` on a free loopback port, without persistence.
 *
 * @param extraArgs More `redis-server` arguments (such as a TLS port and its certificate).
 * @returns The running server; call `stop()` when done.
 */
export async function startRedis(extraArgs: string[] = []): Promise<RedisServer> {
  const port = freePort();
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--loglevel",
        "warning",
        ...extraArgs,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForPort(port, child);
  };
  const signal = (name: Deno.Signal) => {
    try {
      child?.kill(name);
    } catch { /* already gone */ }
  };
  const stop = async () => {
    if (child === undefined) return;
    const running = child;
    signal("SIGTERM");
    signal("SIGCONT"); // a paused process handles SIGTERM only once it runs
    child = undefined;
    await running.status;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop,
    pause: () => signal("SIGSTOP"),
    resume: () => signal("SIGCONT"),
  };
}
