/**
 * What the HTTP and gRPC servers share: how they are started and what a running one offers.
 *
 * @module
 */

import type { Limits } from "../backends/limits.ts";

/** How to start a server. */
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
}

/** A server that is listening. */
export interface RunningServer {
  /** `"HTTP"` or `"gRPC"`, as the start-up line says it. */
  readonly protocol: "HTTP" | "gRPC";
  /** The port it really listens on. */
  readonly port: number;
  /** Stops accepting, lets requests in flight finish, then resolves. Does not close the backend. */
  shutdown(): Promise<void>;
}
