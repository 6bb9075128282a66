// The gRPC side of access control: a grpc-js server interceptor over `AccessControl`. Kept apart
// from `_auth.ts` so that the HTTP server (which imports that) never loads grpc-js.

import * as grpc from "@grpc/grpc-js";
import type { OperationName } from "@purple/protocol";
import { type ErrorCode, GRPC_STATUS, type PurpleError } from "@purple/protocol/errors";
import { grpcServices } from "@purple/protocol/wire";
import type { AccessControl } from "./_auth.ts";

/**
 * The metadata the guard sets to what the call's token may do (`full` or `read`), for the
 * methods that check their parts themselves (a batch); set by the guard only.
 */
export const ACCESS_METADATA = "x-purple-access";

/** The gRPC service that stays open without a token. */
const OPEN_GRPC_PREFIX = "/grpc.health.v1.Health/";

/** The operation of each method path of Purple's services, from the operation table. */
function operationsByPath(): ReadonlyMap<string, OperationName> {
  const operations = new Map<string, OperationName>();
  for (const methods of Object.values(grpcServices())) {
    for (const method of Object.values(methods)) operations.set(method.path, method.operation);
  }
  return operations;
}

/**
 * The gRPC guard, a grpc-js server interceptor: `grpc.health.v1.Health` passes, every other
 * call needs a token in its `authorization` metadata, and a read-only token may only call the
 * get methods (and reflection). A refused call ends with `UNAUTHENTICATED` or
 * `PERMISSION_DENIED`; with `log`, one line says so (method, status, duration), as `--debug`
 * does for the calls that run, and `onRefused` is told (the metrics count it).
 */
export function grpcAccessInterceptor(
  access: AccessControl,
  log?: (line: string) => void,
  onRefused?: (path: string, code: ErrorCode) => void,
): grpc.ServerInterceptor {
  const operations = operationsByPath();
  return (method, call) => {
    const path = method.path;
    if (path.startsWith(OPEN_GRPC_PREFIX)) return new grpc.ServerInterceptingCall(call);
    const operation = operations.get(path);
    const write = !path.startsWith("/grpc.reflection.");
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        const start = performance.now();
        next({
          onReceiveMetadata: (metadata, pass) => {
            const value = metadata.get("authorization")[0];
            try {
              const granted = access.authorize(
                typeof value === "string" ? value : undefined,
                operation,
                write,
              );
              // What the token may do, for a batch's own check (never what the client says).
              metadata.set(ACCESS_METADATA, granted);
            } catch (error) {
              const refusal = error as PurpleError;
              const code: grpc.status = GRPC_STATUS[refusal.code];
              log?.(`${path} ${grpc.status[code]} ${(performance.now() - start).toFixed(1)}ms`);
              onRefused?.(path, refusal.code);
              call.sendStatus({ code, details: refusal.message });
              return;
            }
            pass(metadata);
          },
        });
      },
    });
  };
}
