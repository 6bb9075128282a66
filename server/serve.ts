/**
 * The serve lifecycle of the `purple` command: open the configured backend, start the servers,
 * wait for SIGINT or SIGTERM, then drain the servers and close the backend. The configuration
 * comes from `config.ts`; `cli.ts` runs this.
 *
 * @module
 */

import { PurpleError } from "@purple/protocol/errors";
import { openBackend, resolveLayoutName } from "../backends/mod.ts";
import { startHttpServer } from "./http.ts";
import type { RunningServer, ServeOptions } from "./options.ts";
import { accessLines, isLoopback } from "./_auth.ts";
import { type LoadedTls, loadTls, TlsConfigError, tlsLines } from "./_tls.ts";
import { type BackendConfig, type CliConfig, VERSION } from "./config.ts";

/** Prints the one line of a failure that is the user's or the environment's, not a bug. */
export function fail(reason: string): number {
  console.error(`purple: ${reason.replace(/\s*\n\s*/g, " ")}`);
  return 2;
}

/** Whether an error is the operating system's (a port taken, a directory not writable). */
function isSystemError(error: unknown): error is Error {
  return Object.values(Deno.errors).some((kind) => error instanceof kind);
}

/** Whether an error from binding a port is the environment's (port taken, bad address). */
function isListenError(error: unknown): error is Error {
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

/** Resolves with the first SIGINT or SIGTERM; a second one exits at once. */
function signals(log: (line: string) => void): { received: Promise<string>; dispose(): void } {
  const listeners: Array<[Deno.Signal, () => void]> = [];
  let first = true;
  const received = new Promise<string>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const listener = () => {
        if (!first) {
          log(`Received ${signal} again: exiting without waiting`);
          Deno.exit(1);
        }
        first = false;
        resolve(signal);
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
    dispose: () => listeners.forEach(([signal, fn]) => Deno.removeSignalListener(signal, fn)),
  };
}

/**
 * Serves a configuration until SIGINT or SIGTERM: prints the start-up lines, opens the backend,
 * starts the servers, and on the first signal lets requests in flight finish, closes the backend
 * and returns 0 (a second signal exits at once with 1). A failure that is the user's or the
 * environment's (a TLS file, a backend that cannot be opened, a port that cannot be bound) prints
 * one line and returns 2; anything else is a bug and is thrown.
 *
 * @param config What to serve, from `parseCli()`.
 * @returns The exit code.
 */
export async function serve(config: CliConfig): Promise<number> {
  const log = (line: string) => console.log(line);
  log(`Purple ${VERSION}, ${describeBackend(config)}, binding ${describeHost(config.hostname)}`);
  let tls: LoadedTls | undefined;
  try {
    tls = config.tls && await loadTls(config.tls.certFile, config.tls.keyFile);
  } catch (error) {
    if (error instanceof TlsConfigError) return fail(error.message);
    throw error;
  }
  if (tls && config.tls) tlsLines(tls, config.tls.certFile).forEach((line) => log(line));
  accessLines(config.hostname, config.auth, tls !== undefined).forEach((line) => log(line));
  if (config.backend === "disk" && typeof Deno.openKv !== "function") {
    return fail(
      "Cannot open the disk backend: Deno KV is unavailable; run Deno with --unstable-kv",
    );
  }
  let ops;
  try {
    ops = await openBackend({
      kind: config.backend,
      dataDir: config.dataDir,
      redisUrl: config.redisUrl,
      ...config.redis,
      limits: config.limits,
    });
  } catch (error) {
    if (error instanceof PurpleError) return fail(error.message);
    if (isSystemError(error)) {
      return fail(`Cannot open the ${config.backend} backend: ${error.message}`);
    }
    throw error;
  }
  const stop = signals(log);
  const servers: RunningServer[] = [];
  const options = (port: number): ServeOptions => ({
    hostname: config.hostname,
    port,
    limits: config.limits,
    debug: config.debug,
    log,
    auth: config.auth,
    tls: tls && { cert: tls.cert, key: tls.key },
  });
  try {
    if (config.http !== undefined) {
      servers.push(await startHttpServer(ops, options(config.http)));
    }
    if (config.grpc !== undefined) {
      const { startGrpcServer } = await import("./grpc.ts");
      servers.push(await startGrpcServer(ops, options(config.grpc)));
    }
  } catch (error) {
    stop.dispose();
    await Promise.all(servers.map((server) => server.shutdown()));
    await ops.close();
    if (isListenError(error) || error instanceof PurpleError) {
      return fail(`Cannot listen on ${config.hostname}: ${error.message}`);
    }
    throw error;
  }
  const signal = await stop.received;
  log(
    `Received ${signal}: finishing requests in flight, then closing the ${config.backend} backend`,
  );
  await Promise.all(servers.map((server) => server.shutdown()));
  await ops.close();
  stop.dispose();
  log("Stopped");
  return 0;
}
