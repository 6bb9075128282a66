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
 * It reaches into grpc-js's internals (a deep import, a private method, the global
 * `http2.constants`), so grpc-js is pinned exactly (deno.json); `tests/grpc_faults_test.ts`
 * tests the patch itself, and `tests/fuzz_test.ts` and `tests/bad_input_test.ts` the answers a
 * client gets. Remove it when Deno's `node:http2` has the constant and grpc-js answers these
 * faults with INVALID_ARGUMENT itself.
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

/** Marks grpc-js's `sendStatus` once wrapped (and lets a test find the fix installed). */
export const WRAPPED: unique symbol = Symbol.for("purple.grpcClientFaults") as never;

/**
 * The status Purple sends instead of one of grpc-js's: INTERNAL for a fault of the client
 * becomes INVALID_ARGUMENT with Purple's message; any other status is returned as it is.
 *
 * @param status The status grpc-js is about to send.
 * @returns The status to send.
 *
 * @example
 * ```ts
 * import { asClientFault } from "./_grpc_client_faults.ts";
 *
 * console.log(asClientFault({ code: 13, details: 'Invalid grpc-timeout value "1Z"' }).code); // 3
 * ```
 */
export function asClientFault(status: PartialStatusObject): PartialStatusObject {
  if (status.code !== GRPC_STATUS.INTERNAL) return status;
  for (const [pattern, message] of CLIENT_FAULTS) {
    const match = pattern.exec(status.details ?? "");
    if (match) return { ...status, code: GRPC_STATUS.INVALID_ARGUMENT, details: message(match) };
  }
  return status;
}

/** grpc-js's `sendStatus`. */
type SendStatus = (this: unknown, status: PartialStatusObject) => void;

/**
 * A `sendStatus` that sends {@linkcode asClientFault}'s status through the given one.
 *
 * @param sendStatus grpc-js's method.
 * @returns The method that replaces it.
 *
 * @example
 * ```ts
 * import { withClientFaults } from "./_grpc_client_faults.ts";
 *
 * const sendStatus = withClientFaults((status) => console.log(status.code));
 * sendStatus.call({}, { code: 13, details: "Failed to decompress message" }); // 3
 * ```
 */
export function withClientFaults(sendStatus: SendStatus): SendStatus {
  return function (this: unknown, status: PartialStatusObject): void {
    sendStatus.call(this, asClientFault(status));
  };
}

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
  const sendStatus = prototype.sendStatus;
  if (typeof sendStatus !== "function") {
    throw new Error(
      "Cannot install the gRPC client-fault fix: grpc-js's BaseServerInterceptingCall has no " +
        "sendStatus (grpc-js changed: see server/_grpc_client_faults.ts)",
    );
  }
  prototype.sendStatus = withClientFaults(sendStatus as SendStatus);
  prototype[WRAPPED] = true;
}
