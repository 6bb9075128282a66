// Cache and KV values on Deno KV: a head entry per key, large values in chunks, and the batch
// model that swaps heads through the group committer. Private to this folder.
//
// A value too large for one Deno KV entry is written as chunks under a generation id nobody
// else uses, in as many commits as Deno KV's limits need, before its head is written: the first
// of those commits also writes the generation's pending marker (["chunk-pending", gen]), which
// says that no head points at these chunks yet. The head's unit then checks that the marker is
// still the one written (the sweep has not reclaimed the chunks), deletes it, points the head at
// the generation and deletes the chunks of the old one; the old chunks that do not fit in that
// unit get a pending marker of their own and go right after. So every chunk a crash can leave
// behind has a marker, and the sweep (_disk_sweep.ts) finds and deletes them.
//
// A reader reads the head, then the chunks of its generation; when some are gone (an overwrite
// finished in between), it reads the head again. Chunks of a generation never change, so a
// reader that finds all of them has exactly the value the head pointed at.

import { PreconditionFailedError, UnavailableError } from "@purple/protocol/errors";
import type { KvCondition } from "./backend.ts";
import { absent, checkCondition, notFound, quote } from "./_util.ts";
import { retryBusy } from "./_disk_busy.ts";
import type { Answer, BatchModel, Plan } from "./_disk_batch.ts";
import { type GroupCommitter, UnitBuilder } from "./_disk_commits.ts";
import type { PointReader } from "./_disk_reads.ts";
import {
  type ChunkedService,
  chunkPrefix,
  headKey,
  keyBytes,
  KV_MAX_COMMIT_BYTES,
  KV_MAX_COMMIT_KEY_BYTES,
  KV_MAX_COMMIT_MUTATIONS,
  KV_MAX_VALUE_BYTES,
  pendingKey,
} from "./_disk_keys.ts";

/** The bytes in one chunk: Deno KV stores a Uint8Array value as raw bytes, up to 64 KiB. */
export const CHUNK_BYTES = KV_MAX_VALUE_BYTES;

/** Cache values up to this many UTF-16 units are stored inline (2 bytes a unit at worst). */
export const INLINE_CACHE_UNITS = (CHUNK_BYTES - 1024) / 2;

/** Room kept free in every commit, for the entries' encoding and the unforeseen. */
const MARGIN = 1024;

/** Where the chunks of a large value are: the head of a chunked value holds this. */
export interface ChunkRef {
  /** The generation: a UUID, fresh for every write. */
  gen: string;
  /** How many chunks. */
  chunks: number;
  /** The value's length in bytes. */
  size: number;
}

/** The chunks of a value being written, and the versionstamp of their pending marker. */
export interface WrittenChunks extends ChunkRef {
  marker: string;
}

/** The pending marker of a generation no head points at. */
export interface PendingMarker {
  service: ChunkedService;
  key: string;
  chunks: number;
  /** When the chunks were written (ms since the epoch); 0 for chunks being deleted. */
  createdAt: number;
}

/** Tells whether a head value points at chunks (inline values are bytes or have `value`). */
export function isChunkRef(head: unknown): head is ChunkRef {
  return typeof head === "object" && head !== null && typeof (head as ChunkRef).gen === "string";
}

/** How many chunk entries of `size` bytes under `prefix` one commit can hold. */
function perCommit(prefix: Deno.KvKey, size: number): number {
  const key = keyBytes([...prefix, 0]);
  return Math.max(
    1,
    Math.min(
      // Deno KV counts a written key twice in the commit size, and the marker's entry.
      Math.floor((KV_MAX_COMMIT_BYTES - 2 * MARGIN) / (2 * key + size)),
      Math.floor((KV_MAX_COMMIT_KEY_BYTES - 2 * MARGIN) / key),
      KV_MAX_COMMIT_MUTATIONS - 2,
    ),
  );
}

