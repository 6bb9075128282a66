/**
 * The checks of whole entries, as `purple import` restores them: the same checks and limits as
 * the operations that write them (`checked.ts`), for an entry at a time.
 *
 * @example
 * ```ts
 * import { checkEntry, DEFAULT_LIMITS } from "@purple/server/backends";
 *
 * const entry = checkEntry({ service: "counters", key: "hits", value: 42n }, DEFAULT_LIMITS);
 * console.log(entry.key); // "hits"
 * ```
 *
 * @module
 */

import { InvalidArgumentError, ValueTooLargeError } from "@purple/protocol/errors";
import { describe, INT64_MAX, INT64_MIN } from "@purple/protocol/validate";
import { quote } from "@purple/protocol/text";
import type { StoredEntry } from "./backend.ts";
import type { Limits } from "./limits.ts";
import {
  assertCacheValue,
  assertFlag,
  assertItem,
  assertKey,
  MAX_TTL_SECONDS,
  normalizeKvValue,
} from "./validate.ts";

/**
 * The longest remaining TTL of a cache entry, in milliseconds: the longest TTL a `cacheSet`
 * takes (`MAX_TTL_SECONDS`), in ms.
 *
 * @example
 * ```ts
 * import { MAX_TTL_MS } from "@purple/server/backends";
 *
 * console.log(MAX_TTL_MS); // 2147483647000
 * ```
 */
export const MAX_TTL_MS: number = MAX_TTL_SECONDS * 1000;

/**
 * Checks a whole entry against the limits, as the operations that write it check their input:
 * its key (`Bad key: ...`), a cache value and its TTL in ms (1 to {@linkcode MAX_TTL_MS}, or
 * `null`: no expiry), a counter within int64, a flag, KV bytes (non-empty, within
 * `maxValueBytes`), a set's items (at least one, each a valid item, none twice, at most
 * `maxSetItems`).
 *
 * @param entry The entry.
 * @param limits The limits in force.
 * @returns The entry (a KV value as bytes, not copied).
 * @throws {InvalidArgumentError} For a bad key, value, TTL or item, or an unknown service.
 * @throws {ValueTooLargeError} For a value beyond `maxValueBytes`, or a set beyond
 * `maxSetItems`.
 *
 * @example
 * ```ts
 * import { checkEntry, DEFAULT_LIMITS } from "@purple/server/backends";
 *
 * try {
 *   checkEntry({ service: "flags", key: "", value: true }, DEFAULT_LIMITS);
 * } catch (error) {
 *   console.log((error as Error).message); // "Bad key: expected a non-empty string, found a string of length 0"
 * }
 * ```
 */
export function checkEntry(entry: StoredEntry, limits: Limits): StoredEntry {
  if (typeof entry !== "object" || entry === null) {
    throw new InvalidArgumentError(`Bad entry: expected an object, found ${describe(entry)}`);
  }
  assertKey(entry.key, limits);
  switch (entry.service) {
    case "cache":
      assertCacheValue(entry.value, limits);
      assertTtlMs(entry.ttlMs);
      return entry;
    case "counters":
      if (typeof entry.value !== "bigint" || entry.value < INT64_MIN || entry.value > INT64_MAX) {
        throw new InvalidArgumentError(
          `Bad counter value: expected an integer within int64, found ${describe(entry.value)}`,
        );
      }
      return entry;
    case "flags":
      assertFlag(entry.value);
      return entry;
    case "kv":
      if (!(entry.value instanceof Uint8Array)) {
        throw new InvalidArgumentError(
          `Bad KV value: expected bytes, found ${describe(entry.value)}`,
        );
      }
      normalizeKvValue(entry.value, limits);
      return entry;
    case "sets":
      assertItems(entry.key, entry.value, limits);
      return entry;
    default:
      throw new InvalidArgumentError(
        `Bad entry: expected a service of cache, counters, flags, kv or sets, found ${
          describe((entry as { service?: unknown }).service)
        }`,
      );
  }
}

function assertTtlMs(ttlMs: unknown): void {
  if (ttlMs === null) return;
  if (
    typeof ttlMs !== "number" || !Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_TTL_MS
  ) {
    throw new InvalidArgumentError(
      `Bad TTL: expected a whole number of milliseconds from 1 to ${MAX_TTL_MS}, or null (no expiry), found ${
        describe(ttlMs)
      }`,
    );
  }
}

function assertItems(set: string, items: unknown, limits: Limits): void {
  if (!Array.isArray(items) || items.length === 0) {
    throw new InvalidArgumentError(
      `Bad set ${quote(set)}: expected a non-empty list of items, found ${describe(items)}`,
    );
  }
  if (items.length > limits.maxSetItems) {
    throw new ValueTooLargeError(
      `Bad set ${quote(set)}: ${items.length} items, the limit is ${limits.maxSetItems}`,
    );
  }
  const seen = new Set<string>();
  for (const item of items) {
    assertItem(item, limits);
    if (seen.has(item)) {
      throw new InvalidArgumentError(
        `Bad set ${quote(set)}: the item ${quote(item)} is there twice`,
      );
    }
    seen.add(item);
  }
}
