/**
 * Shape checks of operation inputs that do not depend on server configuration: used by the
 * server before any backend runs, and by the clients before encoding a request (a value a
 * transport cannot even carry, such as a fractional counter amount, is refused the same way
 * everywhere). Each check throws `InvalidArgumentError`.
 *
 * @example
 * ```ts
 * import { normalizeAmount, normalizeTtl } from "@purple/protocol/validate";
 *
 * console.log(normalizeAmount(5)); // 5n
 * console.log(normalizeTtl(undefined)); // 5
 * ```
 *
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";
import type { CounterAmount } from "./operations.ts";

/**
 * The TTL used when none (or 0) is given, in seconds.
 *
 * @example
 * ```ts
 * import { DEFAULT_TTL_SECONDS } from "@purple/protocol/validate";
 *
 * console.log(DEFAULT_TTL_SECONDS); // 5
 * ```
 */
export const DEFAULT_TTL_SECONDS = 5;

/**
 * The largest TTL, in seconds: the largest int32, as the gRPC field is an int32.
 *
 * @example
 * ```ts
 * import { MAX_TTL_SECONDS } from "@purple/protocol/validate";
 *
 * console.log(MAX_TTL_SECONDS); // 2147483647
 * ```
 */
export const MAX_TTL_SECONDS = 2147483647;

/**
 * The smallest int64, `-(2n ** 63n)`.
 *
 * @example
 * ```ts
 * import { INT64_MIN } from "@purple/protocol/validate";
 *
 * console.log(INT64_MIN); // -9223372036854775808n
 * ```
 */
export const INT64_MIN: bigint = -(2n ** 63n);

/**
 * The largest int64, `2n ** 63n - 1n`.
 *
 * @example
 * ```ts
 * import { INT64_MAX } from "@purple/protocol/validate";
 *
 * console.log(INT64_MAX); // 9223372036854775807n
 * ```
 */
export const INT64_MAX: bigint = 2n ** 63n - 1n;

/**
 * Describes a value for an error message without printing it whole.
 *
 * @param value Anything.
 * @returns A short description.
 *
 * @example
 * ```ts
 * import { describe } from "@purple/protocol/validate";
 *
 * console.log(describe("")); // "a string of length 0"
 * ```
 */
export function describe(value: unknown): string {
  if (typeof value === "string") return `a string of length ${value.length}`;
  if (typeof value === "bigint") return `${value}n`;
  if (value === null) return "null";
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  return typeof value === "object" ? "an object" : `${String(value)} (${typeof value})`;
}

/**
 * Checks that a name (key, set name, item, cache value) is a non-empty, well-formed string.
 *
 * @param name What the value is, for the message.
 * @param value The value.
 *
 * @example
 * ```ts
 * import { assertName } from "@purple/protocol/validate";
 *
 * assertName("key", "player1");
 * ```
 */
export function assertName(name: string, value: unknown): asserts value is string {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidArgumentError(
      `Bad ${name}: expected a non-empty string, found ${describe(value)}`,
    );
  }
  if (!value.isWellFormed()) {
    throw new InvalidArgumentError(`Bad ${name}: not well-formed Unicode (a lone surrogate)`);
  }
}

/**
 * Checks a flag value: exactly `true` or `false`.
 *
 * @param value The value.
 *
 * @example
 * ```ts
 * import { assertFlag } from "@purple/protocol/validate";
 *
 * assertFlag(true);
 * ```
 */
export function assertFlag(value: unknown): asserts value is boolean {
  if (typeof value !== "boolean") {
    throw new InvalidArgumentError(`Bad flag value: expected a boolean, found ${describe(value)}`);
  }
}

/**
 * Turns a TTL into whole seconds: undefined or 0 gives the default (5).
 *
 * @param ttl The TTL as given.
 * @returns Seconds, from 1 to {@linkcode MAX_TTL_SECONDS}.
 *
 * @example
 * ```ts
 * import { normalizeTtl } from "@purple/protocol/validate";
 *
 * console.log(normalizeTtl(0)); // 5
 * ```
 */
export function normalizeTtl(ttl: unknown): number {
  if (ttl === undefined || ttl === 0) return DEFAULT_TTL_SECONDS;
  if (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < 0 || ttl > MAX_TTL_SECONDS) {
    throw new InvalidArgumentError(
      `Bad ttl: expected whole seconds from 0 to ${MAX_TTL_SECONDS}, found ${describe(ttl)}`,
    );
  }
  return ttl;
}

/**
 * Turns a counter amount into a bigint within int64; an unsafe or fractional number is
 * refused rather than rounded.
 *
 * @param amount The amount as given.
 * @returns The amount as a bigint.
 *
 * @example
 * ```ts
 * import { normalizeAmount } from "@purple/protocol/validate";
 *
 * console.log(normalizeAmount(-3)); // -3n
 * ```
 */
export function normalizeAmount(amount: CounterAmount | unknown): bigint {
  if (typeof amount === "number" && Number.isSafeInteger(amount)) return BigInt(amount);
  if (typeof amount === "bigint" && amount >= INT64_MIN && amount <= INT64_MAX) return amount;
  if (typeof amount === "number" && Number.isInteger(amount)) {
    throw new InvalidArgumentError(
      `Bad amount: ${amount} is beyond 2^53 and may have been rounded; pass a bigint`,
    );
  }
  throw new InvalidArgumentError(
    `Bad amount: expected an integer within int64, found ${describe(amount)}`,
  );
}