/**
 * Writes `bytes` as chunks of a fresh generation and its pending marker (in the first commit,
 * then the other commits in parallel), and returns where they are. Nothing points at them yet.
 */
export async function writeChunks(
  kv: Deno.Kv,
  service: ChunkedService,
  key: string,
  bytes: Uint8Array,
  options: { gen?: string; expiresAt?: number } = {},
): Promise<WrittenChunks> {
  const { gen = crypto.randomUUID(), expiresAt } = options;
  const prefix = chunkPrefix(service, key, gen);
  const chunks = Math.ceil(bytes.length / CHUNK_BYTES);
  const step = perCommit(prefix, CHUNK_BYTES);
  const marker: PendingMarker = { service, key, chunks, createdAt: Date.now() };
  const commit = (first: number) => {
    const op = kv.atomic();
    if (first === 0) op.set(pendingKey(gen), marker);
    for (let i = first; i < Math.min(first + step, chunks); i++) {
      const chunk = bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES);
      if (expiresAt === undefined) op.set([...prefix, i], chunk);
      else op.set([...prefix, i], chunk, { expireIn: Math.max(1, expiresAt - Date.now()) });
    }
    return retryBusy(() => op.commit()); // Without checks, it succeeds or throws.
  };
  const ref = { gen, chunks, size: bytes.length };
  try {
    const first = await commit(0) as Deno.KvCommitResult;
    const rest: Promise<unknown>[] = [];
    for (let at = step; at < chunks; at += step) rest.push(commit(at));
    const failed = (await Promise.allSettled(rest)).find((r) => r.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    return { ...ref, marker: first.versionstamp };
  } catch (error) {
    await deleteChunks(kv, service, key, ref, 0).catch(() => {}); // Else the sweep does.
    throw error;
  }
}

/**
 * Deletes the chunks `from` onward of a generation nothing points at, then its pending marker,
 * in commits that each fit Deno KV's limits (through the committer when one is given).
 */
export async function deleteChunks(
  kv: Deno.Kv | GroupCommitter,
  service: ChunkedService,
  key: string,
  ref: ChunkRef,
  from: number,
): Promise<void> {
  const prefix = chunkPrefix(service, key, ref.gen);
  const step = perCommit(prefix, 0);
  for (let first = from; first < ref.chunks || first === from; first += step) {
    const unit = new UnitBuilder();
    for (let i = first; i < Math.min(first + step, ref.chunks); i++) unit.delete([...prefix, i]);
    if (first + step >= ref.chunks) unit.delete(pendingKey(ref.gen));
    if ("submit" in kv) await kv.submit(unit.build());
    else {
      const op = kv.atomic();
      for (const mutation of unit.mutations) op.delete(mutation.key);
      await retryBusy(() => op.commit());
    }
  }
}

/**
 * Reads the chunks of `ref` and joins them, or returns `null` when any is missing (an
 * overwrite or a delete removed them after the head was read).
 */
export function readChunks(
  kv: Deno.Kv,
  service: ChunkedService,
  key: string,
  ref: ChunkRef,
): Promise<Uint8Array | null> {
  return retryBusy(() => readChunksOnce(kv, service, key, ref));
}

async function readChunksOnce(
  kv: Deno.Kv,
  service: ChunkedService,
  key: string,
  ref: ChunkRef,
): Promise<Uint8Array | null> {
  const out = new Uint8Array(ref.size);
  let offset = 0;
  let index = 0;
  const entries = kv.list<Uint8Array>(
    { prefix: chunkPrefix(service, key, ref.gen) },
    { batchSize: Math.min(ref.chunks + 1, 1000) },
  );
  for await (const { key: entryKey, value } of entries) {
    const chunk = value instanceof Uint8Array ? value : null;
    if (entryKey[4] !== index || chunk === null || offset + chunk.length > ref.size) return null;
    out.set(chunk, offset);
    offset += chunk.length;
    index++;
  }
  return index === ref.chunks && offset === ref.size ? out : null;
}

