// Large values on Deno KV: chunks under a fresh generation, a head entry that points at them,
// and an atomic swap of the head. Private to this folder.
//
// A value too large for one Deno KV entry is written as chunks under a generation id nobody
// else uses, in as many commits as Deno KV's commit limits need. Then one atomic commit checks
// that the head is still the one read, points it at the new generation and deletes the chunks
// of the old one (the few an unusually large value leaves over go in the next commits). A
// reader reads the head, then the chunks of its generation; when some are gone (an overwrite
// finished in between), it reads the head again. Chunks of a generation never change, so a
// reader that finds all of them has exactly the value the head pointed at.

import { retryBusy } from "./_disk_busy.ts";
import {
  type ChunkedService,
  chunkPrefix,
  headKey,
  keyBytes,
  KV_MAX_COMMIT_BYTES,
  KV_MAX_COMMIT_KEY_BYTES,
  KV_MAX_COMMIT_MUTATIONS,
  KV_MAX_VALUE_BYTES,
} from "./_disk_keys.ts";

/** The bytes in one chunk: Deno KV stores a Uint8Array value as raw bytes, up to 64 KiB. */
export const CHUNK_BYTES = KV_MAX_VALUE_BYTES;

/** Room kept free in every commit, for the head entry's encoding and the unforeseen. */
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

/** Tells whether a head value points at chunks (inline values are bytes or have `value`). */
export function isChunkRef(head: unknown): head is ChunkRef {
  return typeof head === "object" && head !== null && typeof (head as ChunkRef).gen === "string";
}

/** Options of a chunk or head write. */
export interface WriteOptions {
  /** The moment the entries may go, in milliseconds since the epoch (cache entries). */
  expiresAt?: number;
}

function kvOptions(options: WriteOptions): { expireIn: number } | undefined {
  if (options.expiresAt === undefined) return undefined;
  return { expireIn: Math.max(1, options.expiresAt - Date.now()) };
}

/**
 * How many chunk entries of `size` bytes under `prefix` one commit can hold (Deno KV counts a
 * written key twice in the commit size).
 */
function perCommit(
  prefix: Deno.KvKey,
  size: number,
  reserved: { bytes: number; keyBytes: number } = { bytes: 0, keyBytes: 0 },
): number {
  const key = keyBytes([...prefix, 0]);
  return Math.max(
    1,
    Math.min(
      Math.floor((KV_MAX_COMMIT_BYTES - MARGIN - reserved.bytes) / (2 * key + size)),
      Math.floor((KV_MAX_COMMIT_KEY_BYTES - MARGIN - reserved.keyBytes) / key),
      KV_MAX_COMMIT_MUTATIONS - 2,
    ),
  );
}

/**
 * Writes `bytes` as chunks of a fresh generation, in parallel commits that each fit Deno KV's
 * limits, and returns where they are. Nothing points at them yet.
 */
export async function writeChunks(
  kv: Deno.Kv,
  service: ChunkedService,
  key: string,
  bytes: Uint8Array,
  options: WriteOptions = {},
): Promise<ChunkRef> {
  const gen = crypto.randomUUID();
  const prefix = chunkPrefix(service, key, gen);
  const chunks = Math.ceil(bytes.length / CHUNK_BYTES);
  const step = perCommit(prefix, CHUNK_BYTES);
  const expiry = kvOptions(options);
  const commits: Promise<Deno.KvCommitResult | Deno.KvCommitError>[] = [];
  for (let first = 0; first < chunks; first += step) {
    const op = kv.atomic();
    for (let i = first; i < Math.min(first + step, chunks); i++) {
      op.set([...prefix, i], bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES), expiry);
    }
    commits.push(retryBusy(() => op.commit())); // Without checks, it succeeds or throws.
  }
  const ref = { gen, chunks, size: bytes.length };
  const failed = (await Promise.allSettled(commits)).find((r) => r.status === "rejected");
  if (failed !== undefined) {
    await discardChunks(kv, service, key, ref);
    throw failed.reason;
  }
  return ref;
}

/** Deletes the chunks of a generation nothing points at, as far as the database lets it. */
async function discardChunks(
  kv: Deno.Kv,
  service: ChunkedService,
  key: string,
  ref: ChunkRef,
): Promise<void> {
  await deleteChunks(kv, chunkPrefix(service, key, ref.gen), 0, ref.chunks).catch(() => {});
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

async function deleteChunks(
  kv: Deno.Kv,
  prefix: Deno.KvKey,
  from: number,
  to: number,
): Promise<void> {
  const step = perCommit(prefix, 0);
  const commits: Promise<Deno.KvCommitResult | Deno.KvCommitError>[] = [];
  for (let first = from; first < to; first += step) {
    const op = kv.atomic();
    for (let i = first; i < Math.min(first + step, to); i++) op.delete([...prefix, i]);
    commits.push(retryBusy(() => op.commit()));
  }
  await Promise.all(commits);
}

/**
 * Replaces the head of a value (or deletes it when `next` is `undefined`) in one atomic commit
 * that checks the head did not change since it was read and deletes the old generation's
 * chunks; on a conflict it reads the head again and retries.
 *
 * @returns Whether there was a head before (a delete of a missing value changes nothing).
 */
export async function replaceHead(
  kv: Deno.Kv,
  service: ChunkedService,
  key: string,
  next: unknown,
  options: WriteOptions = {},
): Promise<boolean> {
  const head = headKey(service, key);
  // The head: an inline value up to a whole entry, its key written (counted twice) and checked.
  const reserved = { bytes: KV_MAX_VALUE_BYTES + 3 * keyBytes(head), keyBytes: 2 * keyBytes(head) };
  for (;;) {
    let old: Deno.KvEntryMaybe<unknown>;
    let doomed: Deno.KvKey[];
    try {
      old = await retryBusy(() => kv.get(head));
      if (next === undefined && old.versionstamp === null) return false;
      const op = kv.atomic().check(old);
      if (next === undefined) op.delete(head);
      else op.set(head, next, kvOptions(options));
      doomed = firstChunks(service, key, old.value, reserved);
      for (const chunk of doomed) op.delete(chunk);
      if (!(await retryBusy(() => op.commit())).ok) continue;
    } catch (error) {
      if (isChunkRef(next)) await discardChunks(kv, service, key, next);
      throw error;
    }
    // The chunks the commit could not hold: nothing points at them any more.
    if (isChunkRef(old.value) && doomed.length < old.value.chunks) {
      const prefix = chunkPrefix(service, key, old.value.gen);
      await deleteChunks(kv, prefix, doomed.length, old.value.chunks);
    }
    return old.versionstamp !== null;
  }
}

/** The keys of the first chunks of a head's generation, as many as fit beside the head. */
function firstChunks(
  service: ChunkedService,
  key: string,
  head: unknown,
  reserved: { bytes: number; keyBytes: number },
): Deno.KvKey[] {
  if (!isChunkRef(head)) return [];
  const prefix = chunkPrefix(service, key, head.gen);
  const count = Math.min(head.chunks, perCommit(prefix, 0, reserved));
  return Array.from({ length: count }, (_, i) => [...prefix, i]);
}
