/**
 * The typed errors of Purple, shared by every backend, server and client.
 *
 * Each error class has one {@linkcode ErrorCode}; that code maps one-to-one to an HTTP status
 * ({@linkcode HTTP_STATUS}) and a gRPC status code ({@linkcode GRPC_STATUS}). Servers use the
 * tables to answer, clients use them to turn an answer back into the same class, so
 * `instanceof NotFoundError` works the same in-process, over HTTP and over gRPC.
 *
 * @example Catching a missing key
 * ```ts
 * import { NotFoundError } from "@purple/protocol/errors";
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

/**
 * The machine-readable name of each kind of Purple error.
 *
 * @example
 * ```ts
 * import { type ErrorCode, NotFoundError } from "@purple/protocol/errors";
 *
 * const code: ErrorCode = new NotFoundError("Cannot find cache key 'a': not found").code;
 * console.log(code); // "NOT_FOUND"
 * ```
 */
export type ErrorCode =
  | "NOT_FOUND"
  | "INVALID_ARGUMENT"
  | "VALUE_TOO_LARGE"
  | "UNAVAILABLE"
  | "UNAUTHENTICATED"
  | "PERMISSION_DENIED"
  | "PRECONDITION_FAILED"
  | "INTERNAL";

/**
 * The base class of every Purple error. Catch it to handle any failure Purple reports.
 *
 * @example
 * ```ts
 * import { PurpleError, UnavailableError } from "@purple/protocol/errors";
 *
 * const error: PurpleError = new UnavailableError("Cannot reach Redis");
 * console.log(error.code); // "UNAVAILABLE"
 * ```
 */
export abstract class PurpleError extends Error {
  /** The kind of error, the same on every transport. */
  abstract readonly code: ErrorCode;
}

/**
 * A key (cache entry, KV value) does not exist, or a cache entry expired.
 *
 * @example
 * ```ts
 * import { NotFoundError } from "@purple/protocol/errors";
 *
 * const error = new NotFoundError("Cannot get KV key 'a': not found");
 * console.log(error.code); // "NOT_FOUND"
 * ```
 */
