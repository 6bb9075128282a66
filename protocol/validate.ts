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

import { InvalidArgumentError, ValueTooLargeError } from "./errors.ts";
import type { CounterAmount, KvValue } from "./operations.ts";

const encoder = new TextEncoder();

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
 * Turns a KV value into the bytes it travels and is stored as: bytes as they are, a string as
 * its UTF-8. Size limits are the server's to check.
 *
 * @param value The value as given.
 * @returns The bytes (not copied).
 * @throws {InvalidArgumentError} For a string with a lone surrogate, or anything else.
 *
 * @example
 * ```ts
 * import { kvValueBytes } from "@purple/protocol/validate";
 *
 * console.log(kvValueBytes("hé").length); // 3
 * ```
 */
export function kvValueBytes(value: KvValue | unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") {
    if (!value.isWellFormed()) {
      throw new InvalidArgumentError("Bad KV value: not well-formed Unicode (a lone surrogate)");
    }
    return encoder.encode(value);
  }
  throw new InvalidArgumentError(
    `Bad KV value: expected bytes or a string, found ${describe(value)}`,
  );
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

/**
 * The number of keys a listing page holds when the request says nothing.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIST_LIMIT } from "@purple/protocol/validate";
 *
 * console.log(DEFAULT_LIST_LIMIT); // 100
 * ```
 */
export const DEFAULT_LIST_LIMIT = 100;

/**
 * The most keys a listing page holds.
 *
 * @example
 * ```ts
 * import { MAX_LIST_LIMIT } from "@purple/protocol/validate";
 *
 * console.log(MAX_LIST_LIMIT); // 1000
 * ```
 */
export const MAX_LIST_LIMIT = 1000;

/**
 * The most operations one batch holds.
 *
 * @example
 * ```ts
 * import { MAX_BATCH_OPERATIONS } from "@purple/protocol/validate";
 *
 * console.log(MAX_BATCH_OPERATIONS); // 1000
 * ```
 */
export const MAX_BATCH_OPERATIONS = 1000;

/**
 * Checks a listing's options and fills in the defaults: the prefix (empty: every key), the page
 * size (1 to {@linkcode MAX_LIST_LIMIT}, default {@linkcode DEFAULT_LIST_LIMIT}), the cursor.
 *
 * @param options The options as given.
 * @returns The prefix, the limit and the cursor (absent for the first page).
 *
 * @example
 * ```ts
 * import { normalizeListOptions } from "@purple/protocol/validate";
 *
 * console.log(normalizeListOptions({ prefix: "user:" })); // { prefix: "user:", limit: 100 }
 * ```
 */
export function normalizeListOptions(
  options: unknown,
): { prefix: string; limit: number; cursor?: string } {
  if (options === undefined) return { prefix: "", limit: DEFAULT_LIST_LIMIT };
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(
      `Bad list options: expected { prefix, limit, cursor }, found ${describe(options)}`,
    );
  }
  const { prefix = "", limit = DEFAULT_LIST_LIMIT, cursor } = options as Record<string, unknown>;
  if (typeof prefix !== "string" || !prefix.isWellFormed()) {
    throw new InvalidArgumentError(`Bad prefix: expected a string, found ${describe(prefix)}`);
  }
  if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_LIST_LIMIT) {
    throw new InvalidArgumentError(
      `Bad limit: expected a whole number from 1 to ${MAX_LIST_LIMIT}, found ${describe(limit)}`,
    );
  }
  if (cursor !== undefined && (typeof cursor !== "string" || cursor === "")) {
    throw new InvalidArgumentError(
      `Bad cursor: expected the cursor of the previous page, found ${describe(cursor)}`,
    );
  }
  return cursor === undefined
    ? { prefix, limit: limit as number }
    : { prefix, limit: limit as number, cursor };
}

/**
 * Checks the conditions of a KV write: `ifMatch` a version (or `*`), `ifNoneMatch` only `*`,
 * not both.
 *
 * @param options The options as given.
 * @returns The conditions: the version to match, and whether the key must be absent; or
 * `undefined` when there is none.
 *
 * @example
 * ```ts
 * import { normalizeWriteOptions } from "@purple/protocol/validate";
 *
 * console.log(normalizeWriteOptions({ ifNoneMatch: "*" })); // { ifNoneMatch: true }
 * ```
 */
