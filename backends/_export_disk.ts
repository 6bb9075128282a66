// Export and restore on Deno KV (`purple export`, `purple import`). Private to this folder.
//
// The export lists each service's entries in key order (`kv.list`, a batch at a time, never the
// whole database): the cache and KV heads (a chunked value is read whole from its chunks, and
// read again from its head when an overwrite removed them meanwhile), the counters, the flags,
// and the sets from their items (`["set", name, digest]`: the items of one set are one run of
// entries), skipping expired cache entries. It holds one list batch and one entry at a time.
//
// The restore writes through the group committer, as every write of the backend: counters as
// blind units (the value, no read, no check), flags, KV and cache values through their per-key
// batchers (as `flagSet`, `kvPut` and a cache put with a TTL in ms do, large values chunked),
// and sets as units of their own: the items to add, then those to remove, in as many units as
// Deno KV's commit limits need, each checking the guard the one before wrote (another writer
// of the set in between makes the set start over), each writing the guard with the set's count
// so far. The entries of one restore go at once: their units share commits.

import { UnavailableError } from "@purple/protocol/errors";
import { quote } from "./_util.ts";
import { type CacheHead, isChunkRef, readValue, type ValueRead } from "./_disk_blob.ts";
import { COMMIT_LIMIT, type GroupCommitter, UnitBuilder } from "./_disk_commits.ts";
import { digest, readItems } from "./_disk_set.ts";
import { counterValue } from "./_disk_counter.ts";
import { retryBusy } from "./_disk_busy.ts";
import type { AtomicService } from "./_disk_atomic.ts";
import type { Found } from "./_export_pages.ts";
import {
  type ChunkedService,
  counterKey,
  headKey,
  keyBytes,
  KV_MAX_READ_KEYS,
  setGuardKey,
  setPrefix,
} from "./_disk_keys.ts";

/** How often a set's restore starts over when another writer keeps changing the set. */
const MAX_SET_ATTEMPTS = 20;

/** Every entry of the database, service after service, each in key order. */
export async function* readEntries(kv: Deno.Kv): AsyncGenerator<Found> {
  yield* readCache(kv);
  for await (const { key, value } of kv.list({ prefix: ["counter"] }, { batchSize: 1000 })) {
    if (key.length !== 2 || typeof key[1] !== "string") continue;
    yield { service: "counters", key: key[1], value: counterValue(value) };
  }
  for await (const { key, value } of kv.list({ prefix: ["flag"] }, { batchSize: 1000 })) {
    if (key.length !== 2 || typeof key[1] !== "string") continue;
    yield { service: "flags", key: key[1], value: value === true };
  }
  // KV heads are up to 64 KiB each: smaller list batches.
  for await (const entry of kv.list({ prefix: ["kv"] }, { batchSize: 100 })) {
    const name = entry.key[1];
    if (entry.key.length !== 2 || typeof name !== "string") continue;
    const found = await readWhole(kv, "kv", name, entry);
    if (found !== null) yield { service: "kv", key: name, value: found.value };
  }
  yield* readSets(kv);
}

async function* readCache(kv: Deno.Kv): AsyncGenerator<Found> {
  for await (const entry of kv.list<CacheHead>({ prefix: ["cache"] }, { batchSize: 100 })) {
    const name = entry.key[1];
    if (entry.key.length !== 2 || typeof name !== "string") continue;
    const found = await readWhole(kv, "cache", name, entry);
    if (found === null) continue;
    const ttlMs = found.expiresAt! - Date.now();
    if (!(ttlMs > 0)) continue; // Expired: Deno KV removes it in time.
    yield {
      service: "cache",
      key: name,
      value: found.value,
      ttlMs: Number.isFinite(ttlMs) ? ttlMs : null,
    };
  }
}

/**
 * The value of a listed KV or cache head, read from its chunks when it has some (and from its
 * head again, when an overwrite removed them meanwhile); `null` when the value is gone.
 */
function readWhole<S extends ChunkedService>(
  kv: Deno.Kv,
  service: S,
  key: string,
  listed: Deno.KvEntry<unknown>,
): Promise<ValueRead<S> | null> {
  const read = () => retryBusy(() => kv.get(headKey(service, key)));
  return readValue(kv, service, key, read, { first: listed, action: "export" });
}

/** The sets, from their items: `["set", name, digest]`, one run of entries a set. */
async function* readSets(kv: Deno.Kv): AsyncGenerator<Found> {
  let name: string | undefined;
  let items: string[] = [];
  for await (const { key, value } of kv.list<string>({ prefix: ["set"] }, { batchSize: 1000 })) {
    const set = key[1];
    if (key.length !== 3 || typeof set !== "string" || typeof value !== "string") continue;
    if (set !== name) {
      if (name !== undefined) yield { service: "sets", key: name, value: items.sort() };
      name = set;
      items = [];
    }
    items.push(value);
  }
  if (name !== undefined) yield { service: "sets", key: name, value: items.sort() };
}

/** What the restore needs of the disk backend. */
export interface RestoreContext {
  kv: Deno.Kv;
  committer: GroupCommitter;
  /** Told of every entry written, once committed (to forget remembered states). */
  changed(service: AtomicService, key: string): void;
}

