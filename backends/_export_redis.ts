// Export from Redis (`purple export`), never blocking it. Private to this folder.
//
// Each service's keys are found with `SCAN ... MATCH` (never `KEYS`), a batch of about 1000 at
// a time, on the service's database, or on every master of a cluster in turn (each master
// answers for the keys it holds: its reads go to it, in one pipeline). Then, for each batch:
//
// - cache and KV: `STRLEN` of every key in one pipeline, then the values in pipelines of at most
//   4 MiB of replies (`GET`, and `PTTL` right after it for the cache: -1 is no expiry, -2 gone);
// - counters and flags: `GET` in one pipeline, read as the backend reads them;
// - sets: `SSCAN key 0 COUNT 1000` in one pipeline (a small set comes whole), then `SSCAN` on
//   from each cursor that is not 0 (a large set, 1000 items a call).
//
// A key deleted or expired between the SCAN and the read is left out. A key of another Redis
// type, or a counter or flag Purple cannot read, is reported as unreadable. SCAN gives every key
// present during the whole scan at least once: a key may come twice when Redis resizes its
// table meanwhile (its entry is then exported twice, which an import writes twice, harmlessly).

import type { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import type { RedisLayout, Service } from "./_redis_layout.ts";
import { SERVICES } from "./_redis_layout.ts";
import { counterOf, unreadableReason, WRONG_TYPE } from "./_redis_util.ts";
import { parseGoBool } from "@purple/protocol/text";
import type { Found } from "./_export_pages.ts";

/** How many keys one SCAN call looks at, and how many items one SSCAN call. */
const SCAN_COUNT = 1000;

/** The most bytes of values one pipeline of reads asks for (besides one larger value). */
const PIPELINE_BYTES = 4 * 1024 * 1024;

/** What the export needs of the Redis backend. */
export interface RedisExportContext {
  layout: RedisLayout;
  /** The connections that hold a service's keys: its database's, or every master's. */
  clients(service: Service): Redis[];
  /**
   * Runs a call on a service's connection as the backend runs its commands (noticed by its
   * stall watchdog; errors typed: a Redis that is away is `UnavailableError`).
   */
  run<T>(service: Service, call: () => Promise<T>): Promise<T>;
}

/** A key found by SCAN: the Purple key and its Redis key. */
interface ScannedKey {
  key: string;
  redisKey: string;
}

/** Every entry of every service, service after service. */
export async function* readRedis(context: RedisExportContext): AsyncGenerator<Found> {
  for (const service of SERVICES) {
    const pattern = context.layout.match(service);
    for (const client of context.clients(service)) {
      let cursor = "0";
      do {
        const [next, redisKeys] = await context.run(
          service,
          () => client.scan(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT),
        );
        cursor = String(next);
        const keys: ScannedKey[] = [];
        for (const redisKey of new Set(redisKeys)) {
          const key = context.layout.purpleKey(service, redisKey);
          if (key !== undefined) keys.push({ key, redisKey });
        }
        if (keys.length > 0) yield* readKeys(context, service, client, keys);
      } while (cursor !== "0");
    }
  }
}

type Reply = [error: Error | null, value: unknown];

/** Runs a pipeline built by `build` on `client`, through the backend. */
async function pipelined(
  context: RedisExportContext,
  service: Service,
  client: Redis,
  build: (pipeline: ReturnType<Redis["pipeline"]>) => void,
): Promise<Reply[]> {
  return await context.run(service, async () => {
    const pipeline = client.pipeline();
    build(pipeline);
    const replies = await pipeline.exec();
    if (replies === null) throw new Error("the pipeline was aborted");
    return replies as Reply[];
  });
}

/** Whether a reply's error says the key holds another Redis type. */
function isWrongType(error: Error | null): boolean {
  return error !== null && error.message.startsWith("WRONGTYPE");
}

function unreadable(service: Service, key: string, reason: string): Found {
  return { unreadable: true, service, key, reason };
}

async function* readKeys(
  context: RedisExportContext,
  service: Service,
  client: Redis,
  keys: ScannedKey[],
): AsyncGenerator<Found> {
  switch (service) {
    case "cache":
    case "kv":
      yield* readStrings(context, service, client, keys);
      return;
    case "counters":
    case "flags": {
      const replies = await pipelined(context, service, client, (pipeline) => {
        for (const { redisKey } of keys) pipeline.get(redisKey);
      });
      for (const [i, { key }] of keys.entries()) {
        const [error, raw] = replies[i];
        if (isWrongType(error)) yield unreadable(service, key, WRONG_TYPE);
        else if (error !== null) throw error;
        else if (raw === null) continue; // Deleted since the SCAN.
        else if (service === "counters") {
          const value = counterOf(raw as string);
          yield value === undefined
            ? unreadable(service, key, unreadableReason(service, raw as string))
            : { service, key, value };
        } else {
          const value = parseGoBool(raw as string);
          yield value === undefined
            ? unreadable(service, key, unreadableReason(service, raw as string))
            : { service, key, value };
        }
      }
      return;
    }
    case "sets":
      yield* readSets(context, client, keys);
  }
}

/** Cache and KV values: their lengths first, then the values in pipelines of bounded size. */
async function* readStrings(
  context: RedisExportContext,
  service: "cache" | "kv",
  client: Redis,
  keys: ScannedKey[],
): AsyncGenerator<Found> {
  const lengths = await pipelined(context, service, client, (pipeline) => {
    for (const { redisKey } of keys) pipeline.strlen(redisKey);
  });
  let group: ScannedKey[] = [];
  let bytes = 0;
  for (const [i, found] of keys.entries()) {
    const [error, length] = lengths[i];
    if (isWrongType(error)) {
      yield unreadable(service, found.key, WRONG_TYPE);
      continue;
    }
    if (error !== null) throw error;
    if (Number(length) === 0) continue; // Gone (Purple never stores an empty value).
    if (group.length > 0 && bytes + Number(length) > PIPELINE_BYTES) {
      yield* readValues(context, service, client, group);
      group = [];
      bytes = 0;
    }
    group.push(found);
    bytes += Number(length);
  }
  if (group.length > 0) yield* readValues(context, service, client, group);
}

async function* readValues(
  context: RedisExportContext,
  service: "cache" | "kv",
  client: Redis,
  keys: ScannedKey[],
): AsyncGenerator<Found> {
  const replies = await pipelined(context, service, client, (pipeline) => {
    for (const { redisKey } of keys) {
      if (service === "kv") pipeline.getBuffer(redisKey);
      else pipeline.get(redisKey).pttl(redisKey);
    }
  });
  const step = service === "kv" ? 1 : 2;
  for (const [i, { key }] of keys.entries()) {
    const [error, value] = replies[i * step];
    if (isWrongType(error)) {
      yield unreadable(service, key, WRONG_TYPE);
      continue;
    }
    if (error !== null) throw error;
    if (value === null) continue; // Deleted or expired since the SCAN.
    if (service === "kv") {
      const bytes = value as Buffer;
      yield { service, key, value: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) };
      continue;
    }
    const [ttlError, pttl] = replies[i * step + 1];
    if (ttlError !== null) throw ttlError;
    const ttlMs = Number(pttl);
    if (ttlMs === -2 || ttlMs === 0) continue; // Expired between the two reads.
    yield { service, key, value: value as string, ttlMs: ttlMs === -1 ? null : ttlMs };
  }
}

/** Sets: the first SSCAN of each in one pipeline (small sets come whole), then the large ones. */
async function* readSets(
  context: RedisExportContext,
  client: Redis,
  keys: ScannedKey[],
): AsyncGenerator<Found> {
  const replies = await pipelined(context, "sets", client, (pipeline) => {
    for (const { redisKey } of keys) pipeline.sscan(redisKey, "0", "COUNT", SCAN_COUNT);
  });
  for (const [i, { key, redisKey }] of keys.entries()) {
    const [error, reply] = replies[i];
    if (isWrongType(error)) {
      yield unreadable("sets", key, WRONG_TYPE);
      continue;
    }
    if (error !== null) throw error;
    let [cursor, items] = reply as [string, string[]];
    const all = new Set(items);
    while (String(cursor) !== "0") {
      [cursor, items] = await context.run(
        "sets",
        () => client.sscan(redisKey, cursor, "COUNT", SCAN_COUNT),
      );
      for (const item of items) all.add(item);
    }
    if (all.size > 0) yield { service: "sets", key, value: [...all].sort() };
  }
}