// ---------------------------------------------------------------------------------------------
// Values read from their heads

/** How often a value is read again from its head when overwrites keep removing its chunks. */
export const MAX_READ_ATTEMPTS = 100;

/**
 * A cache head: the value inline, or a reference to its UTF-8 chunks; and its expiry (ms since
 * the epoch; Infinity: none, which only a restore writes).
 */
export type CacheHead = { value: string; expiresAt: number } | (ChunkRef & { expiresAt: number });

/** What a value of a service is: the text of a cache value, the bytes of a KV value. */
export type StoredValue<S extends ChunkedService> = S extends "cache" ? string : Uint8Array;

/** A value read whole from its head. */
export interface ValueRead<S extends ChunkedService> {
  /** The value, the reader's own (a copy of an inline KV value, shared by the entry's readers). */
  value: StoredValue<S>;
  /** The head's versionstamp (a KV value's version). */
  versionstamp: string;
  /** When a cache value expires (ms since the epoch; Infinity: never); none for KV values. */
  expiresAt?: number;
}

const decoder = new TextDecoder();

/** Whether a head holds a value at `now`: it is there, and a cache value's has not expired. */
export function holdsValue(head: unknown, now: number): boolean {
  if (head === null || head === undefined) return false;
  const expiresAt = headExpiry(head);
  return expiresAt === undefined || expiresAt > now;
}

/**
 * The value a head holding one points at (see {@linkcode holdsValue}): inline, or joined from
 * its chunks; `null` when they are gone (an overwrite or a delete removed them after the head
 * was read: read the head again). An inline KV value is copied: the value is the caller's own.
 */
export function headValue<S extends ChunkedService>(
  kv: Deno.Kv,
  service: S,
  key: string,
  head: unknown,
): Promise<StoredValue<S> | null> {
  return isChunkRef(head)
    ? chunkedValue(kv, service, key, head)
    : Promise.resolve(inlineValue(service, head));
}

/** The value of an inline head: a KV head is the bytes (copied), a cache head holds the text. */
function inlineValue<S extends ChunkedService>(service: S, head: unknown): StoredValue<S> {
  return (service === "cache"
    ? (head as { value: string }).value
    : (head as Uint8Array).slice()) as StoredValue<S>;
}

/** The value joined from the chunks of `ref`, `null` when any is gone. */
async function chunkedValue<S extends ChunkedService>(
  kv: Deno.Kv,
  service: S,
  key: string,
  ref: ChunkRef,
): Promise<StoredValue<S> | null> {
  const bytes = await readChunks(kv, service, key, ref);
  if (bytes === null) return null;
  return (service === "cache" ? decoder.decode(bytes) : bytes) as StoredValue<S>;
}

/**
 * Reads a cache or KV value whole: its head by `read`, then its chunks; reads the head again
 * when an overwrite removed them meanwhile. `read` is the caller's, so its reads go in the
 * caller's batches (the point reader's `getMany()`); `first`, a head entry the caller already
 * has (from a listing), stands for the first read.
 *
 * @param kv The database the chunks are read from.
 * @param service The value's service.
 * @param key The value's key.
 * @param read Reads the value's head entry.
 * @param options `first`: the head entry already read; `action`: what the caller does, for
 * the error ("read" unless told).
 * @returns The value, or `null` when absent or expired.
 * @throws {UnavailableError} When overwrites removed its chunks during
 * {@linkcode MAX_READ_ATTEMPTS} reads in a row.
 *
 * @example
 * ```ts ignore
 * const found = await readValue(kv, "kv", "k", () => kv.get(headKey("kv", "k")));
 * if (found !== null) console.log(found.value.length, found.versionstamp);
 * ```
 */