/** Reads one entry; the reads asked in one turn go together (see {@linkcode bulkReader}). */
export type BulkRead = <T>(key: Deno.KvKey) => Promise<Deno.KvEntryMaybe<T>>;

/**
 * A reader for one restore: the reads asked in one turn go at once, ten keys a `getMany()`,
 * all in flight together (the backend's point reader keeps two in flight, which paces a
 * restore of a thousand entries at its reads).
 */
export function bulkReader(kv: Deno.Kv): BulkRead {
  let pending: {
    key: Deno.KvKey;
    resolve: (entry: Deno.KvEntryMaybe<unknown>) => void;
    reject: (error: unknown) => void;
  }[] = [];
  const flush = () => {
    const reads = pending;
    pending = [];
    for (let first = 0; first < reads.length; first += KV_MAX_READ_KEYS) {
      const part = reads.slice(first, first + KV_MAX_READ_KEYS);
      retryBusy(() => kv.getMany(part.map((read) => read.key))).then(
        (entries) => part.forEach((read, i) => read.resolve(entries[i])),
        (error) => part.forEach((read) => read.reject(error)),
      );
    }
  };
  return <T>(key: Deno.KvKey) =>
    new Promise<Deno.KvEntryMaybe<T>>((resolve, reject) => {
      if (pending.length === 0) queueMicrotask(flush);
      pending.push({
        key,
        resolve: resolve as (entry: Deno.KvEntryMaybe<unknown>) => void,
        reject,
      });
    });
}

/**
 * Writes an inline KV or cache head in a unit that checks the head as read: true when done;
 * false when the key needs the backend's own put (its value was chunked, or another writer
 * changed it meanwhile), whose unit also deletes old chunks.
 */
export async function restoreHead(
  context: RestoreContext,
  read: BulkRead,
  service: ChunkedService,
  key: string,
  head: unknown,
  expiresAt: number | undefined,
): Promise<boolean> {
  const current = await read(headKey(service, key));
  if (isChunkRef(current.value)) return false;
  const unit = new UnitBuilder().check(headKey(service, key), current.versionstamp)
    .set(headKey(service, key), head, expiresAt);
  const outcome = await context.committer.submit(unit.build());
  if (outcome.ok) context.changed(service, key);
  return outcome.ok;
}

/** Sets a counter to a value: a blind unit, no read, no check. */
export async function restoreCounter(
  context: RestoreContext,
  key: string,
  value: bigint,
): Promise<void> {
  await context.committer.submit(new UnitBuilder().set(counterKey(key), value).build());
  context.changed("counter", key);
}

/**
 * Makes a set hold exactly `items`: reads what it holds, then adds what is missing and removes
 * what is not wanted, in units that fit one commit each, each checked against the guard.
 */
export async function restoreSet(
  context: RestoreContext,
  read: BulkRead,
  name: string,
  items: readonly string[],
): Promise<void> {
  try {
    for (let attempt = 1; attempt <= MAX_SET_ATTEMPTS; attempt++) {
      if (await restoreSetOnce(context, read, name, items)) return;
    }
  } finally {
    context.changed("set", name);
  }
  throw new UnavailableError(
    `Cannot import set ${
      quote(name)
    }: it was changed by another writer ${MAX_SET_ATTEMPTS} times in a row`,
  );
}

/** One attempt: false when another writer changed the set in between. */
async function restoreSetOnce(
  context: RestoreContext,
  read: BulkRead,
  name: string,
  items: readonly string[],
): Promise<boolean> {
  const guard = await read<number>(setGuardKey(name));
  const current = guard.versionstamp === null
    ? []
    : await retryBusy(() => readItems(context.kv, name));
  const has = new Set(current);
  const wanted = new Set(items);
  const additions = items.filter((item) => !has.has(item));
  const removals = current.filter((item) => !wanted.has(item));
  if (additions.length === 0 && removals.length === 0 && guard.value === items.length) return true;
  // Additions first: the count never drops to 0 on the way (a guard of 0 is a set with none).
  const changes = [
    ...additions.map((item) => ({ add: true, item })),
    ...removals.map((item) => ({ add: false, item })),
  ];
  const itemKey = keyBytes([...setPrefix(name), "0".repeat(64)]);
  const guardKey = keyBytes(setGuardKey(name));
  let versionstamp = guard.versionstamp;
  let count = current.length;
  let at = 0;
  do {
    const unit = new UnitBuilder().check(setGuardKey(name), versionstamp);
    for (; at < changes.length; at++) {
      const { add, item } = changes[at];
      const bytes = add ? 2 * itemKey + 2 * item.length + 8 : itemKey;
      const full = unit.size.mutations + 2 > COMMIT_LIMIT.mutations ||
        unit.size.bytes + bytes + 3 * guardKey + 64 > COMMIT_LIMIT.bytes ||
        unit.size.keyBytes + (add ? itemKey : 0) + guardKey > COMMIT_LIMIT.keyBytes;
      if (full && unit.size.mutations > 0) break;
      if (add) unit.set([...setPrefix(name), digest(item)], item);
      else unit.delete([...setPrefix(name), digest(item)]);
      count += add ? 1 : -1;
    }
    unit.set(setGuardKey(name), count);
    const outcome = await context.committer.submit(unit.build());
    if (!outcome.ok) return false;
    versionstamp = outcome.versionstamp;
  } while (at < changes.length);
  return true;
}
