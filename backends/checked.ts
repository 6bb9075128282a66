/**
 * The checked front of a backend: validates and normalises every input once, then calls the
 * backend. Everything that serves users (servers, `openBackend()`) goes through it. It also runs
 * batches: in order (each operation on its own), or atomic through the backend's `atomic()`.
 *
 * @module
 */

import type {
  BatchableName,
  BatchOperation,
  BatchOptions,
  BatchOutcome,
  BatchOutcomes,
  CounterAmount,
  KeyPage,
  KvEntry,
  KvValue,
  KvWriteOptions,
  ListOptions,
  Operations,
  WatchChange,
  WatchKeys,
  WatchOptions,
} from "@purple/protocol";
import { OPERATIONS } from "@purple/protocol";
import {
  errorFromCode,
  InternalError,
  InvalidArgumentError,
  PurpleError,
  UnavailableError,
  ValueTooLargeError,
} from "@purple/protocol/errors";
import { watchTargets } from "@purple/protocol/watch";
import {
  assertBatchSize,
  describe,
  normalizeListOptions,
  normalizeWriteOptions,
} from "@purple/protocol/validate";
import { quote } from "@purple/protocol/text";
import {
  AtomicBatchError,
  type Backend,
  type BackendOperation,
  type ExportOptions,
  type ExportPage,
  type ListQuery,
  RestoreError,
  type StoredEntry,
} from "./backend.ts";
import { checkEntry } from "./entries.ts";
import type { Limits } from "./limits.ts";
import {
  assertCacheValue,
  assertFlag,
  assertItem,
  assertKey,
  normalizeAmount,
  normalizeKvValue,
  normalizeTtl,
} from "./validate.ts";

/**
 * The operations of a backend behind the input checks, and what the servers need to know about
 * the backend.
 *
 * @example
 * ```ts
 * import { type CheckedOperations, openBackend } from "@purple/server/backends";
 *
 * const ops: CheckedOperations = await openBackend({ kind: "memory" });
 * console.log(ops.settlesAtOnce); // true: the memory backend does no I/O
 * await ops.close();
 * ```
 */
export interface CheckedOperations extends Operations {
  /**
   * Whether every operation settles before it returns (see `Backend.settlesAtOnce`): the
   * servers then give it no time limit, which it could not outlast.
   */
  readonly settlesAtOnce: boolean;
  /**
   * Every entry of the backend, a page at a time (`Backend.exportEntries`): what
   * `purple export` writes.
   */
  exportEntries(options?: ExportOptions): AsyncIterable<ExportPage>;
  /**
   * Checks every entry against the limits ({@linkcode checkEntry}), then writes them
   * (`Backend.restore`): what `purple import` does. An entry refused by the checks rejects with
   * `RestoreError` (its index) before any is written; one the backend fails, with its index
   * (the others may be written).
   */
  restore(entries: readonly StoredEntry[]): Promise<void>;
}

/**
 * Wraps a backend so that every input is validated against `limits` before it reaches it.
 *
 * @param backend The backend to protect.
 * @param limits The limits in force.
 * @returns The operations, ready to serve.
 *
 * @example
 * ```ts
 * import { checked, DEFAULT_LIMITS, MemoryBackend } from "@purple/server/backends";
 *
 * const ops = checked(new MemoryBackend(), DEFAULT_LIMITS);
 * await ops.flagSet("beta", true);
 * await ops.close();
 * ```
 */
export function checked(backend: Backend, limits: Limits): CheckedOperations {
  return new CheckedBackend(backend, limits);
}

/** The checked backend operation of a batchable operation, and how to read its result. */
interface Prepared {
  operation: BackendOperation;
  /** The result of the operation asked for, from the backend's (kvGet: the entry's value). */
  project?: (result: unknown) => unknown;
}

/** The checks of each operation a batch may hold: its arguments, as the backend takes them. */
type Preparers = {
  readonly [Op in BatchableName]: (args: Parameters<Operations[Op]>, limits: Limits) => Prepared;
};

function key(value: unknown, limits: Limits): string {
  assertKey(value, limits);
  return value;
}

