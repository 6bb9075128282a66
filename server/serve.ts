/**
 * The serve lifecycle of the `purple` command: open the configured backend, start the servers,
 * wait for SIGINT or SIGTERM, then drain the servers and close the backend. The configuration
 * comes from `config.ts`; `cli.ts` runs this.
 *
 * @module
 */

import { PurpleError, UnavailableError } from "@purple/protocol/errors";
import { type CheckedOperations, openBackend, resolveLayoutName } from "../backends/mod.ts";
import { startHttpServer } from "./http.ts";
import type { RunningServer, ServeOptions } from "./options.ts";
import { Metrics } from "./metrics.ts";
import { accessLines, isLoopback } from "./_auth.ts";
import { type LoadedTls, loadTls, TlsConfigError, tlsLines } from "./_tls.ts";
import { type BackendConfig, type CliConfig, VERSION } from "./config.ts";

/**
 * Prints the one line of a failure that is the user's or the environment's, not a bug, on
 * stderr: `purple: ` and the reason on one line.
 *
 * @param reason What failed and why.
 * @param code The exit code: 2 (the default) for a command that did not start, 1 for an export
 * or import that stopped.
 * @returns `code`.
 */
export function fail(reason: string, code: 1 | 2 = 2): number {
  console.error(`purple: ${reason.replace(/\s*\n\s*/g, " ")}`);
  return code;
}

/**
 * Whether an error is the operating system's (a port taken, a directory not writable, a file
 * not found, a broken pipe): one of `Deno.errors`.
 */
export function isSystemError(error: unknown): error is Error {
  return Object.values(Deno.errors).some((kind) => error instanceof kind);
}

/**
 * What a server binds, as a failure to bind names it: `127.0.0.1:8080 (HTTP)`, `[::1]:0 (gRPC)`.
 * @param hostname The address.
 * @param port The port.
 * @param protocol The protocol served there.
 * @returns The description.
 */
