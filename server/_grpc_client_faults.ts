/**
 * Client faults that grpc-js, on Deno, would answer as server faults; fixed here so that no
 * garbage a client sends gets a status that blames the server (found by `tests/fuzz_test.ts`):
 *
 * - A request with a content type other than `application/grpc` is answered with HTTP status
 *   415, as grpc-js means to: Deno's `node:http2` lacks the constant
 *   `HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE`, so grpc-js answered `200` without any gRPC status
 *   (which gRPC clients read as `UNKNOWN`).
 *
 * @module
 */

import http2 from "node:http2";

/**
 * Installs the fix, once per process (later calls do nothing).
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
}
