// Atomic batches on Deno KV: all of a batch's operations in one commit, or none. Private to
// this folder.
//
// Optimistic, like the per-key batches: the batch reads every entry it depends on (a counter, a
// flag, a KV or cache head, a set's guard and items), runs here over what it read (int64
// arithmetic, the KV conditions, the set limit, the deletes of absent keys: any failure fails
// the batch before anything is written), and submits one unit to the group committer: a check
// of every entry read (its versionstamp) and the final state of every entry changed. When
// another writer changed an entry in between (another process, a single operation of this
// one), the unit's check fails and the batch runs again from a fresh read. A batch that fails,
// or only reads, commits nothing: its entries are read again, and it stands if none moved (all
// the second reads start after the first ones ended, so the entries held those values together
// at one moment), else it runs again.
//
// Large values are written first, as single puts do: the final value of each KV or cache key
// written by the batch, when larger than one entry (or when the inline values would not fit one
// commit), becomes chunks of a fresh generation with a pending marker, in commits of their own;
// the batch's unit then checks each marker and points the heads at them. Chunks of values the
// batch replaces are deleted in the same unit when there is room, else marked and deleted
// right after. A batch that fails deletes the chunks it wrote before it answers.
//
// One Deno KV commit holds 100 checks, 1000 mutations, 800 KiB and 80 KiB of written keys: a
// batch whose unit does not fit (more than about 100 keys read, a set delete of about 1000
// items, ...) is refused with ValueTooLargeError, nothing changed. Entries only written blindly
// (flags set, never read) need no read nor check.
//
// Batches of this process that share an entry run one after the other (in arrival order), so
// that they do not fail each other's checks; the others share commits as every unit does.

import type { KvEntry } from "@purple/protocol";
import { UnavailableError, ValueTooLargeError } from "@purple/protocol/errors";
import { AtomicBatchError, type BackendOperation } from "./backend.ts";
import { absent, addInt64, notFound, quote, setFull, sortItems } from "./_util.ts";
import {
  checkHeadCondition,
  CHUNK_BYTES,
  type ChunkRef,
  deleteChunks,
  headValue,
  holdsValue,
  INLINE_CACHE_UNITS,
  isChunkRef,
  type PendingMarker,
  writeChunks,
  type WrittenChunks,
} from "./_disk_blob.ts";
import {
  COMMIT_LIMIT,
  type GroupCommitter,
  type Unit,
  UnitBuilder,
  type UnitSize,
} from "./_disk_commits.ts";
import type { PointReader } from "./_disk_reads.ts";
import { digest, readItems } from "./_disk_set.ts";
import { counterValue } from "./_disk_counter.ts";
import { retryBusy } from "./_disk_busy.ts";
import {
  type ChunkedService,
  chunkPrefix,
  counterKey,
  flagKey,
  headKey,
  keyBytes,
  KV_MAX_COMMIT_BYTES,
  KV_MAX_COMMIT_CHECKS,
  KV_MAX_COMMIT_KEY_BYTES,
  KV_MAX_COMMIT_MUTATIONS,
  pendingKey,
  setGuardKey,
  setPrefix,
} from "./_disk_keys.ts";

/** The kinds of entry a batch touches. */
export type AtomicService = "cache" | "counter" | "flag" | "kv" | "set";

/** What atomic batches need of the disk backend. */
export interface AtomicContext {
  kv: Deno.Kv;
  reader: PointReader;
  committer: GroupCommitter;
  /** Generations of chunks being written: the sweep leaves them alone. */
  writing: Set<string>;
  /** Told of every entry a batch changed, once committed (to forget remembered states). */
  changed(service: AtomicService, key: string): void;
}

/** A generation id of the right length, for estimates. */
const GEN_SAMPLE = "00000000-0000-0000-0000-000000000000";

/** How often a batch runs again when its entries keep changing under it. */
const MAX_ATTEMPTS = 100;

