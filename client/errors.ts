/**
 * The typed errors of Purple, the same in-process, over HTTP and over gRPC.
 *
 * Each error class has one {@linkcode ErrorCode}; that code maps one-to-one to an HTTP status
 * ({@linkcode HTTP_STATUS}) and a gRPC status code ({@linkcode GRPC_STATUS}). Servers use the
 * tables to answer, clients use them to turn an answer back into the same class, so
 * `instanceof NotFoundError` works the same against a backend, over HTTP and over gRPC.
 *
 * @example Catching a missing key
 * ```ts
 * import { NotFoundError } from "@purple/client/errors";
 *
 * try {
 *   throw new NotFoundError("Cannot get cache key 'a': not found");
 * } catch (error) {
 *   if (!(error instanceof NotFoundError)) throw error;
 * }
 * ```
 *
 * @module
 */

export {
  codeFromGrpcStatus,
  codeFromHttpStatus,
  type ErrorCode,
  errorFromCode,
  GRPC_STATUS,
  HTTP_STATUS,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  PreconditionFailedError,
  PurpleError,
  UnauthenticatedError,
  UnavailableError,
  ValueTooLargeError,
} from "@purple/protocol/errors";
