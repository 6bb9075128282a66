// Group commit on Deno KV: many small atomic units, one SQLite commit. Private to this folder.
//
// Every write of the disk backend is an atomic unit: checks (versionstamps that must still hold)
// and mutations. A unit is submitted to the GroupCommitter, which keeps at most one commit in
// flight: the units that arrive meanwhile wait, and the next commit takes as many of them, in
// arrival order, as fit in one Deno KV commit (100 checks, 1000 mutations, 800 KiB, 80 KiB of
// written keys). A unit whose check reads a key that an earlier unit of the same group writes
// starts the next group instead (Deno KV evaluates every check before any mutation).
//
// Each commit is one SQLite transaction, synced to disk before it returns (WAL with
// synchronous=FULL: one fsync a commit), so a unit is acknowledged only once it is durable.
//
// When a group fails a check, only the units whose checks fail may fail: the committer reads
// the checked keys, fails the units whose versionstamps moved, and commits the others again
// (after a few rounds without progress, one by one). A group that throws (not a check) is
// committed again one unit at a time, so that the error reaches only the unit that causes it.
// A group that writes nothing (units that only check, such as a set add of an item already
// there) is validated by reading its checked keys instead of committing, with no fsync.

import { retryBusy } from "./_disk_busy.ts";
import { PointReader } from "./_disk_reads.ts";
import {
  keyBytes,
  KV_MAX_COMMIT_BYTES,
  KV_MAX_COMMIT_CHECKS,
  KV_MAX_COMMIT_KEY_BYTES,
  KV_MAX_COMMIT_MUTATIONS,
  KV_MAX_READ_KEYS,
} from "./_disk_keys.ts";

/** Room kept free in every commit for the estimates' errors. */
const MARGIN = 1024;

/** A write of one entry: a set (with an optional expiry) or a delete. */
export type Mutation =
  | { type: "set"; key: Deno.KvKey; value: unknown; expiresAt?: number }
  | { type: "delete"; key: Deno.KvKey };

/** What a unit adds to a commit, counted as Deno KV counts it (sizes are upper bounds). */
export interface UnitSize {
  checks: number;
  mutations: number;
  /** Every checked and written key, plus every set's key and value. */
  bytes: number;
  /** The keys of the sets. */
  keyBytes: number;
}

/** An atomic unit: all its mutations are committed if all its checks hold, or none. */
export interface Unit {
  checks: Deno.AtomicCheck[];
  mutations: Mutation[];
  size: UnitSize;
}

/** How a unit ended: committed (with the commit's versionstamp, `null` when it wrote nothing)
 * or refused because a check failed. */
export type Outcome = { ok: true; versionstamp: string | null } | { ok: false };

/** The most one commit may hold (Deno KV's limits, less room for the estimates' errors). */
export const COMMIT_LIMIT: Readonly<UnitSize> = {
  checks: KV_MAX_COMMIT_CHECKS,
  mutations: KV_MAX_COMMIT_MUTATIONS,
  bytes: KV_MAX_COMMIT_BYTES - MARGIN,
  keyBytes: KV_MAX_COMMIT_KEY_BYTES - MARGIN,
};

/**
 * An upper bound of the bytes Deno KV counts for a value: raw bytes for a Uint8Array, else its
 * V8 serialization (two bytes a UTF-16 unit at worst, a few bytes of tags and lengths).
 */
export function valueBytes(value: unknown, nested = false): number {
  if (value instanceof Uint8Array) return value.byteLength + (nested ? 24 : 0);
  switch (typeof value) {
    case "string":
      return 2 * value.length + 8;
    case "bigint":
      return 16 + value.toString(16).length;
    case "object": {
      if (value === null) return 4;
      let size = 8;
      for (const [name, field] of Object.entries(value)) {
        size += 2 * name.length + 8 + valueBytes(field, true);
      }
      return size;
    }
    default:
      return 16; // numbers, booleans, undefined
  }
}

/** Builds a unit, keeping count of its size against one commit's limits. */
export class UnitBuilder {
  readonly checks: Deno.AtomicCheck[] = [];
  readonly mutations: Mutation[] = [];
  readonly size: UnitSize = { checks: 0, mutations: 0, bytes: 0, keyBytes: 0 };

  /** Requires the entry at `key` to still have `versionstamp` (`null`: to be absent). */
  check(key: Deno.KvKey, versionstamp: string | null): this {
    this.checks.push({ key, versionstamp });
    this.size.checks++;
    this.size.bytes += keyBytes(key);
    return this;
  }

