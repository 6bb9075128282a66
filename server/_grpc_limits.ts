/**
 * The gRPC side of the server limits (see `_limits.ts`): a grpc-js server interceptor that
 * refuses calls beyond `maxConcurrentRequests` and cuts off calls whose request message does
 * not arrive within `bodyTimeoutMs`. Kept apart so that the HTTP server never loads grpc-js.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { GRPC_STATUS } from "@purple/protocol/errors";
import type { Limits } from "../backends/limits.ts";
import { busyMessage } from "./_limits.ts";
import { type Deadlines, MAX_TIMER_MS, type Wait } from "./_deadlines.ts";
import { type Outcome, protocolIndex, type Recorder, type RefusingLimit } from "./_metrics.ts";

/** The gRPC methods that are never refused nor timed: health checks. */
const HEALTH_PREFIX = "/grpc.health.v1.Health/";

/**
 * A grpc-js server interceptor that enforces, on every call but health checks:
 * `maxConcurrentRequests` (a call beyond it is refused at once with `UNAVAILABLE`) and
 * `bodyTimeoutMs` (a unary call whose request message has not fully arrived that long after its
 * headers is answered `INVALID_ARGUMENT`, and whatever the client sends later is dropped). A
 * call counts from its headers until its status is sent or it is cancelled; a server-streaming
 * call (`Watch`), which may last for hours, until its request has arrived (its limit is
 * `maxWatchers`, which the operations enforce).
 *
 * @param limits The limits in force.
 * @param deadlines The server's deadlines, which keep the body time limit.
 * @param counting Where to count the calls it refuses (the metrics), and how to find a call's
 * operation.
 * @returns The interceptor, for `new grpc.Server({ interceptors: [...] })`, and the number of
 * calls it counts as running. Its count is its own: give each server its own interceptor.
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 * import { DEFAULT_LIMITS } from "@purple/server/backends";
 * import { serverDeadlines } from "./_deadlines.ts";
 * import { grpcLimitsInterceptor } from "./_grpc_limits.ts";
 *
 * const { interceptor } = grpcLimitsInterceptor(DEFAULT_LIMITS, serverDeadlines(DEFAULT_LIMITS));
 * const server = new grpc.Server({ interceptors: [interceptor] });
 * server.forceShutdown();
 * ```
 */
export function grpcLimitsInterceptor(
  limits: Limits,
  deadlines: Deadlines,
  counting?: { recorder: Recorder; operationOf: (path: string) => number },
): { interceptor: grpc.ServerInterceptor; running: () => number } {
  let running = 0;
  const GRPC = protocolIndex("grpc");
  /**
   * Counts a refused call: the limit, and the call with its outcome when this interceptor
   * answered it (a call its method answered is counted by the method).
   */
  const refuse = (limit: RefusingLimit, path: string, outcome?: Outcome) => {
    if (counting === undefined) return;
    counting.recorder.refused(GRPC, limit);
    if (outcome !== undefined) {
      counting.recorder.request(GRPC, counting.operationOf(path), outcome, 0);
    }
  };
  const interceptor: grpc.ServerInterceptor = (method, call) => {
    if (method.path.startsWith(HEALTH_PREFIX)) return new grpc.ServerInterceptingCall(call);
    let counted = false;
    let over = false;
    let wait: Wait | undefined;
    const finish = () => {
      deadlines.clear(wait);
      if (counted) running--;
      counted = false;
    };
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        if (running >= limits.maxConcurrentRequests) {
          over = true;
          refuse("concurrent_requests", method.path, "UNAVAILABLE");
          call.sendStatus({
            code: GRPC_STATUS.UNAVAILABLE,
            details: busyMessage(limits.maxConcurrentRequests),
          });
          return;
        }
        running++;
        counted = true;
        // A client stream (reflection) sends messages for as long as it lasts: not timed.
        if (method.requestStream || limits.bodyTimeoutMs > MAX_TIMER_MS) return next(metadata);
        wait = deadlines.add(Date.now() + limits.bodyTimeoutMs, () => {
          over = true;
          finish();
          refuse("body_timeout", method.path, "INVALID_ARGUMENT");
          call.sendStatus({
            code: GRPC_STATUS.INVALID_ARGUMENT,
            details:
              `Bad request: the request message did not arrive within ${limits.bodyTimeoutMs} ms`,
          });
        });
        next(metadata);
      })
      .withOnReceiveMessage((message, next) => {
        if (!over) next(message);
      })
      .withOnReceiveHalfClose((next) => {
        deadlines.clear(wait);
        if (method.responseStream) finish(); // A stream holds no request slot once it runs.
        if (!over) next();
      })
      .withOnCancel(finish)
      .build();
    const responder = new grpc.ResponderBuilder()
      .withStart((next) => next(listener))
      .withSendStatus((status, next) => {
        finish();
        // A message over its method's cap, refused by the method (`tolerate` in grpc.ts, in
        // grpc-js's words). grpc-js's own refusal of a larger one passes no interceptor.
        if (
          status.code === GRPC_STATUS.VALUE_TOO_LARGE && !over &&
          /larger than max/i.test(status.details ?? "")
        ) {
          refuse("body_size", method.path);
        }
        next(status);
      })
      .build();
    return new grpc.ServerInterceptingCall(call, responder);
  };
  return { interceptor, running: () => running };
}
