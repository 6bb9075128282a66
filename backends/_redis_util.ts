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
  /** The database number of the URL's path, 0 without one. */
  database: number;
  /** The URL without its password, safe for messages and logs. */
  safeUrl: string;
}

/**
 * Reads a Redis URL. Its database number is used by the prefixed layout only (the databases
 * layout fixes 0-4).
 */
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
  const path = parsed.pathname.replace(/^\//, "");
  if (!/^\d{0,5}$/.test(path)) throw bad(`expected a database number as the path, found '${path}'`);
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
    database: path === "" ? 0 : Number(path),
    safeUrl,
  };
}

/**
 * Reads the seed list of a Redis Cluster: one URL or several, comma-separated. Every seed has
 * the same scheme and credentials (they are the cluster's) and no database other than 0.
 */
export function parseClusterUrls(urls: string): RedisEndpoint[] {
  const seeds = urls.split(",").map((url) => url.trim()).filter((url) => url !== "")
    .map(parseRedisUrl);
  const bad = (detail: string) =>
    new InvalidArgumentError(
      `Bad Redis Cluster URLs ${quote(hidePassword(urls))}: ${detail}`,
    );
  if (seeds.length === 0) throw bad("expected one seed node URL or several, comma-separated");
  const [first] = seeds;
  for (const seed of seeds) {
    if (seed.tls !== first.tls) throw bad("every seed needs the same scheme");
    if (seed.username !== first.username || seed.password !== first.password) {
      throw bad("every seed needs the same user and password");
    }
    if (seed.database !== 0) {
      throw bad(`Redis Cluster has database 0 only, found database ${seed.database}`);
    }
  }
  return seeds;
}

function hidePassword(url: string): string {
  return url.replace(/(^|,)([a-z]+:\/\/[^:/@,]*):[^@/,]*@/gi, "$1$2:***@");
}

/** Why a key cannot be read: Redis holds a value of another type there. */
export const WRONG_TYPE = "Redis holds another kind of value at this key";

/** Why a stored text cannot be read as a counter or a flag. */
export function unreadableReason(service: "counters" | "flags", raw: string): string {
  return `the stored value ${quote(raw)} is not ${
    service === "counters" ? "an int64 integer" : "a boolean"
  }`;
}

/** A stored counter's text (a decimal int64) as its value, or `undefined` when it is not one. */
export function counterOf(raw: string): bigint | undefined {
  if (!/^[+-]?\d{1,20}$/.test(raw)) return undefined;
  const value = BigInt(raw);
  return value >= INT64_MIN && value <= INT64_MAX ? value : undefined;
}

/** Reads a stored flag as Go's `strconv.ParseBool` does; absent is false. */
export function parseFlag(key: string, raw: string | null): boolean {
  if (raw === null) return false;
  const value = parseGoBool(raw);
  if (value !== undefined) return value;
  throw new InvalidArgumentError(
    `Cannot get flag ${quote(key)}: ${unreadableReason("flags", raw)}`,
  );
}

/** Reads a stored counter (a decimal int64 string); absent is 0n. */
export function parseCounter(key: string, raw: string | null): bigint {
  if (raw === null) return 0n;
  const value = counterOf(raw);
  if (value !== undefined) return value;
  throw new InvalidArgumentError(
    `Cannot get counter ${quote(key)}: ${unreadableReason("counters", raw)}`,
  );
}

/** Redis error prefixes that mean "cannot serve right now", not "bad request". */
const TRANSIENT =
  /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|MOVED|ASK|NOAUTH|WRONGPASS|NOPERM|OOM|MISCONF|READONLY|NOREPLICAS)\b/;

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
      return new InvalidArgumentError(`${action}: ${WRONG_TYPE}`, {
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
