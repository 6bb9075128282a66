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
  /** How many of the operations the unit covers, when not all fit in one commit (at least
   * one); the others go into the key's next unit. */
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
  /** Whether a remembered state may be planned from (else it is read again). */
  fresh?(state: S): boolean;
  /** How much memory a remembered state holds, in the units of `maxWeight`. */
  weigh?(state: S): number;
}

interface Pending<O, R> {
  op: O;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

interface KeyState<O, S, R> {
  queue: Pending<O, R>[];
  busy: boolean;
  known?: S;
  weight: number;
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

  /** Runs `op` on `key` in the key's next unit; resolves with its answer once committed. */
  run(key: string, op: O): Promise<R> {
    return new Promise((resolve, reject) => {
      let state = this.#states.get(key);
      if (state === undefined) {
        if (this.#states.size >= this.#maxStates) this.#forgetIdle();
        state = { queue: [], busy: false, weight: 0 };
        this.#states.set(key, state);
      }
      state.queue.push({ op, resolve, reject });
      if (!state.busy) {
        state.busy = true;
        const flush = this.#flush(key, state);
        this.#flushes.add(flush);
        flush.then(() => this.#flushes.delete(flush));
      }
    });
  }

  /** Resolves once no unit is on its way. */
  async drain(): Promise<void> {
    while (this.#flushes.size > 0) await Promise.all(this.#flushes);
  }

  async #flush(key: string, state: KeyState<O, S, R>): Promise<void> {
    await undefined; // Let the callers of this same turn join the first batch.
    while (state.queue.length > 0) {
      const batch = state.queue.splice(0, this.#maxBatch);
      await this.#commit(key, state, batch);
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
        if (known === undefined || this.#model.fresh?.(known) === false) {
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
      }
    } catch (error) {
      this.#remember(state, undefined);
      for (const pending of batch) pending.reject(error);
      return;
    }
    await plan.after?.().catch(() => {}); // What it leaves, the sweep reclaims.
    for (let i = 0; i < batch.length; i++) {
      const answer = plan.answers[i];
      if ("error" in answer) batch[i].reject(answer.error);
      else batch[i].resolve(answer.value);
    }
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
