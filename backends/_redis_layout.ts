// Where each Purple key lives in Redis: the two layouts, the hash slots of Redis Cluster and the
// SCAN patterns that find a service's keys. Pure functions, no connections. Private to this
// folder.
//
// | layout    | cache                 | counters                 | flags ... sets            |
// | --------- | --------------------- | ------------------------ | ------------------------- |
// | databases | db 0, `<prefix><key>` | db 1, `<prefix><key>`    | db 2, 3, 4                |
// | prefixed  | `<prefix>cache:{key}` | `<prefix>counters:{key}` | `<prefix>flags:{key}` ... |
//
// In the prefixed layout the Purple key is the hash tag: Redis Cluster hashes only what is
// between the first `{` and the next `}`, so one key of every service lives in one slot (a later
// batch over the five services of one key can be one atomic step) while different keys spread
// over the cluster. A key that holds a `}` is hashed up to it: `user}1` and `user}2` share the
// slot of `user` (Redis's own hash-tag rule, on purpose: keys `{tenant}:a` and `{tenant}:b`
// stay together too); one that starts with `}` makes an empty tag, so Redis hashes the whole
// Redis key. `slotOf()` follows these rules exactly, and the prefix may not hold braces.

import { InvalidArgumentError } from "@purple/protocol/errors";
import { quote } from "./_util.ts";

/** Purple's services, in the order of their databases in the original layout. */
export const SERVICES = ["cache", "counters", "flags", "kv", "sets"] as const;

/** One of Purple's services. */
export type Service = typeof SERVICES[number];

/** The database of each service in the original Go Purple's layout. */
export const DATABASES: Readonly<Record<Service, number>> = {
  cache: 0,
  counters: 1,
  flags: 2,
  kv: 3,
  sets: 4,
};

/**
 * The names of the Redis backend's layouts: `databases` (a database per service, the original
 * Go Purple's) or `prefixed` (one database, a key prefix per service; Redis Cluster's).
 *
 * @example
 * ```ts
 * import type { RedisLayoutName } from "@purple/server/backends";
 *
 * const layout: RedisLayoutName = "prefixed";
 * console.log(layout);
 * ```
 */
export type RedisLayoutName = "databases" | "prefixed";

/**
 * The names of the Redis backend's layouts, the default first.
 *
 * @example
 * ```ts
 * import { REDIS_LAYOUTS } from "@purple/server/backends";
 *
 * console.log(REDIS_LAYOUTS); // ["databases", "prefixed"]
 * ```
 */
export const REDIS_LAYOUTS: readonly RedisLayoutName[] = ["databases", "prefixed"];

/**
 * The layout to use: the one asked for, else `prefixed` on a cluster and `databases` on one
 * Redis. A cluster has database 0 only, so `databases` with a cluster is refused.
 *
 * @param layout The layout asked for, if any.
 * @param cluster Whether the backend speaks to a Redis Cluster.
 * @returns The layout's name.
 * @throws {InvalidArgumentError} For an unknown layout, or `databases` with a cluster.
 *
 * @example
 * ```ts
 * import { resolveLayoutName } from "@purple/server/backends";
 *
 * console.log(resolveLayoutName(undefined, false)); // "databases"
 * console.log(resolveLayoutName(undefined, true)); // "prefixed"
 * ```
 */
export function resolveLayoutName(layout: string | undefined, cluster: boolean): RedisLayoutName {
  if (layout === undefined) return cluster ? "prefixed" : "databases";
  if (!(REDIS_LAYOUTS as readonly string[]).includes(layout)) {
    throw new InvalidArgumentError(
      `Bad Redis layout ${quote(String(layout))}: expected 'databases' or 'prefixed'`,
    );
  }
  if (layout === "databases" && cluster) {
    throw new InvalidArgumentError(
      "Cannot use the 'databases' Redis layout on a Redis Cluster: a cluster has database 0 " +
        "only; use the 'prefixed' layout (the default with a cluster)",
    );
  }
  return layout as RedisLayoutName;
}

/** The number of hash slots of Redis Cluster. */
export const SLOTS = 16384;

