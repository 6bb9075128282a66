// Atomic batches on Redis: all of a batch's operations, or none. Private to this folder.
//
// Optimistic, like WATCH/MULTI/EXEC but without a connection of its own: one script reads every
// key the batch touches (its value, and the SHA-1 of its DUMP as a fingerprint), the batch then
// runs here in JavaScript over that snapshot (int64 arithmetic exact, the KV conditions, the set
// limit, the deletes of absent keys: any failure fails the batch before anything is written),
// and a second script checks that every fingerprint is unchanged and writes the final state of
// each changed key, or writes nothing when another client changed one of the keys in between
// (the batch is then run again). Scripts run as one step in Redis; in the `databases` layout
// they SELECT each key's database (Redis 7 restores the connection's database afterwards); on
// a cluster every key must be in one slot (`oneSlot`), else the batch is refused.

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { AtomicBatchError, type BackendOperation } from "./backend.ts";
import { absent, addInt64, checkCondition, notFound, setFull, sortItems } from "./_util.ts";
import type { RedisLayout, Service } from "./_redis_layout.ts";
import { parseCounter, parseFlag } from "./_redis_util.ts";

/** Reads each key: its fingerprint, and its value (a string's bytes, a set's members). */
export const READ_STATE = `
local out = {}
for i, key in ipairs(KEYS) do
  local db = ARGV[2 * i - 1]
  if db ~= '' then redis.call('SELECT', tonumber(db)) end
  local fingerprint = redis.sha1hex(redis.call('DUMP', key) or '')
  if ARGV[2 * i] == 'set' then
    out[i] = {fingerprint, redis.call('SMEMBERS', key)}
  else
    out[i] = {fingerprint, redis.call('GET', key)}
  end
end
return out
`;

/**
 * Checks every key's fingerprint, then writes: per key `db, fingerprint, action, count`, then
 * `count` arguments (`del`: none; `set`: the value; `setex`: the value and seconds; `sadd`: the
 * members). Returns 1 when written, 0 when a key changed since it was read (nothing written).
 */
export const APPLY = `
local at = 1
local plan = {}
for i, key in ipairs(KEYS) do
  local db, fingerprint, action, count = ARGV[at], ARGV[at + 1], ARGV[at + 2], tonumber(ARGV[at + 3])
  if db ~= '' then redis.call('SELECT', tonumber(db)) end
  if redis.sha1hex(redis.call('DUMP', key) or '') ~= fingerprint then return 0 end
  plan[i] = {db, action, at + 4, count}
  at = at + 4 + count
end
for i, key in ipairs(KEYS) do
  local db, action, first, count = plan[i][1], plan[i][2], plan[i][3], plan[i][4]
  if db ~= '' then redis.call('SELECT', tonumber(db)) end
  if action == 'del' then
    redis.call('DEL', key)
  elseif action == 'set' then
    redis.call('SET', key, ARGV[first])
  elseif action == 'setex' then
    redis.call('SET', key, ARGV[first], 'EX', ARGV[first + 1])
  elseif action == 'sadd' then
    redis.call('DEL', key)
    for j = first, first + count - 1, 500 do
      redis.call('SADD', key, unpack(ARGV, j, math.min(j + 499, first + count - 1)))
    end
  end
end
return 1
`;

/** The service each backend operation works on. */
const SERVICE_OF: Readonly<Record<BackendOperation["op"], Service>> = {
  cacheGet: "cache",
  cacheSet: "cache",
  cacheDelete: "cache",
  counterIncrement: "counters",
  counterGet: "counters",
  counterDelete: "counters",
  flagGet: "flags",
  flagSet: "flags",
  flagDelete: "flags",
  kvGetEntry: "kv",
  kvPut: "kv",
  kvDelete: "kv",
  setGet: "sets",
  setAdd: "sets",
  setRemove: "sets",
  setDelete: "sets",
};

/** One key a batch touches, as read and as it will be. */
interface Touched {
  service: Service;
  key: string;
  redisKey: string;
  db: string;
  fingerprint: string;
  /** The value read: a string's bytes (null: absent), or a set's members. */
  read: Buffer | null | string[];
  /** The value now (undefined: absent); `changed` once an operation wrote it. */
  value: unknown;
  changed: boolean;
  /** A cache entry's TTL, when the batch set it. */
  ttl?: number;
}

/** The keys a batch touches, each once, in the order they first appear. */
export function touchedKeys(
  operations: readonly BackendOperation[],
  layout: RedisLayout,
): Array<{ service: Service; key: string; redisKey: string; db: string }> {
  const seen = new Map<string, { service: Service; key: string; redisKey: string; db: string }>();
  for (const { op, args } of operations) {
    const service = SERVICE_OF[op];
    const key = args[0] as string;
    const id = `${service}\0${key}`;
    if (seen.has(id)) continue;
    seen.set(id, {
      service,
      key,
      redisKey: layout.key(service, key),
      db: layout.name === "databases" ? String(layout.database(service)) : "",
    });
  }
  return [...seen.values()];
}

/** The arguments of `READ_STATE` for the touched keys. */
export function readArguments(touched: ReturnType<typeof touchedKeys>): string[] {
  return touched.flatMap(({ service, db }) => [db, service === "sets" ? "set" : "string"]);
}