/** The inline values (KV bytes, cache strings) one unit may carry; larger sums are chunked. */
const INLINE_BUDGET = 512 * 1024;

const SERVICE_OF: Readonly<Record<BackendOperation["op"], AtomicService>> = {
  cacheGet: "cache",
  cacheSet: "cache",
  cacheDelete: "cache",
  counterIncrement: "counter",
  counterGet: "counter",
  counterDelete: "counter",
  flagGet: "flag",
  flagSet: "flag",
  flagDelete: "flag",
  kvGetEntry: "kv",
  kvPut: "kv",
  kvDelete: "kv",
  setGet: "set",
  setAdd: "set",
  setRemove: "set",
  setDelete: "set",
};

const READS = new Set<BackendOperation["op"]>([
  "cacheGet",
  "counterGet",
  "flagGet",
  "kvGetEntry",
  "setGet",
]);

/** One entry a batch touches: as read, and as the batch leaves it. */
interface Touched {
  service: AtomicService;
  key: string;
  /** The entry read and checked: a counter, a flag, a head, a set's guard. */
  entryKey: Deno.KvKey;
  /** A flag only set, never read: no read, no check. */
  blind: boolean;
  /** A head read by a get before the batch writes it: its value is read too. */
  needsValue: boolean;
  /** The index of the last put or delete of a head. */
  lastWrite?: number;
  // As read:
  versionstamp: string | null;
  stored: unknown;
  items: readonly string[];
  // As the batch leaves it:
  exists: boolean;
  value: unknown;
  /** An operation wrote it (a head's version is then the commit's). */
  written: boolean;
  /** The index of the put whose value a head ends with. */
  finalPut?: number;
}

/** The chunks of a final put, written before the batch runs. */
interface Staged {
  service: ChunkedService;
  key: string;
  chunks: WrittenChunks;
}

/** A put the batch writes as chunks: its index, its bytes, its expiry (cache). */
interface ToStage {
  index: number;
  touched: Touched;
  bytes: Uint8Array;
  expiresAt?: number;
}

/** Batches of one process that share an entry wait for each other, in arrival order. */
class EntryLocks {
  #tails = new Map<string, Promise<void>>();

  /** Waits until no earlier batch holds any of `ids`; returns the release. */
  async acquire(ids: readonly string[]): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => release = resolve);
    const before = ids.flatMap((id) => this.#tails.get(id) ?? []);
    // Registered at once on every id: between two batches, the first is first on all of them.
    for (const id of ids) this.#tails.set(id, mine);
    await Promise.all(before);
    return () => {
      release();
      for (const id of ids) if (this.#tails.get(id) === mine) this.#tails.delete(id);
    };
  }
}

/** The outcome of running the operations over what was read. */
type Run =
  | { ok: true; results: unknown[]; pendingVersions: KvEntry[] }
  | { ok: false; index: number; error: Error };

/** Runs atomic batches on one database. */
export class AtomicBatches {
  #context: AtomicContext;
  #locks = new EntryLocks();

  /** Runs batches on what `context` gives. */
  constructor(context: AtomicContext) {
    this.#context = context;
  }

  /**
   * Runs the operations all or nothing.
   * @throws {AtomicBatchError} For the first operation that fails (nothing changed).
   * @throws {ValueTooLargeError} When the batch cannot fit one Deno KV commit (nothing
   * changed).
   */
  async run(operations: readonly BackendOperation[]): Promise<unknown[]> {
    const startedAt = Date.now();
    const touched = touch(operations);
    const toStage = chooseStaged(operations, touched, startedAt);
    const checks = [...touched.values()].filter((t) => !t.blind).length + toStage.length;
    if (checks > COMMIT_LIMIT.checks) throw tooLarge("checks", checks);
    if (toStage.length > 0) await this.#dryRun(operations, touched, toStage, startedAt);
    const staged = new Map<number, Staged>();
    let done = false;
    try {
      await this.#stage(toStage, staged);
      const release = await this.#locks.acquire([...touched.keys()]);
      try {
        const results = await this.#attempts(operations, touched, staged, startedAt);
        done = true;
        return results;
      } finally {
        release();
      }
    } finally {
      if (!done) await this.#unstage(staged);
      for (const { chunks } of staged.values()) this.#context.writing.delete(chunks.gen);
    }
  }