/** Where a service's keys live: how the backend names Redis keys and picks connections. */
export interface RedisLayout {
  /** `databases` (one database per service) or `prefixed` (one database, a prefix each). */
  readonly name: RedisLayoutName;
  /** The deployment prefix in front of every Redis key ("" for none). */
  readonly prefix: string;
  /** The Redis database a service's keys live in. */
  database(service: Service): number;
  /** The Redis key that holds a service's key. */
  key(service: Service, key: string): string;
  /**
   * The `SCAN ... MATCH` pattern of the Redis keys of a service whose Purple key begins with
   * `start` (every key of the service when omitted). Glob characters of the prefix and of
   * `start` are escaped.
   */
  match(service: Service, start?: string): string;
  /**
   * The Purple key of a Redis key that SCAN found in the service's database, or `undefined`
   * when the Redis key is not one of the service's keys in this layout.
   */
  purpleKey(service: Service, redisKey: string): string | undefined;
}

/**
 * Makes a layout.
 *
 * @param name `databases` or `prefixed`.
 * @param prefix The deployment prefix; no braces (they would change the hash tags).
 * @param database The one database of the prefixed layout (ignored by `databases`).
 */
export function redisLayout(name: RedisLayoutName, prefix: string, database = 0): RedisLayout {
  checkPrefix(prefix);
  if (name === "databases") {
    return {
      name,
      prefix,
      database: (service) => DATABASES[service],
      key: (_service, key) => prefix + key,
      match: (_service, start = "") => `${globEscape(prefix + start)}*`,
      purpleKey: (_service, redisKey) =>
        redisKey.startsWith(prefix) && redisKey.length > prefix.length
          ? redisKey.slice(prefix.length)
          : undefined,
    };
  }
  const head = (service: Service) => `${prefix}${service}:{`;
  return {
    name,
    prefix,
    database: () => database,
    key: (service, key) => `${head(service)}${key}}`,
    match: (service, start = "") => `${globEscape(head(service) + start)}*}`,
    purpleKey(service, redisKey) {
      const start = head(service);
      const fits = redisKey.startsWith(start) && redisKey.endsWith("}") &&
        redisKey.length > start.length + 1;
      return fits ? redisKey.slice(start.length, -1) : undefined;
    },
  };
}

/** The longest deployment prefix, in UTF-16 code units. */
const MAX_PREFIX_LENGTH = 128;

function checkPrefix(prefix: string): void {
  const bad = (detail: string) =>
    new InvalidArgumentError(`Bad Redis key prefix ${quote(prefix)}: ${detail}`);
  if (typeof prefix !== "string") throw bad("expected a string");
  if (/[{}]/.test(prefix)) throw bad("braces would change the Redis Cluster hash tags");
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(prefix)) throw bad("control characters are not allowed");
  if (prefix.length > MAX_PREFIX_LENGTH) throw bad(`longer than ${MAX_PREFIX_LENGTH} characters`);
}

/** Escapes the characters Redis glob patterns give a meaning (`* ? [ ] \`). */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

const encoder = new TextEncoder();

/** CRC16-CCITT (XModem), the checksum Redis Cluster hashes keys with, one table entry a byte. */
const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[byte] = crc & 0xffff;
  }
  return table;
})();

function crc16(bytes: Uint8Array, from: number, to: number): number {
  let crc = 0;
  for (let i = from; i < to; i++) {
    crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ bytes[i]) & 0xff];
  }
  return crc;
}

/**
 * The Redis Cluster hash slot of a Redis key (what `CLUSTER KEYSLOT` answers): CRC16 of its
 * UTF-8 bytes, or of its hash tag when it has a non-empty one, modulo 16384.
 */
export function slotOf(redisKey: string): number {
  const bytes = encoder.encode(redisKey);
  const open = bytes.indexOf(0x7b); // {
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) return crc16(bytes, open + 1, close) % SLOTS;
  }
  return crc16(bytes, 0, bytes.length) % SLOTS;
}

/**
 * Checks that Redis keys share one hash slot, as one atomic step on Redis Cluster needs, and
 * returns that slot.
 *
 * @param action What was attempted, for the message (`Cannot put 2 KV keys`).
 * @param keys The Redis keys, each with the Purple service and key it stands for.
 * @throws {InvalidArgumentError} Naming two keys in different slots.
 */
export function oneSlot(
  action: string,
  keys: readonly { service: Service; key: string; redisKey: string }[],
): number {
  const first = keys[0];
  const slot = first === undefined ? 0 : slotOf(first.redisKey);
  for (const other of keys.slice(1)) {
    const otherSlot = slotOf(other.redisKey);
    if (otherSlot !== slot) {
      throw new InvalidArgumentError(
        `${action}: ${first.service} key ${quote(first.key)} and ${other.service} key ${
          quote(other.key)
        } are in different Redis Cluster slots (${slot} and ${otherSlot}), and one atomic ` +
          "step cannot span slots (keys that share the text before a '}' share a slot)",
      );
    }
  }
  return slot;
}
