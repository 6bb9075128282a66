// Per-key batches of operations, each committed as one unit through the group committer.
// Private to this folder.
//
// The operations of one key (a counter, a KV or cache key, a set) that arrive while a unit of
// that key is on its way wait, then go together into the key's next unit: the model applies
// them in arrival order to the key's state and says what to write and what each caller gets.
// Only one unit per key is in flight, so the units of different keys never conflict and the
// committer groups them freely.
//
// The state a unit was planned from is checked when it commits (the versionstamp of the key's
// entry, or of a set's guard), so a state remembered from the last commit is as good as one
// just read: a stale memory (another process wrote the key, Deno KV expired it) fails the
// check, and the batch is planned again from a fresh read. One caller's refusal (an increment
// leaving int64, an add to a full set, a delete of a missing key) is an answer planned like
// the others: it never fails the unit, nor the group.

import type { GroupCommitter, Unit } from "./_disk_commits.ts";

/** An operation's answer: a value, or the error its caller gets. */
export type Answer<R> = { value: R } | { error: Error };

/** What to commit for a batch, and what each operation answers once it is committed. */
export interface Plan<S, R> {
  /** The atomic unit: the state's check and the batch's writes. */
  unit: Unit;
  /** Each operation's answer, in the batch's order. */
  answers: Answer<R>[];
  /** How many of the operations the unit covers, when not all fit in one commit; the others
   * go into the key's next unit. 0 when the unit only makes progress on the first operation
   * (a set delete larger than one commit deletes a part of the set, then the rest). */
  taken?: number;
  /** The key's state after the unit committed with `versionstamp` (`undefined`: read it next
   * time). */
  next(versionstamp: string | null): S | undefined;
  /** Work left once the unit committed (deleting chunks nothing points at any more). */
  after?(): Promise<void>;
}

/** The storage of one kind of key, as the batcher sees it. */
export interface BatchModel<O, S, R> {
  /** Reads the key's state (the operations may need parts of it read too). */
  read(key: string, ops: readonly O[]): Promise<S>;
  /** Applies the operations in order to the state. */
  plan(key: string, state: S, ops: readonly O[]): Plan<S, R>;
  /** Whether a remembered state may be planned from for these operations (else it is read
   * again). */
  fresh?(state: S, ops: readonly O[]): boolean;
  /** How much memory a remembered state holds, in the units of `maxWeight`. */
  weigh?(state: S): number;
}

interface Pending<O, R> {
  op: O;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
  /** What must happen before the operation is planned; absent once it has. */
  ready?: Promise<void>;
  /** Whether its caller has its answer. */
  answered: boolean;
  /** Who waits for its answer (reads of the key asked after it). */
  watchers?: (() => void)[];
}

interface KeyState<O, S, R> {
  queue: Pending<O, R>[];
  busy: boolean;
  known?: S;
  weight: number;
  /** The key's last operation. */
  last?: Pending<O, R>;
}

/** Options of a {@linkcode KeyedBatcher}. */
export interface BatcherOptions {
  /** How many keys' states are remembered before idle ones are forgotten. */
  maxStates?: number;
  /** How much state weight is remembered before idle ones are forgotten. */
  maxWeight?: number;
  /** The most operations one unit takes. */
  maxBatch?: number;
}

/** Batches the operations of each key into units, and remembers each key's state. */
export class KeyedBatcher<O, S, R> {
  #committer: GroupCommitter;
  #model: BatchModel<O, S, R>;
  #states = new Map<string, KeyState<O, S, R>>();
  #flushes = new Set<Promise<void>>();
  #weight = 0;
  #maxStates: number;
  #maxWeight: number;
  #maxBatch: number;

  /** Batches the operations `model` plans into units for `committer`. */
  constructor(committer: GroupCommitter, model: BatchModel<O, S, R>, options: BatcherOptions = {}) {
    this.#committer = committer;
    this.#model = model;
    this.#maxStates = options.maxStates ?? 4096;
    this.#maxWeight = options.maxWeight ?? Infinity;
    this.#maxBatch = options.maxBatch ?? 1024;
  }