export function describeBinding(hostname: string, port: number, protocol: string): string {
  return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port} (${protocol})`;
}

/** Whether an error from binding a port is the environment's (port taken, bad address). */
export function isListenError(error: unknown): error is Error {
  return isSystemError(error) || error instanceof Error && /lookup address/.test(error.message);
}

/** The backend in words, for the start-up line and the exports' header (no password). */
export function describeBackend(config: BackendConfig): string {
  if (config.backend === "disk") return `disk backend in ${config.dataDir}`;
  if (config.backend === "redis") {
    const urls = config.redisUrl.split(",").map((text) => {
      const url = new URL(text.trim());
      if (url.password) url.password = "***";
      return url.href;
    });
    const redis = config.redis ?? {};
    const layout = resolveLayoutName(redis.redisLayout, redis.redisCluster === true);
    const parts = [
      redis.redisCluster
        ? `redis backend on the Redis Cluster at ${urls.join(",")}`
        : `redis backend at ${urls[0]}`,
      redis.redisCluster ? `${layout} layout (a cluster implies prefixed)` : `${layout} layout`,
    ];
    if (redis.redisPrefix) parts.push(`key prefix '${redis.redisPrefix}'`);
    if (redis.redisWaitReplicas) {
      parts.push(
        `writes wait for ${redis.redisWaitReplicas} replica(s) (${
          redis.redisWaitTimeoutMs ?? 500
        } ms)`,
      );
    }
    return parts.join(", ");
  }
  return "memory backend";
}

function describeHost(hostname: string): string {
  return isLoopback(hostname)
    ? `${hostname} (loopback only; --host 0.0.0.0 accepts other machines)`
    : `${hostname}`;
}

/**
 * How long after a SIGINT another SIGINT is the same Ctrl+C, in ms. A terminal sends SIGINT to
 * its whole foreground process group, and the launchers in that group forward it to their child
 * as well (`deno task`, `npx`, `npm run`): one Ctrl+C reaches Purple two or three times within a
 * few milliseconds. A person pressing Ctrl+C again to stop at once takes longer than this.
 */
export const SAME_CTRL_C_MS = 1_000;

/** What {@linkcode signals} gives: the first SIGINT or SIGTERM, as a promise and as a value. */
export interface Signals {
  /** Resolves with the first SIGINT or SIGTERM (`"SIGINT"`, `"SIGTERM"`). */
  received: Promise<string>;
  /** The first SIGINT or SIGTERM received so far, if any: for a loop that stops between steps. */
  first(): string | undefined;
  /** Stops listening (a signal then has its default effect). */
  dispose(): void;
}

/**
 * Listens for SIGINT and SIGTERM, for a command that stops gracefully on the first (serving,
 * `export`, `import`). A second one exits at once with 1 (after logging so, and after `onAgain`,
 * which the supervisor of `--workers` uses to kill its workers), except a SIGINT within
 * {@linkcode SAME_CTRL_C_MS} of a first SIGINT (the same Ctrl+C, delivered again by a launcher).
 *
 * @param log Where the line of a second signal goes (stderr when stdout carries data).
 * @param onAgain Runs before a second signal exits.
 * @returns The first signal, and how to stop listening.
 *
 * @example
 * ```ts ignore
 * const stop = signals((line) => console.error(line));
 * for (const step of steps) {
 *   await step();
 *   if (stop.first() !== undefined) break;
 * }
 * stop.dispose();
 * ```
 */
export function signals(log: (line: string) => void, onAgain: () => void = () => {}): Signals {
  const listeners: Array<[Deno.Signal, () => void]> = [];
  let first: { signal: Deno.Signal; at: number } | undefined;
  const received = new Promise<string>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const listener = () => {
        const at = performance.now();
        if (first === undefined) {
          first = { signal, at };
          return resolve(signal);
        }
        if (signal === "SIGINT" && first.signal === "SIGINT" && at - first.at < SAME_CTRL_C_MS) {
          return; // The same Ctrl+C.
        }
        log(`Received ${signal} again: exiting without waiting`);
        onAgain();
        Deno.exit(1);
      };
      try {
        Deno.addSignalListener(signal, listener);
        listeners.push([signal, listener]);
      } catch {
        // Windows cannot listen for SIGTERM; SIGINT (Ctrl+C) still works.
      }
    }
  });
  return {
    received,
    first: () => first?.signal,
    dispose: () => listeners.forEach(([signal, fn]) => Deno.removeSignalListener(signal, fn)),
  };
}

/** The waits between attempts to reach a Redis at start, in ms; the last one repeats. */
export const START_RETRY_DELAYS_MS: readonly number[] = [250, 500, 1_000, 2_000, 4_000, 5_000];

/**
 * Opens the backend, and while it answers `UnavailableError` (a Redis that cannot be reached
 * yet: one started beside Purple, a fresh `kubectl apply`), tries again after the waits of
 * {@linkcode START_RETRY_DELAYS_MS}, for at most `waitMs` in all, printing one line per retry.
 * Past that, the last error is thrown with how long Purple waited.
 */
async function retryUnavailable<T>(
  open: () => Promise<T>,
  waitMs: number,
  log: (line: string) => void,
): Promise<T> {
  const start = Date.now();
  for (let attempt = 0;; attempt++) {
    try {
      return await open();
    } catch (error) {
      if (!(error instanceof UnavailableError)) throw error;
      const waited = Date.now() - start;
      const delay = Math.min(
        START_RETRY_DELAYS_MS[Math.min(attempt, START_RETRY_DELAYS_MS.length - 1)],
        waitMs - waited,
      );
      if (delay <= 0) {
        if (waitMs === 0) throw error;
        throw new UnavailableError(
          `${error.message} (still unreachable after ${seconds(waitMs)}; ` +
            "--redis-start-wait-ms sets how long Purple retries at start)",
          { cause: error },
        );
      }
      log(
        `${error.message}: retrying in ${seconds(delay)} (waited ${seconds(waited)} of ${
          seconds(waitMs)
        })`,
      );
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** A duration for people: `0.3 s`, `1.5 s`, `30 s` (tenths, no trailing `.0`). */
export function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** The configured TLS files, loaded (`undefined`: no TLS), or the exit code of a failure. */
async function tlsOf(config: CliConfig): Promise<LoadedTls | undefined | number> {
  try {
    return config.tls && await loadTls(config.tls.certFile, config.tls.keyFile);
  } catch (error) {
    if (error instanceof TlsConfigError) return fail(error.message);
    throw error;
  }
}

/**
 * Opens the configured backend, for serving, `export` or `import`. A failure that is the user's
 * or the environment's (Deno KV missing for the disk backend, a Redis that cannot be reached, a
 * directory that cannot be written) prints one line and gives exit code 2; anything else is a
 * bug and is thrown.
 *
 * @param config The backend and its limits.
 * @param retry For serving: how long to retry a Redis that cannot be reached yet
 * (`--redis-start-wait-ms`), and where to say so. Without it, the first failure counts.
 * @returns The backend, or the exit code.
 */
export async function openConfiguredBackend(
  config: BackendConfig,
  retry?: { waitMs: number; log: (line: string) => void },
): Promise<CheckedOperations | number> {
  if (config.backend === "disk" && typeof Deno.openKv !== "function") {
    return fail(
      "Cannot open the disk backend: Deno KV is unavailable; run Deno with --unstable-kv",
    );
  }
  try {
    const open = () =>
      openBackend({
        kind: config.backend,
        dataDir: config.dataDir,
        redisUrl: config.redisUrl,
        ...config.redis,
        limits: config.limits,
      });
    return config.backend === "redis" && retry
      ? await retryUnavailable(open, retry.waitMs, retry.log)
      : await open();
  } catch (error) {
    if (error instanceof PurpleError) return fail(error.message);
    if (isSystemError(error)) {
      return fail(`Cannot open the ${config.backend} backend: ${error.message}`);
    }
    throw error;
  }
}

/**
 * Prints the lines that start serving a configuration (what it serves, TLS, access) and loads
 * its TLS files. Returns the TLS material, or an exit code after a one-line failure.
 */
export async function startupLines(
  config: CliConfig,
  log: (line: string) => void,
): Promise<LoadedTls | undefined | number> {
  log(`Purple ${VERSION}, ${describeBackend(config)}, binding ${describeHost(config.hostname)}`);
  const tls = await tlsOf(config);
  if (typeof tls === "number") return tls;
  if (tls && config.tls) tlsLines(tls, config.tls.certFile).forEach((line) => log(line));
  accessLines(config.hostname, config.auth, tls !== undefined).forEach((line) => log(line));
  if (config.corsOrigins !== undefined && config.http !== undefined) {
    const who = config.corsOrigins.includes("*") ? "any origin" : config.corsOrigins.join(", ");
    log(`CORS: web pages of ${who} may call the HTTP API`);
  }
  return tls;
}

/**
 * How `serve()` runs as one worker of `purple --workers` (`_workers.ts`): its supervisor has
 * printed the start-up lines, and the servers share their ports with the other workers.
 */
export interface WorkerRole {
  /** The worker's number, from 1. */
  index: number;
  /** Resolves when the supervisor is gone (its pipe closed): then stop as on SIGTERM. */
  orphaned: Promise<void>;
}

/**
 * Serves a configuration until SIGINT or SIGTERM: prints the start-up lines, opens the backend,
 * starts the servers, and on the first signal lets requests in flight finish, closes the backend
 * and returns 0. A second signal exits at once with 1, but for a SIGINT within
 * {@linkcode SAME_CTRL_C_MS} of the first: the same Ctrl+C, which a launcher such as `deno task`
 * delivers again. A failure that is the user's or the environment's (a TLS file, a backend that cannot be opened, a port that cannot be bound) prints
 * one line and returns 2; anything else is a bug and is thrown.
 *
 * @param config What to serve, from `parseCli()`.
 * @param worker Set when serving as one worker of `purple --workers`.
 * @returns The exit code.
 */
export async function serve(config: CliConfig, worker?: WorkerRole): Promise<number> {
  const log = (line: string) => console.log(line);
  // A worker's supervisor printed the start-up lines already.
  const tls = worker === undefined ? await startupLines(config, log) : await tlsOf(config);
  if (typeof tls === "number") return tls;
  const ops = await openConfiguredBackend(config, { waitMs: config.redisStartWaitMs, log });
  if (typeof ops === "number") return ops;
  const stop = signals(log);
  const servers: RunningServer[] = [];
  const metrics = new Metrics();
  const options = (port: number): ServeOptions => ({
    hostname: config.hostname,
    port,
    limits: config.limits,
    debug: config.debug,
    log,
    auth: config.auth,
    tls: tls && { cert: tls.cert, key: tls.key },
    reusePort: worker !== undefined,
    metrics,
    corsOrigins: config.corsOrigins,
  });
  // What is being bound, for the one line of a failure.
  let binding = "";
  try {
    if (config.http !== undefined) {
      binding = describeBinding(config.hostname, config.http, "HTTP");
      servers.push(await startHttpServer(ops, options(config.http)));
    }
    if (config.grpc !== undefined) {
      binding = describeBinding(config.hostname, config.grpc, "gRPC");
      const { startGrpcServer } = await import("./grpc.ts");
      servers.push(await startGrpcServer(ops, options(config.grpc)));
    }
  } catch (error) {
    stop.dispose();
    await Promise.all(servers.map((server) => server.shutdown()));
    await ops.close();
    if (isListenError(error) || error instanceof PurpleError) {
      // The gRPC server's errors end with the address and `(gRPC)`, said here already.
      const reason = error.message.replace(/ \S+ \(gRPC\)$/, "");
      return fail(`Cannot listen on ${binding}: ${reason}`);
    }
    throw error;
  }
  const reason = await Promise.race([
    stop.received.then((signal) => `Received ${signal}`),
    worker?.orphaned.then(() => "The supervisor is gone") ?? new Promise<never>(() => {}),
  ]);
  log(`${reason}: finishing requests in flight, then closing the ${config.backend} backend`);
  await Promise.all(servers.map((server) => server.shutdown()));
  await ops.close();
  stop.dispose();
  log("Stopped");
  return 0;
}