  /**
   * Before chunks are written: runs the batch over a first read and builds its unit with
   * stand-ins of the same size for the chunks, so that a batch that fails, or cannot fit one
   * commit, is refused without writing them. (What it read may change before the batch runs
   * for good: that run decides.)
   * @throws {AtomicBatchError} For the first operation that fails.
   * @throws {ValueTooLargeError} When the batch cannot fit one commit.
   */
  async #dryRun(
    operations: readonly BackendOperation[],
    touched: Map<string, Touched>,
    toStage: ToStage[],
    startedAt: number,
  ): Promise<void> {
    if (!(await this.#read(touched, new Map()))) return;
    const run = runOver(operations, touched);
    if (run.ok) {
      const standIns = new Map(toStage.map(({ index, touched, bytes }): [number, Staged] => {
        const chunks = Math.ceil(bytes.length / CHUNK_BYTES);
        const stand: WrittenChunks = { gen: GEN_SAMPLE, chunks, size: bytes.length, marker: "" };
        return [index, { service: touched.service as ChunkedService, key: "", chunks: stand }];
      }));
      buildUnit(operations, touched, standIns, startedAt);
      return;
    }
    const checked = [...touched.values()].filter((t) => !t.blind);
    if (!needsValidation(checked) || await this.#unchanged(checked)) {
      throw new AtomicBatchError(run.index, run.error);
    }
  }

  /** Writes the chunks of the puts that need them (all at once). */
  async #stage(toStage: ToStage[], staged: Map<number, Staged>): Promise<void> {
    const { kv, writing } = this.#context;
    const writes = toStage.map(async ({ index, touched, bytes, expiresAt }) => {
      const service = touched.service as ChunkedService;
      const gen = crypto.randomUUID();
      writing.add(gen);
      try {
        const chunks = await writeChunks(kv, service, touched.key, bytes, { gen, expiresAt });
        staged.set(index, { service, key: touched.key, chunks });
      } catch (error) {
        writing.delete(gen); // writeChunks deleted what it wrote.
        throw error;
      }
    });
    const failed = (await Promise.allSettled(writes)).find((r) => r.status === "rejected");
    if (failed !== undefined) throw failed.reason;
  }

  /** Deletes the chunks of a batch that failed. */
  async #unstage(staged: Map<number, Staged>): Promise<void> {
    const { committer } = this.#context;
    await Promise.all(
      [...staged.values()].map(({ service, key, chunks }) =>
        deleteChunks(committer, service, key, chunks, 0).catch(() => {}) // Else the sweep does.
      ),
    );
  }

  async #attempts(
    operations: readonly BackendOperation[],
    touched: Map<string, Touched>,
    staged: Map<number, Staged>,
    startedAt: number,
  ): Promise<unknown[]> {
    const { committer } = this.#context;
    const checked = [...touched.values()].filter((t) => !t.blind);
    const validate = needsValidation(checked);
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      if (!(await this.#read(touched, staged))) continue;
      const run = runOver(operations, touched);
      if (!run.ok) {
        if (validate && !(await this.#unchanged(checked))) continue;
        throw new AtomicBatchError(run.index, run.error);
      }
      const { unit, changed, leftovers } = buildUnit(operations, touched, staged, startedAt);
      if (unit.mutations.length === 0) {
        if (validate && !(await this.#unchanged(checked))) continue;
        return run.results;
      }
      const outcome = await committer.submit(unit);
      if (!outcome.ok) continue;
      for (const entry of run.pendingVersions) entry.version = outcome.versionstamp!;
      for (const t of changed) this.#context.changed(t.service, t.key);
      for (const { service, key, ref } of leftovers) {
        await deleteChunks(committer, service, key, ref, 0).catch(() => {}); // Else the sweep.
      }
      return run.results;
    }
    throw new UnavailableError(
      `Cannot run the atomic batch: its keys were changed by other writers during ${MAX_ATTEMPTS} attempts in a row, try again`,
    );
  }

  /**
   * Reads every entry the batch depends on (and the values its gets need), after checking that
   * the staged chunks are still there. False when a value changed while it was read.
   * @throws {UnavailableError} When the sweep reclaimed staged chunks (a grace period passed).
   */
  async #read(touched: Map<string, Touched>, staged: Map<number, Staged>): Promise<boolean> {
    const { kv, reader } = this.#context;
    const markers = await Promise.all(
      [...staged.values()].map(({ chunks }) => reader.get(pendingKey(chunks.gen))),
    );
    [...staged.values()].forEach(({ service, key, chunks }, i) => {
      if (markers[i].versionstamp !== chunks.marker) throw reclaimed(service, key);
    });
    const now = Date.now();
    const complete = await Promise.all([...touched.values()].map(async (t) => {
      [t.written, t.finalPut, t.exists, t.value] = [false, undefined, false, undefined];
      if (t.blind) return true;
      const entry = await reader.get(t.entryKey);
      t.versionstamp = entry.versionstamp;
      t.stored = entry.value;
      switch (t.service) {
        case "counter":
          t.exists = entry.versionstamp !== null;
          t.value = counterValue(entry.value);
          return true;
        case "flag":
          t.exists = entry.versionstamp !== null;
          t.value = entry.value === true;
          return true;
        case "set":
          t.items = await retryBusy(() => readItems(kv, t.key));
          t.value = new Set(t.items);
          return true;
        default:
          return await readHead(kv, t, now);
      }
    }));
    return complete.every(Boolean);
  }

  /** Whether every entry read still has the versionstamp it was read with. */
  async #unchanged(checked: Touched[]): Promise<boolean> {
    const entries = await Promise.all(checked.map((t) => this.#context.reader.get(t.entryKey)));
    return entries.every((entry, i) => entry.versionstamp === checked[i].versionstamp);
  }
}

/**
 * Whether what a batch read must be read again to stand without a commit: one entry read is a
 * snapshot by itself, several are not (nor a set's items: its guard is read again).
 */
function needsValidation(checked: readonly Touched[]): boolean {
  return checked.length > 1 || checked.some((t) => t.service === "set");
}

/** Reads a head's presence (a cache value until it expires), and its value when a get needs
 * it; false when its chunks were replaced meanwhile. */
async function readHead(kv: Deno.Kv, t: Touched, now: number): Promise<boolean> {
  t.exists = holdsValue(t.stored, now);
  if (!t.exists || !t.needsValue) return true;
  const value = await headValue(kv, t.service as ChunkedService, t.key, t.stored);
  if (value === null) return false;
  t.value = value;
  return true;
}

const encoder = new TextEncoder();

/** When a cache value set by the operation at `index` expires. */
function expiryOf(operations: readonly BackendOperation[], index: number, startedAt: number) {
  const { op, args } = operations[index];
  return op === "cacheSet" ? startedAt + args[2] * 1000 : undefined;
}

function idOf(service: AtomicService, key: string): string {
  return `${service}\u0000${key}`;
}

function entryKeyOf(service: AtomicService, key: string): Deno.KvKey {
  switch (service) {
    case "counter":
      return counterKey(key);
    case "flag":
      return flagKey(key);
    case "set":
      return setGuardKey(key);
    default:
      return headKey(service, key);
  }
}

/** The entries the batch touches, each once, in the order they first appear. */
function touch(operations: readonly BackendOperation[]): Map<string, Touched> {
  const touched = new Map<string, Touched>();
  operations.forEach(({ op, args }, index) => {
    const service = SERVICE_OF[op];
    const key = args[0];
    const id = idOf(service, key);
    let t = touched.get(id);
    if (t === undefined) {
      t = {
        service,
        key,
        entryKey: entryKeyOf(service, key),
        blind: service === "flag",
        needsValue: false,
        versionstamp: null,
        stored: null,
        items: [],
        exists: false,
        value: undefined,
        written: false,
      };
      touched.set(id, t);
    }
    if (op !== "flagSet") t.blind = false;
    if (service === "kv" || service === "cache") {
      if (READS.has(op)) t.needsValue ||= t.lastWrite === undefined;
      else t.lastWrite = index;
    }
  });
  return touched;
}

/**
 * The final puts written as chunks before the batch runs: those larger than one entry, then
 * the largest others while the inline values would not fit one commit.
 */
function chooseStaged(
  operations: readonly BackendOperation[],
  touched: Map<string, Touched>,
  startedAt: number,
): ToStage[] {
  const staged: ToStage[] = [];
  const inline: { candidate: ToStage; size: number }[] = [];
  for (const t of touched.values()) {
    if (t.lastWrite === undefined) continue;
    const { op, args } = operations[t.lastWrite];
    if (op === "kvPut") {
      const bytes = args[1];
      const candidate = { index: t.lastWrite, touched: t, bytes };
      if (bytes.length > CHUNK_BYTES) staged.push(candidate);
      else inline.push({ candidate, size: bytes.length });
    } else if (op === "cacheSet") {
      const value = args[1];
      const candidate = {
        index: t.lastWrite,
        touched: t,
        bytes: encoder.encode(value),
        expiresAt: expiryOf(operations, t.lastWrite, startedAt),
      };
      if (value.length > INLINE_CACHE_UNITS) staged.push(candidate);
      else inline.push({ candidate, size: 2 * value.length });
    }
  }
  let total = inline.reduce((sum, { size }) => sum + size, 0);
  inline.sort((a, b) => b.size - a.size);
  for (const { candidate, size } of inline) {
    if (total <= INLINE_BUDGET) break;
    staged.push(candidate);
    total -= size;
  }
  return staged;
}

/** Runs the operations in order over the entries as read. */
function runOver(operations: readonly BackendOperation[], touched: Map<string, Touched>): Run {
  const results: unknown[] = [];
  const pendingVersions: KvEntry[] = [];
  for (const [index, operation] of operations.entries()) {
    const t = touched.get(idOf(SERVICE_OF[operation.op], operation.args[0]))!;
    try {
      const result = apply(operation, t, index);
      if (operation.op === "kvGetEntry" && t.written) pendingVersions.push(result as KvEntry);
      results.push(result);
    } catch (error) {
      return { ok: false, index, error: error as Error };
    }
  }
  return { ok: true, results, pendingVersions };
}

/** The version a head's condition is checked against, as the batch has left it. */
function headVersion(t: Touched): string | null | "written" {
  return !t.exists ? null : t.written ? "written" : t.versionstamp;
}

/** One operation, as the backend's own method would do it, over its entry's state. */
function apply({ op, args }: BackendOperation, t: Touched, index: number): unknown {
  const key = t.key;
  switch (op) {
    case "counterGet":
      return t.exists ? t.value : 0n;
    case "counterIncrement":
      t.value = addInt64(key, t.exists ? t.value as bigint : 0n, args[1]);
      t.exists = true;
      return t.value;
    case "counterDelete":
      if (!t.exists) throw absent("counter", key);
      [t.exists, t.value] = [false, 0n];
      return undefined;
    case "flagGet":
      return t.exists && t.value === true;
    case "flagSet":
      [t.exists, t.value, t.written] = [true, args[1], true];
      return undefined;
    case "flagDelete":
      if (!t.exists) throw absent("flag", key);
      [t.exists, t.written] = [false, true];
      return undefined;
    case "kvGetEntry":
      if (!t.exists) throw notFound("kv", key);
      // A value the batch wrote gets its version (the commit's) once committed.
      return { value: (t.value as Uint8Array).slice(), version: t.written ? "" : t.versionstamp! };
    case "kvPut":
      checkHeadCondition("put", key, args[2], headVersion(t));
      [t.exists, t.value, t.written, t.finalPut] = [true, args[1], true, index];
      return undefined;
    case "kvDelete":
      checkHeadCondition("delete", key, args[1], headVersion(t));
      if (!t.exists) throw notFound("kv", key);
      [t.exists, t.written, t.finalPut] = [false, true, undefined];
      return undefined;
    case "cacheGet":
      if (!t.exists) throw notFound("cache", key);
      return t.value;
    case "cacheSet":
      [t.exists, t.value, t.written, t.finalPut] = [true, args[1], true, index];
      return undefined;
    case "cacheDelete":
      if (!t.exists) throw absent("cache key", key);
      [t.exists, t.written, t.finalPut] = [false, true, undefined];
      return undefined;
    case "setGet":
      return sortItems([...t.value as Set<string>]);
    case "setAdd": {
      const items = t.value as Set<string>;
      const [, item, maxItems = Infinity] = args;
      if (!items.has(item) && items.size >= maxItems) {
        throw setFull(key, item, items.size, maxItems);
      }
      items.add(item);
      return sortItems([...items]);
    }
    case "setRemove": {
      const items = t.value as Set<string>;
      items.delete(args[1]);
      return sortItems([...items]);
    }
    case "setDelete": {
      const items = t.value as Set<string>;
      if (items.size === 0) throw absent("set", key);
      items.clear();
      return undefined;
    }
  }
}

/** What the batch writes: the unit, the entries it changes, the old chunks left to delete. */
interface Built {
  unit: Unit;
  changed: Touched[];
  leftovers: { service: ChunkedService; key: string; ref: ChunkRef }[];
}

/**
 * The batch's unit: a check of every entry read (and of every staged marker), the final state
 * of every entry it changed, the deletes of the chunks it replaced.
 * @throws {ValueTooLargeError} When the unit does not fit one commit.
 */
function buildUnit(
  operations: readonly BackendOperation[],
  touched: Map<string, Touched>,
  staged: Map<number, Staged>,
  startedAt: number,
): Built {
  const unit = new UnitBuilder();
  const changed: Touched[] = [];
  const replaced: Built["leftovers"] = [];
  for (const t of touched.values()) {
    if (!t.blind) unit.check(t.entryKey, t.versionstamp);
    const before = unit.size.mutations;
    switch (t.service) {
      case "counter": {
        const existed = t.versionstamp !== null;
        if (t.exists && (!existed || t.value !== counterValue(t.stored))) {
          unit.set(t.entryKey, t.value);
        } else if (!t.exists && existed) unit.delete(t.entryKey);
        break;
      }
      case "flag":
        if (t.written && t.exists) unit.set(t.entryKey, t.value);
        else if (t.written && t.versionstamp !== null) unit.delete(t.entryKey);
        break;
      case "set":
        writeSet(unit, t);
        break;
      default:
        if (t.written) writeHead(unit, t, operations, staged, startedAt, replaced);
    }
    if (unit.size.mutations > before) changed.push(t);
  }
  const leftovers: Built["leftovers"] = [];
  for (const old of replaced) {
    const prefix = chunkPrefix(old.service, old.key, old.ref.gen);
    const room = unit.roomForDeletes(keyBytes([...prefix, 0]), { mutations: 1, bytes: 1024 });
    if (room >= old.ref.chunks) {
      for (let i = 0; i < old.ref.chunks; i++) unit.delete([...prefix, i]);
    } else {
      // Marked in the same commit, deleted right after (by the sweep, after a crash).
      const marker: PendingMarker = {
        service: old.service,
        key: old.key,
        chunks: old.ref.chunks,
        createdAt: 0,
      };
      unit.set(pendingKey(old.ref.gen), marker);
      leftovers.push(old);
    }
  }
  for (const limit of ["checks", "mutations", "bytes", "keyBytes"] as const) {
    if (unit.size[limit] > COMMIT_LIMIT[limit]) throw tooLarge(limit, unit.size[limit]);
  }
  return { unit: unit.build(), changed, leftovers };
}

/** The items a set gained and lost, and its guard (deleted with the last item). */
function writeSet(unit: UnitBuilder, t: Touched): void {
  const items = t.value as Set<string>;
  const before = new Set(t.items);
  let changed = false;
  for (const item of items) {
    if (before.has(item)) continue;
    unit.set([...setPrefix(t.key), digest(item)], item);
    changed = true;
  }
  for (const item of t.items) {
    if (items.has(item)) continue;
    unit.delete([...setPrefix(t.key), digest(item)]);
    changed = true;
  }
  if (changed && items.size > 0) unit.set(t.entryKey, items.size);
  else if (changed) unit.delete(t.entryKey);
}

/** A head the batch wrote: its final put (inline, or pointing at staged chunks), or its delete. */
function writeHead(
  unit: UnitBuilder,
  t: Touched,
  operations: readonly BackendOperation[],
  staged: Map<number, Staged>,
  startedAt: number,
  replaced: Built["leftovers"],
): void {
  const service = t.service as ChunkedService;
  if (t.exists) {
    const index = t.finalPut!;
    const expiresAt = expiryOf(operations, index, startedAt);
    const chunks = staged.get(index)?.chunks;
    let head: unknown;
    if (chunks !== undefined) {
      const ref: ChunkRef = { gen: chunks.gen, chunks: chunks.chunks, size: chunks.size };
      head = expiresAt === undefined ? ref : { ...ref, expiresAt };
      unit.check(pendingKey(chunks.gen), chunks.marker).delete(pendingKey(chunks.gen));
    } else head = service === "cache" ? { value: t.value, expiresAt } : t.value;
    unit.set(t.entryKey, head, expiresAt);
  } else if (t.versionstamp !== null) unit.delete(t.entryKey);
  if (isChunkRef(t.stored)) {
    const { gen, chunks, size } = t.stored;
    replaced.push({ service, key: t.key, ref: { gen, chunks, size } });
  }
}

/** The refusal of a batch that cannot fit one commit. */
function tooLarge(limit: keyof UnitSize, amount: number): ValueTooLargeError {
  const kib = (bytes: number) => `${Math.ceil(bytes / 1024)} KiB`;
  const needs = {
    checks: `${amount} checks (one for each key it reads, one for each large value it writes), ` +
      `and one Deno KV commit holds ${KV_MAX_COMMIT_CHECKS}`,
    mutations: `${amount} writes (one for each key and set item it changes), ` +
      `and one Deno KV commit holds ${KV_MAX_COMMIT_MUTATIONS}`,
    bytes: `${kib(amount)} of keys and values (its large values aside, written beforehand), ` +
      `and one Deno KV commit holds ${kib(KV_MAX_COMMIT_BYTES)}`,
    keyBytes: `${kib(amount)} of written keys, and one Deno KV commit holds ${
      kib(KV_MAX_COMMIT_KEY_BYTES)
    }`,
  }[limit];
  return new ValueTooLargeError(
    `Cannot run the atomic batch on the disk backend: it needs ${needs}; nothing was changed (split the batch, or run it without atomic)`,
  );
}

function reclaimed(service: ChunkedService, key: string): UnavailableError {
  return new UnavailableError(
    `Cannot write ${service} key ${
      quote(key)
    } in the atomic batch: its chunks were reclaimed by the sweep before the batch committed (it took longer than the grace period), try again`,
  );
}
