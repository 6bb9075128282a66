/**
 * Purple: a cache with TTL, counters, flags, key/value and sets that many processes share,
 * served over HTTP and gRPC, stored in memory, on disk (Deno KV) or in Redis.
 *
 * Run as a command, this module is `purple`:
 *
 * ```sh
 * deno run -A jsr:@purple/server            # HTTP on 8080, gRPC on 8081, disk backend in ./data
 * deno run -A jsr:@purple/server http --backend memory --port 3000
 * ```
 *
 * The disk backend is Deno KV, which takes `--unstable-kv`: without it, Purple runs itself
 * once more with it (and says so in one line); add it to skip that step.
 *
 * Imported, it gives the pieces to embed Purple in a program: the servers, the command line,
 * and (from `@purple/server/backends`) the backends.
 *
 * @example Serving the memory backend over HTTP on a free port
 * ```ts
 * import { startHttpServer } from "@purple/server";
 * import { DEFAULT_LIMITS, openBackend } from "@purple/server/backends";
 *
 * const ops = await openBackend({ kind: "memory" });
 * const server = await startHttpServer(ops, {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   limits: DEFAULT_LIMITS,
 * });
 * const answer = await fetch(`http://127.0.0.1:${server.port}/sets/todos?item=shopping`, {
 *   method: "PUT",
 * });
 * console.log(await answer.json()); // { set: "todos", items: ["shopping"] }
 * await server.shutdown();
 * await ops.close();
 * ```
 *
 * @module
 */

import { main } from "./server/cli.ts";
import { relaunchWithKv } from "./server/_relaunch.ts";

export { main } from "./server/cli.ts";
export {
  type BackendConfig,
  type CliCommand,
  type CliConfig,
  DEFAULT_GRPC_PORT,
  DEFAULT_HOST,
  DEFAULT_HTTP_PORT,
  type ExportConfig,
  HELP,
  type ImportConfig,
  parseCli,
  UsageError,
  VERSION,
} from "./server/config.ts";
export {
  createHttpApp,
  HTTP_SHUTDOWN_GRACE_MS,
  type HttpApp,
  type HttpAppOptions,
  jsonBodyLimit,
  startHttpServer,
} from "./server/http.ts";
export { startGrpcServer } from "./server/grpc.ts";
export { Metrics } from "./server/metrics.ts";
export type { AccessTokens, RunningServer, ServeOptions } from "./server/options.ts";
export type {
  BatchableName,
  BatchOperation,
  BatchOptions,
  BatchOutcome,
  BatchOutcomes,
  CacheChange,
  CounterAmount,
  CounterChange,
  FlagChange,
  KeyPage,
  KeyService,
  KvChange,
  KvEntry,
  KvValue,
  KvWriteOptions,
  ListOptions,
  Operations,
  SetChange,
  WatchChange,
  WatchKeys,
  WatchOptions,
} from "@purple/protocol";

if (import.meta.main) Deno.exit(await relaunchWithKv(Deno.args) ?? await main(Deno.args));