  /**
   * Runs `op` on `key` in the key's next unit; resolves with its answer once committed. The
   * operations of a key are planned in the order `run()` is called; with `ready`, `op` is
   * planned once it has resolved (and the key's later operations wait), or answered with its
   * error.
   */
  run(key: string, op: O, ready?: Promise<void>): Promise<R> {
    return new Promise((resolve, reject) => {
      let state = this.#states.get(key);
      if (state === undefined) {
        if (this.#states.size >= this.#maxStates) this.#forgetIdle();
        state = { queue: [], busy: false, weight: 0 };
        this.#states.set(key, state);
      }
      const pending: Pending<O, R> = { op, resolve, reject, answered: false };
      if (ready !== undefined) {
        pending.ready = ready;
        ready.then(() => pending.ready = undefined, () => {});
      }
      state.queue.push(pending);
      state.last = pending;
      if (!state.busy) {
        state.busy = true;
        const flush = this.#flush(key, state);
        this.#flushes.add(flush);
        flush.then(() => this.#flushes.delete(flush));
      }
    });
  }

  /**
   * Resolves once every operation of `key` run so far has its answer; `undefined` when they all
   * have already (no need to wait).
   */
  settled(key: string): Promise<void> | undefined {
    const last = this.#states.get(key)?.last;
    if (last === undefined || last.answered) return undefined;
    return new Promise((resolve) => (last.watchers ??= []).push(resolve));
  }

  /**
   * Forgets the remembered state of `key` (another writer changed it: an atomic batch), unless
   * a unit of the key is on its way (its outcome replaces the state anyway).
   */
  forget(key: string): void {
    const state = this.#states.get(key);
    if (state !== undefined && !state.busy) this.#remember(state, undefined);
  }

  /** Resolves once no unit is on its way. */
  async drain(): Promise<void> {
    while (this.#flushes.size > 0) await Promise.all(this.#flushes);
  }

  async #flush(key: string, state: KeyState<O, S, R>): Promise<void> {
    await undefined; // Let the callers of this same turn join the first batch.
    const queue = state.queue;
    while (queue.length > 0) {
      const first = queue[0];
      if (first.ready !== undefined) {
        try {
          await first.ready;
          first.ready = undefined;
        } catch (error) {
          queue.shift();
          this.#answer(first, { error: error as Error });
          continue;
        }
      }
      // The batch stops before the first operation not ready yet.
      let count = 1;
      while (count < Math.min(queue.length, this.#maxBatch) && !queue[count].ready) count++;
      await this.#commit(key, state, queue.splice(0, count));
    }
    state.busy = false;
    if (this.#weight > this.#maxWeight) this.#forgetIdle();
  }

  async #commit(key: string, state: KeyState<O, S, R>, batch: Pending<O, R>[]): Promise<void> {
    let ops = batch.map((pending) => pending.op);
    let plan: Plan<S, R>;
    try {
      for (;;) {
        let known = state.known;
        if (known === undefined || this.#model.fresh?.(known, ops) === false) {
          known = await this.#model.read(key, ops);
        }
        plan = this.#model.plan(key, known, ops);
        if (plan.taken !== undefined && plan.taken < ops.length) {
          state.queue.unshift(...batch.splice(plan.taken));
          ops = ops.slice(0, plan.taken);
        }
        const outcome = await this.#committer.submit(plan.unit);
        if (outcome.ok) {
          this.#remember(state, plan.next(outcome.versionstamp));
          break;
        }
        this.#remember(state, undefined);
        if (ops.length === 0) return; // A part of an operation: the queue plans it again.
      }
    } catch (error) {
      this.#remember(state, undefined);
      for (const pending of batch) this.#answer(pending, { error: error as Error });
      return;
    }
    await plan.after?.().catch(() => {}); // What it leaves, the sweep reclaims.
    for (let i = 0; i < batch.length; i++) this.#answer(batch[i], plan.answers[i]);
  }

  #answer(pending: Pending<O, R>, answer: Answer<R>): void {
    pending.answered = true;
    if ("error" in answer) pending.reject(answer.error);
    else pending.resolve(answer.value);
    pending.watchers?.forEach((watcher) => watcher());
  }

  #remember(state: KeyState<O, S, R>, known: S | undefined): void {
    const weight = known === undefined ? 0 : this.#model.weigh?.(known) ?? 1;
    this.#weight += weight - state.weight;
    state.weight = weight;
    state.known = known;
  }

  #forgetIdle(): void {
    for (const [key, state] of this.#states) {
      if (this.#states.size < this.#maxStates / 2 && this.#weight <= this.#maxWeight / 2) return;
      if (state.busy) continue;
      this.#weight -= state.weight;
      this.#states.delete(key);
    }
  }
}