const PREPARE: Preparers = {
  cacheGet: ([k], l) => ({ operation: { op: "cacheGet", args: [key(k, l)] } }),
  cacheSet: ([k, value, ttl], l) => {
    assertCacheValue(value, l);
    return { operation: { op: "cacheSet", args: [key(k, l), value, normalizeTtl(ttl)] } };
  },
  cacheDelete: ([k], l) => ({ operation: { op: "cacheDelete", args: [key(k, l)] } }),
  counterIncrement: ([k, amount], l) => ({
    operation: { op: "counterIncrement", args: [key(k, l), normalizeAmount(amount)] },
  }),
  counterGet: ([k], l) => ({ operation: { op: "counterGet", args: [key(k, l)] } }),
  counterDelete: ([k], l) => ({ operation: { op: "counterDelete", args: [key(k, l)] } }),
  flagGet: ([k], l) => ({ operation: { op: "flagGet", args: [key(k, l)] } }),
  flagSet: ([k, value], l) => {
    const checkedKey = key(k, l);
    assertFlag(value);
    return { operation: { op: "flagSet", args: [checkedKey, value] } };
  },
  flagDelete: ([k], l) => ({ operation: { op: "flagDelete", args: [key(k, l)] } }),
  kvGet: ([k], l) => ({
    operation: { op: "kvGetEntry", args: [key(k, l)] },
    project: (entry) => (entry as KvEntry).value,
  }),
  kvGetEntry: ([k], l) => ({ operation: { op: "kvGetEntry", args: [key(k, l)] } }),
  kvPut: ([k, value, options], l) => {
    const checkedKey = key(k, l);
    const bytes = normalizeKvValue(value, l);
    const condition = normalizeWriteOptions(options);
    return {
      operation: {
        op: "kvPut",
        args: condition === undefined ? [checkedKey, bytes] : [checkedKey, bytes, condition],
      },
    };
  },
  kvDelete: ([k, options], l) => {
    const checkedKey = key(k, l);
    const condition = normalizeWriteOptions(options);
    return {
      operation: {
        op: "kvDelete",
        args: condition === undefined ? [checkedKey] : [checkedKey, condition],
      },
    };
  },
  setGet: ([set], l) => ({ operation: { op: "setGet", args: [key(set, l)] } }),
  setAdd: ([set, item], l) => {
    const checkedSet = key(set, l);
    assertItem(item, l);
    return { operation: { op: "setAdd", args: [checkedSet, item, l.maxSetItems] } };
  },
  setRemove: ([set, item], l) => {
    const checkedSet = key(set, l);
    assertItem(item, l);
    return { operation: { op: "setRemove", args: [checkedSet, item] } };
  },
  setDelete: ([set], l) => ({ operation: { op: "setDelete", args: [key(set, l)] } }),
};

/** The operation of a batch, checked for its shape: a batchable name and a list of arguments. */
function batchable(operation: unknown, index: number): BatchOperation {
  const { op, args } = (typeof operation === "object" && operation !== null ? operation : {}) as {
    op?: unknown;
    args?: unknown;
  };
  if (typeof op !== "string" || !Object.hasOwn(PREPARE, op) || !Array.isArray(args)) {
    throw new InvalidArgumentError(
      `Bad batch: operation ${index} must be { op, args } with op one of ${
        Object.keys(PREPARE).join(", ")
      }, found ${typeof op === "string" ? quote(op) : describe(operation)}`,
    );
  }
  return { op, args } as unknown as BatchOperation;
}

/** The service and key an operation works on, so that a batch keeps their order. */
function target(operation: BackendOperation): string {
  return `${OPERATIONS[operation.op].http.path.split("/")[1]}\0${operation.args[0]}`;
}

/** The same kind of error as `error`, with `context` before its message. */
function withContext(error: unknown, context: string): Error {
  if (error instanceof PurpleError) {
    return errorFromCode(error.code, `${context}: ${error.message}`);
  }
  return error as Error; // Not a Purple error: a bug, which the server answers 500 and logs.
}

class CheckedBackend implements CheckedOperations {
  readonly settlesAtOnce: boolean;
  #backend: Backend;
  #limits: Limits;
  /** The watches open now. */
  #watchers = 0;

  constructor(backend: Backend, limits: Limits) {
    this.#backend = backend;
    this.#limits = limits;
    this.settlesAtOnce = backend.settlesAtOnce === true;
  }