export function normalizeWriteOptions(
  options: unknown,
): { ifMatch?: string; ifNoneMatch?: boolean } | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(
      `Bad KV write options: expected { ifMatch } or { ifNoneMatch: "*" }, found ${
        describe(options)
      }`,
    );
  }
  const { ifMatch, ifNoneMatch } = options as Record<string, unknown>;
  if (
    ifMatch !== undefined && (typeof ifMatch !== "string" || !/^[\x21-\x7e]{1,256}$/.test(ifMatch))
  ) {
    throw new InvalidArgumentError(
      `Bad ifMatch: expected a version (visible ASCII, at most 256 characters) or *, found ${
        describe(ifMatch)
      }`,
    );
  }
  if (ifNoneMatch !== undefined && ifNoneMatch !== "*") {
    throw new InvalidArgumentError(`Bad ifNoneMatch: expected "*", found ${describe(ifNoneMatch)}`);
  }
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw new InvalidArgumentError(
      "Bad KV write options: ifMatch and ifNoneMatch together can never both hold",
    );
  }
  if (ifMatch !== undefined) return { ifMatch };
  if (ifNoneMatch !== undefined) return { ifNoneMatch: true };
  return undefined;
}

/**
 * Checks that a batch is a list of at most {@linkcode MAX_BATCH_OPERATIONS} entries (what each
 * entry holds is checked after).
 *
 * @param operations The batch as given.
 * @throws {InvalidArgumentError} When it is not a list.
 * @throws {ValueTooLargeError} For more than {@linkcode MAX_BATCH_OPERATIONS} entries.
 *
 * @example
 * ```ts
 * import { assertBatchSize } from "@purple/protocol/validate";
 *
 * assertBatchSize([{ op: "flagGet", args: ["beta"] }]);
 * ```
 */
export function assertBatchSize(operations: unknown): asserts operations is readonly unknown[] {
  if (!Array.isArray(operations)) {
    throw new InvalidArgumentError(
      `Bad batch: expected a list of operations, found ${describe(operations)}`,
    );
  }
  if (operations.length > MAX_BATCH_OPERATIONS) {
    throw new ValueTooLargeError(
      `Bad batch: ${operations.length} operations, the limit is ${MAX_BATCH_OPERATIONS}`,
    );
  }
}

/**
 * Checks a batch's shape before it is sent: a list of at most {@linkcode MAX_BATCH_OPERATIONS}
 * `{ op, args }`, each naming an operation a batch may hold; counter amounts become `bigint`s
 * (refused when they are not int64 integers, as `counterIncrement` refuses them). The other
 * checks are the server's.
 *
 * @param operations The operations as given.
 * @param batchable The names a batch may hold.
 * @returns The operations, amounts normalised.
 * @throws {ValueTooLargeError} For more than {@linkcode MAX_BATCH_OPERATIONS} operations.
 *
 * @example
 * ```ts
 * import { normalizeBatch } from "@purple/protocol/validate";
 *
 * const [first] = normalizeBatch([{ op: "counterIncrement", args: ["hits", 2] }], ["counterIncrement"]);
 * console.log(first.args); // ["hits", 2n]
 * ```
 */
export function normalizeBatch<T extends { op: string; args: readonly unknown[] }>(
  operations: readonly T[],
  batchable: readonly string[],
): T[] {
  assertBatchSize(operations);
  return operations.map((operation, index) => {
    const { op, args } = (typeof operation === "object" && operation !== null ? operation : {}) as {
      op?: unknown;
      args?: unknown;
    };
    if (typeof op !== "string" || !batchable.includes(op) || !Array.isArray(args)) {
      throw new InvalidArgumentError(
        `Bad batch: operation ${index} must be { op, args } with op an operation a batch may ` +
          `hold, found ${describe(operation)}`,
      );
    }
    if (op !== "counterIncrement") return operation;
    return { ...operation, args: [args[0], normalizeAmount(args[1]), ...args.slice(2)] };
  });
}
