/**
 * Input checks against the configured limits: with the shape checks of
 * `@purple/protocol/validate` (re-exported here), the one place where keys, values, TTLs and
 * amounts are validated. Each check throws `InvalidArgumentError` (or `ValueTooLargeError` for
 * value sizes) with a message that names the input and what was wrong.
 *
 * @module
 */

import type { KvValue } from "@purple/protocol";
import { InvalidArgumentError, ValueTooLargeError } from "@purple/protocol/errors";
import { utf8Length } from "@purple/protocol/text";
import { assertName, kvValueBytes } from "@purple/protocol/validate";
import type { Limits } from "./limits.ts";

export {
  assertFlag,
  DEFAULT_TTL_SECONDS,
  MAX_TTL_SECONDS,
  normalizeAmount,
  normalizeTtl,
} from "@purple/protocol/validate";

function assertText(
  name: string,
  value: unknown,
  maxBytes: number,
  TooLong: typeof InvalidArgumentError | typeof ValueTooLargeError = InvalidArgumentError,
): asserts value is string {
  assertName(name, value);
  const bytes = utf8Length(value);
  if (bytes > maxBytes) {
    throw new TooLong(`Bad ${name}: ${bytes} bytes, the limit is ${maxBytes}`);
  }
}

/**
 * Checks a key (or set name): a non-empty, well-formed string within `maxKeyBytes` (a longer
 * key is an `InvalidArgumentError`, not a size error: keys are names, not payloads).
 * @param key The key.
 * @param limits The limits in force.
 */
export function assertKey(key: unknown, limits: Limits): asserts key is string {
  assertText("key", key, limits.maxKeyBytes);
}

/**
 * Checks a set item: a non-empty, well-formed string within `maxItemBytes`.
 * @param item The item.
 * @param limits The limits in force.
 */
export function assertItem(item: unknown, limits: Limits): asserts item is string {
  assertText("set item", item, limits.maxItemBytes);
}

/**
 * Checks a cache value: a non-empty, well-formed string within `maxValueBytes`.
 * @param value The value.
 * @param limits The limits in force.
 */
export function assertCacheValue(value: unknown, limits: Limits): asserts value is string {
  assertText("cache value", value, limits.maxValueBytes, ValueTooLargeError);
}

/**
 * Turns a KV value into bytes (a string becomes UTF-8), non-empty and within `maxValueBytes`.
 * @param value The value as given.
 * @param limits The limits in force.
 * @returns The bytes (not copied).
 */
export function normalizeKvValue(value: KvValue | unknown, limits: Limits): Uint8Array {
  const bytes = kvValueBytes(value);
  if (bytes.byteLength === 0) throw new InvalidArgumentError("Bad KV value: it is empty");
  if (bytes.byteLength > limits.maxValueBytes) {
    throw new ValueTooLargeError(
      `Bad KV value: ${bytes.byteLength} bytes, the limit is ${limits.maxValueBytes}`,
    );
  }
  return bytes;
}
