// Small helpers shared by the backends. Private to this folder.

import {
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
  ValueTooLargeError,
} from "@purple/protocol/errors";
import { INT64_MAX, INT64_MIN } from "@purple/protocol/validate";
import { quote } from "@purple/protocol/text";
import type { KvCondition } from "./backend.ts";

export { quote };

/** The error for a cache or KV key that is not there. */
export function notFound(service: "cache" | "kv", key: string): NotFoundError {
  return new NotFoundError(`Cannot find ${service} key ${quote(key)}: not found`);
}

/** The error of a delete of something absent: `Cannot delete counter 'a': not found`. */
export function absent(what: "cache key" | "counter" | "flag" | "set", key: string): NotFoundError {
  return new NotFoundError(`Cannot delete ${what} ${quote(key)}: not found`);
}

/**
 * Checks a KV write's condition against the value's current version (`undefined`: absent).
 * @throws {PreconditionFailedError} When it does not hold.
 */
export function checkCondition(
  action: "put" | "delete",
  key: string,
  condition: KvCondition | undefined,
  version: string | undefined,
): void {
  if (condition === undefined) return;
  const { ifMatch, ifNoneMatch } = condition;
  if (ifNoneMatch && version !== undefined) {
    throw new PreconditionFailedError(
      `Cannot ${action} KV key ${quote(key)}: it exists (the condition was that it does not)`,
    );
  }
  if (ifMatch === undefined) return;
  if (version === undefined) {
    throw new PreconditionFailedError(
      `Cannot ${action} KV key ${quote(key)}: it does not exist (the condition was version ${
        quote(ifMatch)
      })`,
    );
  }
  if (ifMatch !== "*" && ifMatch !== version) {
    // The current version is left out: a client that needs it reads the value again anyway.
    throw new PreconditionFailedError(
      `Cannot ${action} KV key ${quote(key)}: its version is not ${
        quote(ifMatch)
      } (the value changed since it was read)`,
    );
  }
}

/** The error for adding a new item to a set that holds `maxItems` items or more. */
export function setFull(
  set: string,
  item: string,
  size: number,
  maxItems: number,
): ValueTooLargeError {
  return new ValueTooLargeError(
    `Cannot add item ${quote(item)} to set ${
      quote(set)
    }: the set holds ${size} items, the limit is ${maxItems}`,
  );
}

/** Adds two counter values, refusing a result outside int64. */
export function addInt64(key: string, current: bigint, amount: bigint): bigint {
  const result = current + amount;
  if (result > INT64_MAX || result < INT64_MIN) {
    throw new InvalidArgumentError(
      `Cannot increment counter ${quote(key)} by ${amount}: the result ${result} is outside int64`,
    );
  }
  return result;
}

/** Sorts set items by UTF-16 code units (JavaScript's default order), in place. */
export function sortItems(items: string[]): string[] {
  return items.sort();
}

/** A repeating timer that does not keep the process alive (Deno and Node). */
export function backgroundInterval(fn: () => void, ms: number): () => void {
  const timer: unknown = setInterval(fn, ms);
  if (typeof timer === "number") Deno.unrefTimer(timer);
  else (timer as { unref?: () => void }).unref?.();
  return () => clearInterval(timer as number);
}
