/**
 * Client faults that grpc-js, on Deno, would answer as server faults; fixed here so that no
 * garbage a client sends gets a status that blames the server (found by `tests/fuzz_test.ts`):
 *
 * - A request with a content type other than `application/grpc` is answered with HTTP status
 *   415, as grpc-js means to: Deno's `node:http2` lacks the constant
 *   `HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE`, so grpc-js answered `200` without any gRPC status
 *   (which gRPC clients read as `UNKNOWN`).
 * - A malformed `grpc-timeout` header, a message that does not decompress with its
 *   `grpc-encoding`, and a message that does not parse (reflection's, Purple's own services
 *   already answer those themselves) are `INVALID_ARGUMENT`, as Purple answers every other bad
 *   input, instead of grpc-js's `INTERNAL`.
 *
 * The second fix wraps grpc-js's `BaseServerInterceptingCall.prototype.sendStatus`: the one
 * place these statuses pass through, as grpc-js sends them before any interceptor is called.
 * `tests/fuzz_test.ts` and `tests/limits_test.ts` fail if a grpc-js upgrade moves it.
 *
 * @module
 */

import http2 from "node:http2";
import { BaseServerInterceptingCall } from "@grpc/grpc-js/build/src/server-interceptors.js";
import type { PartialStatusObject } from "@grpc/grpc-js/build/src/call-interface.js";
import { GRPC_STATUS } from "@purple/protocol/errors";

/** grpc-js's own INTERNAL details for faults of the client, and what Purple says instead. */
const CLIENT_FAULTS: ReadonlyArray<[RegExp, (match: RegExpExecArray) => string]> = [
  [
    /^Invalid grpc-timeout value "(.*)"$/s,
    (match) =>
      `Bad grpc-timeout header: expected 1 to 8 digits and a unit (H, M, S, m, u or n), found '${
        match[1].slice(0, 64)
      }'`,
  ],
  [
    /^Failed to decompress message/,
    () => "Bad request message: it does not decompress with its grpc-encoding",
  ],
  [
    /^Error deserializing request/,
    () => "Bad request message: it is not a valid protobuf message of its method",
  ],
];

const WRAPPED = Symbol.for("purple.grpcClientFaults");

/**
 * Installs both fixes, once per process (later calls do nothing).
 *
 * @example
 * ```ts
 * import { fixGrpcClientFaults } from "./_grpc_client_faults.ts";
 *
 * fixGrpcClientFaults();
 * ```
 */
export function fixGrpcClientFaults(): void {
  const constants = http2.constants as unknown as Record<string, number | undefined>;
  constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE ??= 415;
  const prototype = BaseServerInterceptingCall.prototype as unknown as Record<
    string | symbol,
    unknown
  >;
  if (prototype[WRAPPED]) return;
  const sendStatus = prototype.sendStatus as (status: PartialStatusObject) => void;
  prototype.sendStatus = function (this: unknown, status: PartialStatusObject): void {
    if (status.code === GRPC_STATUS.INTERNAL) {
      for (const [pattern, message] of CLIENT_FAULTS) {
        const match = pattern.exec(status.details ?? "");
        if (match) {
          status = { ...status, code: GRPC_STATUS.INVALID_ARGUMENT, details: message(match) };
          break;
        }
      }
    }
    sendStatus.call(this, status);
  };
  prototype[WRAPPED] = true;
}