  cacheGet(key: string): Promise<string> {
    return this.#one("cacheGet", [key]);
  }
  cacheSet(key: string, value: string, ttl?: number): Promise<void> {
    return this.#one("cacheSet", [key, value, ttl]);
  }
  cacheDelete(key: string): Promise<void> {
    return this.#one("cacheDelete", [key]);
  }
  async cacheList(options?: ListOptions): Promise<KeyPage> {
    return await this.#backend.cacheList(this.#query(options));
  }
  counterIncrement(key: string, amount: CounterAmount): Promise<bigint> {
    return this.#one("counterIncrement", [key, amount]);
  }
  counterGet(key: string): Promise<bigint> {
    return this.#one("counterGet", [key]);
  }
  counterDelete(key: string): Promise<void> {
    return this.#one("counterDelete", [key]);
  }
  async counterList(options?: ListOptions): Promise<KeyPage> {
    return await this.#backend.counterList(this.#query(options));
  }
  flagGet(key: string): Promise<boolean> {
    return this.#one("flagGet", [key]);
  }
  flagSet(key: string, value: boolean): Promise<void> {
    return this.#one("flagSet", [key, value]);
  }
  flagDelete(key: string): Promise<void> {
    return this.#one("flagDelete", [key]);
  }
  async flagList(options?: ListOptions): Promise<KeyPage> {
    return await this.#backend.flagList(this.#query(options));
  }
  kvGet(key: string): Promise<Uint8Array> {
    return this.#one("kvGet", [key]);
  }
  kvGetEntry(key: string): Promise<KvEntry> {
    return this.#one("kvGetEntry", [key]);
  }
  kvPut(key: string, value: KvValue, options?: KvWriteOptions): Promise<void> {
    return this.#one("kvPut", [key, value, options]);
  }
  kvDelete(key: string, options?: KvWriteOptions): Promise<void> {
    return this.#one("kvDelete", [key, options]);
  }
  async kvList(options?: ListOptions): Promise<KeyPage> {
    return await this.#backend.kvList(this.#query(options));
  }
  setGet(set: string): Promise<string[]> {
    return this.#one("setGet", [set]);
  }
  setAdd(set: string, item: string): Promise<string[]> {
    return this.#one("setAdd", [set, item]);
  }
  setRemove(set: string, item: string): Promise<string[]> {
    return this.#one("setRemove", [set, item]);
  }
  setDelete(set: string): Promise<void> {
    return this.#one("setDelete", [set]);
  }
  async setList(options?: ListOptions): Promise<KeyPage> {
    return await this.#backend.setList(this.#query(options));
  }

  exportEntries(options?: ExportOptions): AsyncIterable<ExportPage> {
    return this.#backend.exportEntries(options);
  }

  async restore(entries: readonly StoredEntry[]): Promise<void> {
    const limits = this.#limits;
    const valid = entries.map((entry, index) => {
      try {
        return checkEntry(entry, limits);
      } catch (error) {
        throw new RestoreError(index, error as Error);
      }
    });
    await this.#backend.restore(valid);
  }

  /**
   * Runs a batch. In order: each operation is checked and run on its own (one that fails does
   * not stop the others); operations on different keys run at once, and on one key one after
   * the other (at once where the backend keeps their order itself). Atomic: every operation is
   * checked first (one that is refused fails the batch, nothing run), then the backend runs them
   * all or none.
   */
  async batch<const T extends readonly BatchOperation[]>(
    operations: T,
    options?: BatchOptions,
  ): Promise<BatchOutcomes<T>> {
    assertBatchSize(operations);
    // A batch that names no operation it may hold is refused whole; bad arguments of one that
    // it may hold fail that operation only (unless the batch is atomic).
    const named = operations.map(batchable);
    if (options?.atomic === true) return await this.#atomic(named) as BatchOutcomes<T>;
    return await this.#inOrder(named) as BatchOutcomes<T>;
  }

  /**
   * Watches keys: on the first step, checks them (each key, at most `maxWatchKeys` of them) and
   * that fewer than `maxWatchers` watches are open, then opens the backend's watch; the count
   * goes down when the watch ends.
   */
  watch(keys: WatchKeys, options?: WatchOptions): AsyncIterable<WatchChange> {
    return new LazyWatch(() => {
      const targets = watchTargets(keys);
      const { maxWatchKeys, maxWatchers } = this.#limits;
      if (targets.length > maxWatchKeys) {
        throw new ValueTooLargeError(
          `Bad watch: ${targets.length} keys, the limit is ${maxWatchKeys}`,
        );
      }
      for (const { key } of targets) assertKey(key, this.#limits);
      if (this.#watchers >= maxWatchers) {
        throw new UnavailableError(
          `Cannot watch: Purple is serving ${maxWatchers} watches (the limit), retry shortly`,
        );
      }
      this.#watchers++;
      return {
        stream: this.#backend.watch(targets, options?.signal),
        release: () => this.#watchers--,
      };
    });
  }

  close(): Promise<void> {
    return this.#backend.close();
  }

  #prepare({ op, args }: BatchOperation): Prepared {
    return (PREPARE[op] as (args: readonly unknown[], limits: Limits) => Prepared)(
      args,
      this.#limits,
    );
  }