export async function readValue<S extends ChunkedService>(
  kv: Deno.Kv,
  service: S,
  key: string,
  read: () => Promise<Deno.KvEntryMaybe<unknown>>,
  options: { first?: Deno.KvEntryMaybe<unknown>; action?: string } = {},
): Promise<ValueRead<S> | null> {
  let entry = options.first ?? await read();
  for (let attempt = 1;; attempt++) {
    const head = entry.value;
    if (!holdsValue(head, Date.now())) return null;
    // An inline value without an await: most reads, which this keeps as cheap as one hop.
    const value = isChunkRef(head)
      ? await chunkedValue(kv, service, key, head)
      : inlineValue(service, head);
    if (value !== null) {
      return { value, versionstamp: entry.versionstamp!, expiresAt: headExpiry(head) };
    }
    if (attempt >= MAX_READ_ATTEMPTS) {
      throw new UnavailableError(
        `Cannot ${options.action ?? "read"} ${service} key ${
          quote(key)
        }: it was overwritten during ${attempt} reads in a row`,
      );
    }
    entry = await read();
  }
}

// ---------------------------------------------------------------------------------------------
// Head swaps, batched per key

/**
 * A write of a head: a put of an inline value or of chunks already written, or a delete; a KV
 * write may carry a condition on the value's version (the head's versionstamp).
 */
export type HeadOp =
  | {
    type: "put";
    head: unknown;
    chunks?: WrittenChunks;
    expiresAt?: number;
    condition?: KvCondition;
  }
  | { type: "delete"; condition?: KvCondition };

/** What is known of a key's head: its versionstamp, whether it is there and where its chunks
 * are (not its value, which the batches never need). */
export interface HeadState {
  versionstamp: string | null;
  present: boolean;
  /** The chunks the head points at, `null` for an inline value. */
  ref: ChunkRef | null;
  /** When Deno KV may remove the head (cache values). */
  expiresAt?: number;
  /** Generations of this batch whose pending marker is gone: their chunks were reclaimed. */
  lost?: ReadonlySet<string>;
}

/** The chunk reference of a head, without its other fields. */
function pick(ref: ChunkRef): ChunkRef {
  return { gen: ref.gen, chunks: ref.chunks, size: ref.size };
}

function headExpiry(head: unknown): number | undefined {
  const expiresAt = (head as { expiresAt?: unknown } | null)?.expiresAt;
  return typeof expiresAt === "number" ? expiresAt : undefined;
}

/**
 * The batch model of the heads of one service: puts and deletes of a key, applied in order;
 * the last one's head is written, each delete of a missing value is refused alone.
 */
export function headModel(
  reader: PointReader,
  committer: GroupCommitter,
  service: ChunkedService,
): BatchModel<HeadOp, HeadState, void> {
  return {
    async read(key, ops) {
      const markers = ops.flatMap((op) => op.type === "put" && op.chunks ? [op.chunks] : []);
      const [head, ...entries] = await Promise.all([
        reader.get(headKey(service, key)),
        ...markers.map((chunks) => reader.get(pendingKey(chunks.gen))),
      ]);
      const lost = new Set(
        markers.filter((chunks, i) => entries[i].versionstamp !== chunks.marker)
          .map((chunks) => chunks.gen),
      );
      return {
        versionstamp: head.versionstamp,
        present: head.versionstamp !== null,
        ref: isChunkRef(head.value) ? pick(head.value) : null,
        expiresAt: headExpiry(head.value),
        lost,
      };
    },
    fresh: (state) => state.expiresAt === undefined || state.expiresAt > Date.now(),
    plan: (key, state, ops) => planHeads(committer, service, key, state, ops),
  };
}

/** Whether a head read or remembered holds a value now (a cache value until it expires). */
export function headPresent(state: HeadState, now: number): boolean {
  return state.present && (state.expiresAt === undefined || state.expiresAt > now);
}

/**
 * Checks a KV write's condition against the head as planned: its versionstamp, or a write of
 * this same batch or atomic batch (whose version is the commit's: `ifMatch` a version then
 * never holds).
 * @throws {PreconditionFailedError} When it does not hold.
 */
