/**
 * What the HTTP and gRPC servers share: how they are started and what a running one offers.
 *
 * @module
 */

import type { Limits } from "../backends/limits.ts";
import type { Metrics } from "./metrics.ts";

/**
 * The access tokens a server accepts: `full` tokens may call every operation, `read` tokens only
 * the operations that read. Each token is 16 or more visible ASCII characters, without `,`.
 *
 * @example
 * ```ts
 * import type { AccessTokens } from "@purple/server";
 *
 * const tokens: AccessTokens = { full: [Deno.env.get("PURPLE_TOKEN") ?? ""], read: [] };
 * console.log(tokens.read.length); // 0
 * ```
 */
export interface AccessTokens {
  /** Tokens that may call every operation. */
  readonly full: readonly string[];
  /** Tokens that may call only the operations that read. */
  readonly read: readonly string[];
}

/**
 * How to start a server.
 *
 * @example
 * ```ts
 * import { type ServeOptions, startHttpServer } from "@purple/server";
 * import { DEFAULT_LIMITS, openBackend } from "@purple/server/backends";
 *
 * const options: ServeOptions = { hostname: "127.0.0.1", port: 0, limits: DEFAULT_LIMITS };
 * const ops = await openBackend({ kind: "memory" });
 * const server = await startHttpServer(ops, options);
 * await server.shutdown();
 * await ops.close();
 * ```
 */
export interface ServeOptions {
  /** The address to bind, such as `127.0.0.1` or `0.0.0.0`. */
  hostname: string;
  /** The port; 0 picks any free port (read the real one from {@linkcode RunningServer.port}). */
  port: number;
  /** The limits the backend was opened with (request bodies are capped from them). */
  limits: Limits;
  /** Log one line per request. */
  debug?: boolean;
  /** Where log lines go. Default `console.log`. */
  log?: (line: string) => void;
  /**
   * Require an access token (`Authorization: Bearer <token>`, or the gRPC `authorization`
   * metadata) of these. Absent: no token needed. `/ping` and `grpc.health.v1.Health` never need
   * one.
   */
  auth?: AccessTokens;
  /** Serve over TLS: the certificate (and chain) and its unencrypted private key, PEM text. */
  tls?: { cert: string; key: string };
  /**
   * Share the port with other processes that set this too (`SO_REUSEPORT`, Linux: the kernel
   * spreads new connections over them), as `purple --workers` does. Over HTTP it takes Deno's
   * `--unstable-net`.
   */
  reusePort?: boolean;
  /**
   * Count requests (by operation and outcome, with their time), refusals and backend failures
   * into these metrics; give the same object to the HTTP and gRPC servers of a process. The HTTP
   * server then answers `GET /metrics` (behind the token when tokens are set; a read-only token
   * may read it).
   */
  metrics?: Metrics;
  /**
   * HTTP: let web pages of these origins call the API (CORS: `Access-Control-Allow-Origin`,
   * preflight requests answered before the token check); `*` lets any page. Absent: no CORS
   * headers, and browsers keep pages of other origins out.
   */
  corsOrigins?: readonly string[];
  /** HTTP: how often an open watch stream sends a heartbeat comment, in ms. Default 15000. */
  heartbeatMs?: number;
}

/**
 * A server that is listening.
 *
 * @example
 * ```ts
 * import { type RunningServer, startGrpcServer } from "@purple/server";
 * import { DEFAULT_LIMITS, openBackend } from "@purple/server/backends";
 *
 * const ops = await openBackend({ kind: "memory" });
 * const server: RunningServer = await startGrpcServer(ops, {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   limits: DEFAULT_LIMITS,
 * });
 * console.log(server.protocol, server.port > 0); // "gRPC" true
 * await server.shutdown();
 * await ops.close();
 * ```
 */
export interface RunningServer {
  /** `"HTTP"` or `"gRPC"`, as the start-up line says it. */
  readonly protocol: "HTTP" | "gRPC";
  /** The port it really listens on. */
  readonly port: number;
  /** Stops accepting, lets requests in flight finish, then resolves. Does not close the backend. */
  shutdown(): Promise<void>;
}