  async #run(prepared: Prepared): Promise<unknown> {
    const { op, args } = prepared.operation;
    const result = await (this.#backend[op] as (...args: unknown[]) => Promise<unknown>)
      .apply(this.#backend, args);
    return prepared.project ? prepared.project(result) : result;
  }

  // deno-lint-ignore no-explicit-any
  async #one<Op extends BatchableName>(op: Op, args: Parameters<Operations[Op]>): Promise<any> {
    return await this.#run(this.#prepare({ op, args } as unknown as BatchOperation));
  }

  #query(options: ListOptions | undefined): ListQuery {
    const query = normalizeListOptions(options);
    if (query.prefix !== "") assertKey(query.prefix, this.#limits);
    return query;
  }

  async #inOrder(operations: readonly BatchOperation[]): Promise<BatchOutcome<BatchableName>[]> {
    const order = this.#backend.keepsCallOrder === true;
    const tails = new Map<string, Promise<unknown>>();
    const outcomes = operations.map(async (operation) => {
      const prepared = this.#prepare(operation);
      if (order) return await this.#run(prepared);
      const previous = tails.get(target(prepared.operation));
      const done = (previous ?? Promise.resolve()).then(() => this.#run(prepared));
      tails.set(target(prepared.operation), done.catch(() => {}));
      return await done;
    });
    return await Promise.all(outcomes.map((outcome) =>
      outcome.then(
        (value) => ({ ok: true, value }) as BatchOutcome<BatchableName>,
        (error) => ({ ok: false as const, error: asPurple(error) }),
      )
    ));
  }

  async #atomic(operations: readonly BatchOperation[]): Promise<BatchOutcome<BatchableName>[]> {
    const prepared = operations.map((operation, index) => {
      try {
        return this.#prepare(operation);
      } catch (error) {
        throw withContext(error, `Cannot run the atomic batch: operation ${index}`);
      }
    });
    let results: unknown[];
    try {
      results = await this.#backend.atomic(prepared.map(({ operation }) => operation));
    } catch (error) {
      if (!(error instanceof AtomicBatchError)) throw error;
      const { op, args } = prepared[error.index].operation;
      const action = OPERATIONS[op].action;
      throw withContext(
        error.cause,
        `Cannot run the atomic batch: operation ${error.index} (${action} ${
          quote(String(args[0]))
        }) failed, nothing was changed`,
      );
    }
    return results.map((result, index) => {
      const { project } = prepared[index];
      return { ok: true, value: project ? project(result) : result } as BatchOutcome<BatchableName>;
    });
  }
}

/**
 * A watch that starts on its first step (so that its errors come from it, as a client's do), and
 * calls `release` once when it ends (done, failed, or returned).
 */
class LazyWatch implements AsyncIterableIterator<WatchChange> {
  #start: (() => { stream: AsyncIterator<WatchChange>; release: () => void }) | undefined;
  #stream: AsyncIterator<WatchChange> | undefined;
  #release: (() => void) | undefined;

  constructor(start: () => { stream: AsyncIterator<WatchChange>; release: () => void }) {
    this.#start = start;
  }

  async next(): Promise<IteratorResult<WatchChange>> {
    if (this.#start !== undefined) {
      const start = this.#start;
      this.#start = undefined;
      ({ stream: this.#stream, release: this.#release } = start());
    }
    if (this.#stream === undefined) return { value: undefined, done: true };
    try {
      const result = await this.#stream.next();
      if (result.done) this.#end();
      return result;
    } catch (error) {
      this.#end();
      throw error;
    }
  }

  async return(): Promise<IteratorResult<WatchChange>> {
    this.#start = undefined;
    const stream = this.#stream;
    this.#end();
    await stream?.return?.();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<WatchChange> {
    return this;
  }

  #end(): void {
    this.#stream = undefined;
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }
}

/**
 * An error as a batch outcome carries it: a typed error, or an internal one that says nothing
 * more (its cause is for the server's log).
 */
function asPurple(error: unknown): PurpleError {
  if (error instanceof PurpleError) return error;
  return new InternalError("Internal server error", { cause: error });
}
