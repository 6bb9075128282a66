/**
 * The limits both servers enforce beyond input sizes (which the checked backend enforces):
 * how many requests run at once, how long a backend operation may take, and how long a client
 * may take to send its request. Each breach is a typed error, answered through the one status
 * table of `@purple/client/errors`:
 *
 * | breach                                  | error                  | HTTP | gRPC               |
 * | --------------------------------------- | ---------------------- | ---- | ------------------ |
 * | more than `maxConcurrentRequests`       | `UnavailableError`     | 503  | `UNAVAILABLE`      |
 * | a backend operation over `backendTimeoutMs` | `UnavailableError` | 503  | `UNAVAILABLE`      |
 * | a request body over `bodyTimeoutMs`     | `InvalidArgumentError` | 400  | `INVALID_ARGUMENT` |
 *
 * This module holds the HTTP side and what both share; `_grpc_limits.ts` the gRPC interceptor,
 * `_http_body.ts` the HTTP body reader, and `_deadlines.ts` the one timer both time limits use.
 * A busy server refuses at once rather than queueing (a queue only adds latency to a server
 * that is already behind, and hides the overload from the client); health checks (`GET
 * /ping`, `grpc.health.v1.Health`) are never refused, nor counted against the limit by gRPC.
 *
 * @module
 */

import {
  isStreaming,
  OPERATION_NAMES,
  type OperationName,
  OPERATIONS,
  type Operations,
} from "@purple/protocol";
import { HTTP_STATUS, UnavailableError } from "@purple/protocol/errors";
import { quote } from "@purple/protocol/text";
import type { Limits } from "../backends/limits.ts";
import type { CheckedOperations } from "../backends/checked.ts";
import type { Deadlines } from "./_deadlines.ts";
import { rawPath } from "./_http_input.ts";

/**
 * Wraps operations so that each one that takes longer than `timeoutMs` rejects with
 * `UnavailableError` (`Cannot <action> '<key>': the backend did not answer within N ms`, the
 * action from the operation table). The operation itself is not cancelled (no backend can take
 * back a write in flight): a write that times out may still be applied; its late result or
 * error is dropped. Operations whose backend says they settle at once (`settlesAtOnce`, the
 * memory backend) are returned as they are: no timer could fire before they settle. A streaming
 * operation (`watch`) is not limited: it lasts as long as its caller keeps it.
 *
 * @param ops The operations (a checked backend).
 * @param timeoutMs The longest an operation may take, in milliseconds.
 * @param deadlines The server's deadlines, which keep the time.
 * @param onTimeout Told of each operation that timed out (the metrics count them).
 * @returns The same operations, each within the time limit; `close()` is not limited.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS, openBackend } from "@purple/server/backends";
 * import { serverDeadlines } from "./_deadlines.ts";
 * import { withBackendTimeout } from "./_limits.ts";
 *
 * const backend = await openBackend({ kind: "memory" });
 * const ops = withBackendTimeout(backend, 5_000, serverDeadlines(DEFAULT_LIMITS));
 * await ops.flagSet("beta", true);
 * await ops.close();
 * ```
 */
export function withBackendTimeout(
  ops: Operations,
  timeoutMs: number,
  deadlines: Deadlines,
  onTimeout?: (operation: OperationName) => void,
): Operations {
  if ((ops as Partial<CheckedOperations>).settlesAtOnce === true) return ops;
  const timed: Record<string, unknown> = { close: () => ops.close() };
  for (const name of OPERATION_NAMES) {
    const operation = (ops[name] as (...args: unknown[]) => Promise<unknown>).bind(ops);
    if (isStreaming(name)) {
      timed[name] = operation;
      continue;
    }
    const { action } = OPERATIONS[name];
    timed[name] = (...args: unknown[]) =>
      deadlines.within(operation(...args), timeoutMs, () => {
        onTimeout?.(name);
        const what = typeof args[0] === "string" ? `${action} ${quote(args[0])}` : action;
        return new UnavailableError(
          `Cannot ${what}: the backend did not answer within ${timeoutMs} ms`,
        );
      });
  }
  return timed as unknown as Operations;
}

/**
 * The message of a request refused because the server is busy.
 *
 * @param limit The limit in force.
 * @returns The message, the same on both protocols.
 *
 * @example
 * ```ts
 * import { busyMessage } from "./_limits.ts";
 *
 * console.log(busyMessage(1024).startsWith("Cannot serve the request")); // true
 * ```
 */
export function busyMessage(limit: number): string {
  return `Cannot serve the request: Purple is busy with ${limit} requests (the limit), retry shortly`;
}

/**
 * Whether an HTTP request is a health check (`/ping`) or a metrics scrape (`/metrics`), which a
 * busy server still answers.
 *
 * @param request The request.
 * @returns `true` for `/ping` with any method and query.
 *
 * @example
 * ```ts
 * import { isHealthCheck } from "./_limits.ts";
 *
 * console.log(isHealthCheck(new Request("http://localhost:8080/ping"))); // true
 * ```
 */
export function isHealthCheck(request: Request): boolean {
  const path = rawPath(request.url);
  return path === "/ping" || path === "/metrics";
}

/**
 * The answer to an HTTP request that would exceed `maxConcurrentRequests`, or `undefined` when
 * it may run. Call it with the number of requests already running; health checks always run.
 *
 * @param request The arriving request.
 * @param running How many requests the server is already handling.
 * @param limits The limits in force.
 * @returns A 503 `{"error": ...}` answer with `Retry-After: 1`, or `undefined`.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS } from "@purple/server/backends";
 * import { refuseWhenBusy } from "./_limits.ts";
 *
 * const limits = { ...DEFAULT_LIMITS, maxConcurrentRequests: 1 };
 * const answer = refuseWhenBusy(new Request("http://localhost/flags/a"), 1, limits);
 * console.log(answer?.status); // 503
 * ```
 */
export function refuseWhenBusy(
  request: Request,
  running: number,
  limits: Limits,
): Response | undefined {
  if (running < limits.maxConcurrentRequests || isHealthCheck(request)) return undefined;
  return new Response(JSON.stringify({ error: busyMessage(limits.maxConcurrentRequests) }), {
    status: HTTP_STATUS.UNAVAILABLE,
    headers: { "content-type": "application/json", "retry-after": "1" },
  });
}