/** The version of a KV value: the SHA-1 of its bytes (see the Redis backend's module doc). */
export function versionOf(bytes: Uint8Array): string {
  return createHash("sha1").update(bytes).digest("hex");
}

/**
 * Runs the batch over the snapshot: the results in order, and the `APPLY` arguments that write
 * what changed. Throws `AtomicBatchError` for the first operation that fails.
 */
export function runOver(
  operations: readonly BackendOperation[],
  keys: ReturnType<typeof touchedKeys>,
  snapshot: Array<[fingerprint: string, value: Buffer | null | Buffer[]]>,
): { results: unknown[]; applyArguments: (string | Buffer)[] } {
  const touched = new Map<string, Touched>();
  keys.forEach((entry, i) => {
    const [fingerprint, raw] = snapshot[i];
    const read = Array.isArray(raw) ? raw.map((member) => member.toString("utf8")) : raw;
    touched.set(`${entry.service}\0${entry.key}`, {
      ...entry,
      fingerprint,
      read,
      value: initialValue(entry.service, entry.key, read),
      changed: false,
    });
  });
  const results = operations.map((operation, index) => {
    const state = touched.get(`${SERVICE_OF[operation.op]}\0${operation.args[0]}`)!;
    try {
      return apply(operation, state);
    } catch (error) {
      throw new AtomicBatchError(index, error as Error);
    }
  });
  return { results, applyArguments: [...touched.values()].flatMap(plan) };
}

function initialValue(service: Service, key: string, read: Buffer | null | string[]): unknown {
  if (read === null) return undefined;
  if (Array.isArray(read)) return read.length === 0 ? undefined : new Set(read);
  switch (service) {
    case "cache":
      return read.toString("utf8");
    case "counters":
      return parseCounter(key, read.toString("utf8"));
    case "flags":
      return parseFlag(key, read.toString("utf8"));
    default:
      return new Uint8Array(read);
  }
}

function write(state: Touched, value: unknown): void {
  state.value = value;
  state.changed = true;
}

/** One operation over its key's state, as the backend's method would do it. */
function apply({ op, args }: BackendOperation, state: Touched): unknown {
  const key = state.key;
  const value = state.value;
  switch (op) {
    case "cacheGet":
      if (value === undefined) throw notFound("cache", key);
      return value;
    case "cacheSet":
      write(state, args[1]);
      state.ttl = args[2];
      return undefined;
    case "cacheDelete":
      if (value === undefined) throw absent("cache key", key);
      return write(state, undefined);
    case "counterIncrement": {
      const next = addInt64(key, (value as bigint | undefined) ?? 0n, args[1]);
      write(state, next);
      return next;
    }
    case "counterGet":
      return value ?? 0n;
    case "counterDelete":
      if (value === undefined) throw absent("counter", key);
      return write(state, undefined);
    case "flagGet":
      return value ?? false;
    case "flagSet":
      return write(state, args[1]);
    case "flagDelete":
      if (value === undefined) throw absent("flag", key);
      return write(state, undefined);
    case "kvGetEntry":
      if (value === undefined) throw notFound("kv", key);
      return { value: (value as Uint8Array).slice(), version: versionOf(value as Uint8Array) };
    case "kvPut":
      checkCondition(
        "put",
        key,
        args[2],
        value === undefined ? undefined : versionOf(value as Uint8Array),
      );
      return write(state, args[1].slice());
    case "kvDelete":
      checkCondition(
        "delete",
        key,
        args[1],
        value === undefined ? undefined : versionOf(value as Uint8Array),
      );
      if (value === undefined) throw notFound("kv", key);
      return write(state, undefined);
    case "setGet":
      return sortItems([...(value as Set<string> | undefined) ?? []]);
    case "setAdd": {
      const items = new Set(value as Set<string> | undefined);
      const max = args[2] ?? Infinity;
      if (!items.has(args[1]) && items.size >= max) throw setFull(key, args[1], items.size, max);
      items.add(args[1]);
      write(state, items);
      return sortItems([...items]);
    }
    case "setRemove": {
      const items = new Set(value as Set<string> | undefined);
      items.delete(args[1]);
      write(state, items.size === 0 ? undefined : items);
      return sortItems([...items]);
    }
    case "setDelete":
      if (value === undefined) throw absent("set", key);
      return write(state, undefined);
  }
}

/** The `APPLY` arguments of one key: check only, delete, or write its final value. */
function plan(state: Touched): (string | Buffer)[] {
  const head = [state.db, state.fingerprint];
  if (!state.changed) return [...head, "keep", "0"];
  const value = state.value;
  if (value === undefined) return [...head, "del", "0"];
  switch (state.service) {
    case "cache":
      return state.ttl === undefined
        ? [...head, "set", "1", value as string]
        : [...head, "setex", "2", value as string, String(state.ttl)];
    case "counters":
      return [...head, "set", "1", String(value)];
    case "flags":
      return [...head, "set", "1", value ? "true" : "false"];
    case "kv":
      return [...head, "set", "1", Buffer.from(value as Uint8Array)];
    case "sets": {
      const items = [...value as Set<string>];
      return [...head, "sadd", String(items.length), ...items];
    }
  }
}