  /** Sets `key` to `value`, to be removed by Deno KV after `expiresAt` when given. */
  set(key: Deno.KvKey, value: unknown, expiresAt?: number): this {
    this.mutations.push({ type: "set", key, value, expiresAt });
    const bytes = keyBytes(key);
    this.size.mutations++;
    this.size.bytes += 2 * bytes + valueBytes(value);
    this.size.keyBytes += bytes;
    return this;
  }

  /** Deletes `key`. */
  delete(key: Deno.KvKey): this {
    this.mutations.push({ type: "delete", key });
    this.size.mutations++;
    this.size.bytes += keyBytes(key);
    return this;
  }

  /** How many more deletes of keys of `bytes` encoded bytes fit in one commit beside this. */
  roomForDeletes(bytes: number, reserved: Partial<UnitSize> = {}): number {
    return Math.max(
      0,
      Math.min(
        COMMIT_LIMIT.mutations - this.size.mutations - (reserved.mutations ?? 0),
        Math.floor((COMMIT_LIMIT.bytes - this.size.bytes - (reserved.bytes ?? 0)) / bytes),
      ),
    );
  }

  /** The unit. */
  build(): Unit {
    return { checks: this.checks, mutations: this.mutations, size: this.size };
  }
}

interface Queued {
  unit: Unit;
  resolve: (outcome: Outcome) => void;
  reject: (error: unknown) => void;
  /** Whether the unit's caller has its answer. */
  settled: boolean;
}

/** A key as a string, for telling whether two keys may be the same (equal keys, equal ids). */
function keyId(key: Deno.KvKey): string {
  return key.map((part) => typeof part === "string" ? part : String(part)).join("\u0000");
}

function fits(total: UnitSize, next: UnitSize): boolean {
  return total.checks + next.checks <= COMMIT_LIMIT.checks &&
    total.mutations + next.mutations <= COMMIT_LIMIT.mutations &&
    total.bytes + next.bytes <= COMMIT_LIMIT.bytes &&
    total.keyBytes + next.keyBytes <= COMMIT_LIMIT.keyBytes;
}

/** Counts of what the committer did, for tests and the bench. */
export interface CommitStats {
  /** SQLite commits made (successful or not). */
  commits: number;
  /** Units committed. */
  units: number;
  /** Units refused because a check failed. */
  refused: number;
  /** Groups validated by a read, without a commit. */
  reads: number;
}

/** Commits units in groups: one commit in flight, the units that wait go together next. */
export class GroupCommitter {
  #kv: Deno.Kv;
  #reader: PointReader;
  #queue: Queued[] = [];
  #running: Promise<void> | undefined;
  /** What the committer did so far. */
  readonly stats: CommitStats = { commits: 0, units: 0, refused: 0, reads: 0 };
  /** Told the mutations of each unit once it is committed (the watchers of its keys). */
  onCommitted: ((mutations: readonly Mutation[]) => void) | undefined;

  /** Commits to `kv`; reads the checked keys of failed groups through `reader`. */
  constructor(kv: Deno.Kv, reader: PointReader = new PointReader(kv)) {
    this.#kv = kv;
    this.#reader = reader;
  }