export class NotFoundError extends PurpleError {
  /** Always `"NOT_FOUND"`. */
  readonly code: ErrorCode = "NOT_FOUND";
  /**
   * Creates the error.
   *
   * @param message What was not found.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NotFoundError";
  }
}

/**
 * The input was refused: an empty key, a negative TTL, a counter result outside int64, ...
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "@purple/protocol/errors";
 *
 * const error = new InvalidArgumentError("Bad key: expected a non-empty string");
 * console.log(error.code); // "INVALID_ARGUMENT"
 * ```
 */
export class InvalidArgumentError extends PurpleError {
  /** Always `"INVALID_ARGUMENT"`. */
  readonly code: ErrorCode = "INVALID_ARGUMENT";
  /**
   * Creates the error.
   *
   * @param message What was wrong with the input.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InvalidArgumentError";
  }
}

/**
 * A value, key or request body is larger than the configured limit.
 *
 * @example
 * ```ts
 * import { ValueTooLargeError } from "@purple/protocol/errors";
 *
 * const error = new ValueTooLargeError("Value too large: 2000000 bytes, limit is 1048576");
 * console.log(error.code); // "VALUE_TOO_LARGE"
 * ```
 */
export class ValueTooLargeError extends PurpleError {
  /** Always `"VALUE_TOO_LARGE"`. */
  readonly code: ErrorCode = "VALUE_TOO_LARGE";
  /**
   * Creates the error.
   *
   * @param message What was too large, and the limit.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ValueTooLargeError";
  }
}

/**
 * The backend (or the server) cannot be reached right now; retrying later may succeed.
 *
 * @example
 * ```ts
 * import { UnavailableError } from "@purple/protocol/errors";
 *
 * const error = new UnavailableError("Cannot reach Redis at redis://127.0.0.1:6379");
 * console.log(error.code); // "UNAVAILABLE"
 * ```
 */
export class UnavailableError extends PurpleError {
  /** Always `"UNAVAILABLE"`. */
  readonly code: ErrorCode = "UNAVAILABLE";
  /**
   * Creates the error.
   *
   * @param message What could not be reached.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnavailableError";
  }
}

/**
 * The request carried no valid access token.
 *
 * @example
 * ```ts
 * import { UnauthenticatedError } from "@purple/protocol/errors";
 *
 * const error = new UnauthenticatedError("Missing or invalid access token");
 * console.log(error.code); // "UNAUTHENTICATED"
 * ```
 */
export class UnauthenticatedError extends PurpleError {
  /** Always `"UNAUTHENTICATED"`. */
  readonly code: ErrorCode = "UNAUTHENTICATED";
  /**
   * Creates the error.
   *
   * @param message Why the request was not let in.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnauthenticatedError";
  }
}

/**
 * The access token is valid but may not do this (a read-only token writing).
 *
 * @example
 * ```ts
 * import { PermissionDeniedError } from "@purple/protocol/errors";
 *
 * const error = new PermissionDeniedError("Read-only token cannot call kvPut");
 * console.log(error.code); // "PERMISSION_DENIED"
 * ```
 */
export class PermissionDeniedError extends PurpleError {
  /** Always `"PERMISSION_DENIED"`. */
  readonly code: ErrorCode = "PERMISSION_DENIED";
  /**
   * Creates the error.
   *
   * @param message What was refused.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PermissionDeniedError";
  }
}

/**
 * A condition of the request does not hold: a KV value's version is not the one given
 * (`ifMatch`), or the key exists where it must not (`ifNoneMatch: "*"`). Nothing was changed.
 *
 * @example
 * ```ts
 * import { PreconditionFailedError } from "@purple/protocol/errors";
 *
 * const error = new PreconditionFailedError("Cannot put KV key 'a': its version is not 'v1'");
 * console.log(error.code); // "PRECONDITION_FAILED"
 * ```
 */
export class PreconditionFailedError extends PurpleError {
  /** Always `"PRECONDITION_FAILED"`. */
  readonly code: ErrorCode = "PRECONDITION_FAILED";
  /**
   * Creates the error.
   *
   * @param message Which condition did not hold.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PreconditionFailedError";
  }
}

/**
 * Something failed inside Purple. Servers never send the details of such an error.
 *
 * @example
 * ```ts
 * import { InternalError } from "@purple/protocol/errors";
 *
 * const error = new InternalError("Internal server error");
 * console.log(error.code); // "INTERNAL"
 * ```
 */
export class InternalError extends PurpleError {
  /** Always `"INTERNAL"`. */
  readonly code: ErrorCode = "INTERNAL";
  /**
   * Creates the error.
   *
   * @param message A description safe to show to a client.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InternalError";
  }
}

/**
 * The HTTP status of each error code: the one table servers answer with and clients read.
 *
 * @example
 * ```ts
 * import { HTTP_STATUS } from "@purple/protocol/errors";
 *
 * console.log(HTTP_STATUS.NOT_FOUND); // 404
 * ```
 */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  PRECONDITION_FAILED: 412,
  VALUE_TOO_LARGE: 413,
  INTERNAL: 500,
  UNAVAILABLE: 503,
});

/**
 * The gRPC status code of each error code: the one table servers answer with and clients read.
 * A value that is too large is `RESOURCE_EXHAUSTED` (8), a failed condition
 * `FAILED_PRECONDITION` (9).
 *
 * @example
 * ```ts
 * import { GRPC_STATUS } from "@purple/protocol/errors";
 *
 * console.log(GRPC_STATUS.NOT_FOUND); // 5
 * ```
 */
export const GRPC_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  VALUE_TOO_LARGE: 8,
  PRECONDITION_FAILED: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
});

const CLASSES: Readonly<Record<ErrorCode, new (message: string) => PurpleError>> = {
  NOT_FOUND: NotFoundError,
  INVALID_ARGUMENT: InvalidArgumentError,
  VALUE_TOO_LARGE: ValueTooLargeError,
  UNAVAILABLE: UnavailableError,
  UNAUTHENTICATED: UnauthenticatedError,
  PERMISSION_DENIED: PermissionDeniedError,
  PRECONDITION_FAILED: PreconditionFailedError,
  INTERNAL: InternalError,
};

/**
 * Builds the error of a code, as a client does when a server reports it.
 *
 * @param code The error's code.
 * @param message The message the server sent.
 * @returns An instance of the matching class.
 *
 * @example
 * ```ts
 * import { errorFromCode, NotFoundError } from "@purple/protocol/errors";
 *
 * console.log(errorFromCode("NOT_FOUND", "gone") instanceof NotFoundError); // true
 * ```
 */
export function errorFromCode(code: ErrorCode, message: string): PurpleError {
  return new CLASSES[code](message);
}

function codeOf(table: Readonly<Record<ErrorCode, number>>, status: number): ErrorCode | undefined {
  for (const [code, value] of Object.entries(table)) {
    if (value === status) return code as ErrorCode;
  }
  return undefined;
}

/**
 * Finds the error code of an HTTP status, the reverse of {@linkcode HTTP_STATUS}.
 *
 * @param status An HTTP status.
 * @returns The code, or `undefined` when the status is not one Purple answers with.
 *
 * @example
 * ```ts
 * import { codeFromHttpStatus } from "@purple/protocol/errors";
 *
 * console.log(codeFromHttpStatus(503)); // "UNAVAILABLE"
 * ```
 */
export function codeFromHttpStatus(status: number): ErrorCode | undefined {
  return codeOf(HTTP_STATUS, status);
}

/**
 * Finds the error code of a gRPC status code, the reverse of {@linkcode GRPC_STATUS}.
 *
 * @param status A gRPC status code.
 * @returns The code, or `undefined` when the status is not one Purple answers with.
 *
 * @example
 * ```ts
 * import { codeFromGrpcStatus } from "@purple/protocol/errors";
 *
 * console.log(codeFromGrpcStatus(5)); // "NOT_FOUND"
 * ```
 */
export function codeFromGrpcStatus(status: number): ErrorCode | undefined {
  return codeOf(GRPC_STATUS, status);
}
