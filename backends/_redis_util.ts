// Helpers of the Redis backend: the URL, the reading of stored values, the error mapping.
// Private to this folder.

import {
  InternalError,
  InvalidArgumentError,
  PurpleError,
  UnavailableError,
} from "@purple/protocol/errors";
import { INT64_MAX, INT64_MIN } from "@purple/protocol/validate";
import { parseGoBool, quote } from "@purple/protocol/text";

/** Where and how to connect, read from a `redis://` or `rediss://` URL. */
export interface RedisEndpoint {
  host: string;
  port: number;
  username?: string;
  password?: string;
  tls: boolean;
  /** The URL without its password, safe for messages and logs. */
  safeUrl: string;
}

/** Reads a Redis URL; the database number in its path is ignored (the layout fixes 0-4). */
export function parseRedisUrl(url: string): RedisEndpoint {
  const bad = (detail: string) =>
    new InvalidArgumentError(`Bad Redis URL ${quote(hidePassword(url))}: ${detail}`);
  let parsed: URL;
  let username: string;
  let password: string;
  try {
    parsed = new URL(url);
    username = decodeURIComponent(parsed.username);
    password = decodeURIComponent(parsed.password);
  } catch {
    throw bad("cannot parse it");
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw bad("expected the scheme redis:// or rediss://");
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  const port = parsed.port === "" ? 6379 : Number(parsed.port);
  const user = `${parsed.username}${password ? ":***" : ""}`;
  const safeUrl = `${parsed.protocol}//${user ? `${user}@` : ""}${
    host.includes(":") ? `[${host}]` : host
  }:${port}`;
  return {
    host,
    port,
    username: username || undefined,
    password: password || undefined,
    tls: parsed.protocol === "rediss:",
    safeUrl,
  };
}

function hidePassword(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*):[^@/]*@/i, "$1:***@");
}

/** Reads a stored flag as Go's `strconv.ParseBool` does; absent is false. */
export function parseFlag(key: string, raw: string | null): boolean {
  if (raw === null) return false;
  const value = parseGoBool(raw);
  if (value !== undefined) return value;
  throw new InvalidArgumentError(
    `Cannot get flag ${quote(key)}: the stored value ${quote(raw)} is not a boolean`,
  );
}

/** Reads a stored counter (a decimal int64 string); absent is 0n. */
export function parseCounter(key: string, raw: string | null): bigint {
  if (raw === null) return 0n;
  if (/^[+-]?\d{1,20}$/.test(raw)) {
    const value = BigInt(raw);
    if (value >= INT64_MIN && value <= INT64_MAX) return value;
  }
  throw new InvalidArgumentError(
    `Cannot get counter ${quote(key)}: the stored value ${quote(raw)} is not an int64 integer`,
  );
}

/** Redis error prefixes that mean "cannot serve right now", not "bad request". */
const TRANSIENT =
  /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|NOAUTH|WRONGPASS|NOPERM|OOM|MISCONF|READONLY|NOREPLICAS)\b/;

/**
 * Turns whatever ioredis rejected with into a typed Purple error.
 *
 * @param error What ioredis threw: a Redis reply error or a connection error.
 * @param action What was attempted, such as `Cannot get cache key 'a'`.
 * @param unavailable The text saying why Redis cannot be reached (used for connection errors).
 */
export function toPurpleError(error: unknown, action: string, unavailable: string): PurpleError {
  if (error instanceof PurpleError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Error && error.name === "ReplyError") {
    if (message.includes("increment or decrement would overflow")) {
      return new InvalidArgumentError(`${action}: the result would be outside int64`, {
        cause: error,
      });
    }
    if (message.startsWith("ERR value is not an integer")) {
      return new InvalidArgumentError(`${action}: the stored value is not an int64 integer`, {
        cause: error,
      });
    }
    if (message.startsWith("WRONGTYPE")) {
      return new InvalidArgumentError(`${action}: Redis holds another kind of value at this key`, {
        cause: error,
      });
    }
    if (TRANSIENT.test(message)) {
      return new UnavailableError(`${action}: Redis refused: ${message}`, { cause: error });
    }
    return new InternalError(`${action}: Redis replied: ${message}`, { cause: error });
  }
  return new UnavailableError(`${action}: ${unavailable}`, { cause: error });
}