  /** Queues a unit; resolves once the commit that holds it is durable, or its check failed. */
  submit(unit: Unit): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ unit, resolve, reject, settled: false });
      this.#running ??= this.#run();
    });
  }

  /** Resolves once every unit submitted so far has been committed or refused. */
  async drain(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #run(): Promise<void> {
    await undefined; // Let the units submitted in this same turn join the first group.
    try {
      while (this.#queue.length > 0) await this.#commitGroup(this.#take());
    } finally {
      this.#running = undefined;
    }
  }

  /** Takes the longest run of queued units that fits in one commit. */
  #take(): Queued[] {
    const queue = this.#queue;
    const total: UnitSize = { checks: 0, mutations: 0, bytes: 0, keyBytes: 0 };
    const written = new Set<string>();
    let count = 0;
    for (; count < queue.length; count++) {
      const { unit } = queue[count];
      if (count > 0) {
        if (!fits(total, unit.size)) break;
        if (unit.checks.some((check) => written.has(keyId(check.key)))) break;
      }
      total.checks += unit.size.checks;
      total.mutations += unit.size.mutations;
      total.bytes += unit.size.bytes;
      total.keyBytes += unit.size.keyBytes;
      if (count + 1 < queue.length) {
        for (const mutation of unit.mutations) written.add(keyId(mutation.key));
      }
    }
    return queue.splice(0, count);
  }

  async #commitGroup(group: Queued[]): Promise<void> {
    try {
      if (group.every(({ unit }) => unit.mutations.length === 0)) {
        await this.#validate(group);
        return;
      }
      const result = await this.#commit(group);
      if (result.ok) {
        this.#settle(group, { ok: true, versionstamp: result.versionstamp });
      } else await this.#isolate(group);
    } catch (error) {
      const open = group.filter((queued) => !queued.settled);
      if (open.length === 1) {
        open[0].settled = true;
        open[0].reject(error);
      } else {
        for (const queued of open) await this.#commitGroup([queued]);
      }
    }
  }

  async #commit(group: Queued[]): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    const op = this.#kv.atomic();
    const now = Date.now();
    for (const { unit } of group) {
      for (const check of unit.checks) op.check(check);
      for (const mutation of unit.mutations) {
        if (mutation.type === "delete") op.delete(mutation.key);
        else if (mutation.expiresAt === undefined) op.set(mutation.key, mutation.value);
        else {
          op.set(mutation.key, mutation.value, {
            expireIn: Math.max(1, mutation.expiresAt - now),
          });
        }
      }
    }
    this.stats.commits++;
    return await retryBusy(() => op.commit());
  }

  #settle(group: Queued[], outcome: Outcome): void {
    if (outcome.ok) this.stats.units += group.length;
    else this.stats.refused += group.length;
    if (outcome.ok && this.onCommitted !== undefined) {
      for (const { unit } of group) {
        if (unit.mutations.length > 0) this.onCommitted(unit.mutations);
      }
    }
    for (const queued of group) {
      queued.settled = true;
      queued.resolve(outcome);
    }
  }

  /**
   * A group failed a check: fails the units whose checks no longer hold (read now) and commits
   * the others again; after three rounds, the rest one unit at a time.
   */
  async #isolate(group: Queued[]): Promise<void> {
    for (let round = 1;; round++) {
      const failing = await this.#failing(group);
      this.#settle(group.filter((_, i) => failing[i]), { ok: false });
      group = group.filter((_, i) => !failing[i]);
      if (group.length === 0) return;
      if (round >= 3 || !failing.includes(true)) break;
      const result = await this.#commit(group);
      if (result.ok) {
        this.#settle(group, { ok: true, versionstamp: result.versionstamp });
        return;
      }
    }
    for (const queued of group) {
      const result = await this.#commit([queued]);
      this.#settle([queued], result.ok ? { ok: true, versionstamp: result.versionstamp } : result);
    }
  }

  /** A group without mutations: each unit holds if its checks hold now (one read a unit). */
  async #validate(group: Queued[]): Promise<void> {
    this.stats.reads++;
    if (group.some(({ unit }) => unit.checks.length > KV_MAX_READ_KEYS)) {
      // Not one read a unit: commit the checks instead.
      const result = await this.#commit(group);
      if (result.ok) this.#settle(group, { ok: true, versionstamp: null });
      else await this.#isolate(group);
      return;
    }
    const failing = await this.#failing(group);
    this.#settle(group.filter((_, i) => failing[i]), { ok: false });
    this.#settle(group.filter((_, i) => !failing[i]), { ok: true, versionstamp: null });
  }

  /**
   * Reads the checked keys of each unit and tells which fail now: the checks of a unit are read
   * in one snapshot when there are at most ten of them (one check: with the reads of other
   * units), enough for a unit that commits nothing to hold.
   */
  #failing(group: Queued[]): Promise<boolean[]> {
    const moved = (entries: Deno.KvEntryMaybe<unknown>[], checks: Deno.AtomicCheck[]) =>
      entries.some((entry, i) => entry.versionstamp !== checks[i].versionstamp);
    return Promise.all(group.map(async ({ unit }) => {
      const { checks } = unit;
      if (checks.length === 1) return moved([await this.#reader.get(checks[0].key)], checks);
      for (let first = 0; first < checks.length; first += KV_MAX_READ_KEYS) {
        const part = checks.slice(first, first + KV_MAX_READ_KEYS);
        const entries = await retryBusy(() => this.#kv.getMany(part.map((check) => check.key)));
        if (moved(entries, part)) return true;
      }
      return false;
    }));
  }
}