export function checkHeadCondition(
  action: "put" | "delete",
  key: string,
  condition: KvCondition | undefined,
  version: string | null | "written",
): void {
  if (version === "written" && condition?.ifMatch !== undefined && condition.ifMatch !== "*") {
    throw new PreconditionFailedError(
      `Cannot ${action} KV key ${quote(key)}: it was written since version ${
        quote(condition.ifMatch)
      } (by another write that arrived with this one)`,
    );
  }
  checkCondition(action, key, condition, version ?? undefined);
}

function planHeads(
  committer: GroupCommitter,
  service: ChunkedService,
  key: string,
  state: HeadState,
  ops: readonly HeadOp[],
): Plan<HeadState, void> {
  let last: HeadOp | undefined; // The op whose result the head ends with.
  let present = headPresent(state, Date.now());
  const superseded: ChunkRef[] = []; // Chunks written in this batch that no head will hold.
  const answers: Answer<void>[] = ops.map((op) => {
    if (op.type === "put" && op.chunks !== undefined && state.lost?.has(op.chunks.gen)) {
      return { error: reclaimed(service, key) };
    }
    try {
      const version = !present ? null : last === undefined ? state.versionstamp : "written";
      checkHeadCondition(op.type, key, op.condition, version);
    } catch (error) {
      if (op.type === "put" && op.chunks !== undefined) superseded.push(op.chunks);
      return { error: error as Error };
    }
    if (op.type === "delete" && !present) {
      return { error: service === "kv" ? notFound(service, key) : absent("cache key", key) };
    }
    if (last?.type === "put" && last.chunks !== undefined) superseded.push(last.chunks);
    last = op;
    present = op.type === "put";
    return { value: undefined };
  });
  const unit = new UnitBuilder().check(headKey(service, key), state.versionstamp);
  let leftover: { ref: ChunkRef; from: number } | undefined;
  if (last !== undefined) {
    if (last.type === "delete") unit.delete(headKey(service, key));
    else {
      unit.set(headKey(service, key), last.head, last.expiresAt);
      if (last.chunks !== undefined) {
        unit.check(pendingKey(last.chunks.gen), last.chunks.marker);
        unit.delete(pendingKey(last.chunks.gen));
      }
    }
    // The chunks of the head replaced: as many deletes as fit, a marker for the rest.
    if (state.ref !== null) {
      const old = state.ref;
      const prefix = chunkPrefix(service, key, old.gen);
      const marker: PendingMarker = { service, key, chunks: old.chunks, createdAt: 0 };
      const room = unit.roomForDeletes(keyBytes([...prefix, 0]), { mutations: 1, bytes: 1024 });
      const count = Math.min(old.chunks, room);
      for (let i = 0; i < count; i++) unit.delete([...prefix, i]);
      if (count < old.chunks) {
        unit.set(pendingKey(old.gen), marker);
        leftover = { ref: old, from: count };
      }
    }
  }
  const end = last;
  return {
    unit: unit.build(),
    answers,
    next(versionstamp) {
      if (end === undefined) return state;
      if (end.type === "delete") return { versionstamp: null, present: false, ref: null };
      const ref = end.chunks === undefined ? null : pick(end.chunks);
      return { versionstamp, present: true, ref, expiresAt: end.expiresAt };
    },
    async after() {
      if (leftover !== undefined) {
        await deleteChunks(committer, service, key, leftover.ref, leftover.from);
      }
      for (const ref of superseded) await deleteChunks(committer, service, key, ref, 0);
    },
  };
}

function reclaimed(service: ChunkedService, key: string): UnavailableError {
  return new UnavailableError(
    `Cannot write ${service} key ${
      quote(key)
    }: its chunks were reclaimed by the sweep before the value was stored (the write took longer than the grace period), try again`,
  );
}
