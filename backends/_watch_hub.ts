// The watchers of one backend, and what every backend's watch shares. Private to this folder.
//
// A backend owns one WatchHub. Its watchers register the keys they follow; the backend tells the
// hub when a key may have changed (`changed()`: from its own write path, from a poller, from a
// Redis channel), and the hub reads the key's state again and hands it to the key's watchers:
//
// - **One read a key at a time**: a key changed while its read is in flight is read once more
//   after it, so the last state is always read; the keys changed in one turn are read in one
//   batch (the reader's getMany, a pipeline).
// - **At most one new state a key every `INTERVAL_MS`** (50 ms): the first change of a burst is
//   read at once, the changes that follow within the interval are read together at its end. So
//   a key written thousands of times a second costs its watchers 20 states a second, not one a
//   write, and an isolated change is not delayed.
// - **Each state once**: a state equal to the last one read (the same fingerprint: a KV value's
//   version, a counter's value, ...) goes only to the watchers that have had no state of the key
//   yet. A watcher that joins makes its keys be read again, and gets that state whatever it is.
// - **Bounded per watcher**: a watcher keeps at most one pending state per key (a newer state
//   replaces the one not taken yet), so a consumer that does not read costs one state a key.
// - **Cache expiry**: a watched cache entry is read again when its TTL passes (a timer per
//   watched entry), so its watchers see it go.
// - A failed read (the backend unreachable) fails the watchers still waiting for their first
//   state of the key (their watch rejects with the error); for the others it is tried again a
//   second later, until it succeeds.

import type { WatchChange } from "@purple/protocol";
import type { WatchTarget } from "@purple/protocol/watch";

/** Reads the current state of each target, in order; a read that failed is an Error in place. */
export type StateReader = (targets: readonly WatchTarget[]) => Promise<Array<WatchChange | Error>>;

/** How a hub reads, and whom it tells that the watched keys changed. */
export interface WatchHubOptions {
  /** Reads states (see {@linkcode StateReader}). */
  read: StateReader;
  /**
   * Told when keys start being watched (by a first watcher) or stop (their last watcher left),
   * for a backend that follows the watched keys only (a poller, channel subscriptions).
   */
  onTargets?: (added: readonly WatchTarget[], removed: readonly WatchTarget[]) => void;
  /** The clock (ms since the epoch), for cache expiry. Default `Date.now`. */
  now?: () => number;
}

/** The least time between two new states of a key, in ms. */
const INTERVAL_MS = 50;
/** How long after a failed read it is tried again, in ms. */
const RETRY_MS = 1000;

/** The longest a timer may wait (setTimeout's limit); a later expiry is looked at again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A watched key's id: its service and key. */
export function targetId(service: string, key: string): string {
  return `${service}\u0000${key}`;
}

/** What tells two states of a key apart (a KV value by its version). */
function fingerprint(change: WatchChange): string {
  switch (change.service) {
    case "cache":
      return change.exists ? `1${change.expiresAt}\u0000${change.value}` : "0";
    case "counters":
      return `${Number(change.exists)}${change.value}`;
    case "flags":
      return `${Number(change.exists)}${Number(change.value)}`;
    case "kv":
      return change.exists ? `1${change.version}` : "0";
    case "sets":
      return `${change.items.length}\u0000${change.items.join("\u0000")}`;
  }
}

/** One watched key: its watchers, and what the hub knows of it. */
class Entry {
  readonly watchers = new Set<WatchStream>();
  /** The watchers that have had no state of the key yet. */
  readonly fresh = new Set<WatchStream>();
  fingerprint: string | undefined;
  reading = false;
  /** When the key may be read again (its last new state plus the interval). */
  nextAt = 0;
  /** Reads the key once the interval has passed. */
  throttle: ReturnType<typeof setTimeout> | undefined;
  expiry: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly id: string, readonly target: WatchTarget) {}
}

/** The watchers of one backend (see the module comment). */
export class WatchHub {
  #read: StateReader;
  #onTargets: WatchHubOptions["onTargets"];
  #now: () => number;
  #entries = new Map<string, Entry>();
  /** Keys to read (again). */
  #dirty = new Set<Entry>();
  /** Keys whose read failed, read again when the retry timer fires. */
  #failed = new Set<Entry>();
  #flushQueued = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #streams = new Set<WatchStream>();
  #closed = false;

  constructor(options: WatchHubOptions) {
    this.#read = options.read;
    this.#onTargets = options.onTargets;
    this.#now = options.now ?? Date.now;
  }

  /** How many watchers are open. */
  get watchers(): number {
    return this.#streams.size;
  }

  /** Every watched key. */
  *targets(): IterableIterator<WatchTarget> {
    for (const entry of this.#entries.values()) yield entry.target;
  }

  /**
   * Opens a watcher of `targets` (checked, each once): its first states are read now.
   * @param targets The keys.
   * @param signal Ends the watcher when it aborts (its iteration rejects with the reason).
   * @returns The watcher, an async iterator of changes.
   */
  open(targets: readonly WatchTarget[], signal?: AbortSignal): WatchStream {
    const ids = targets.map(({ service, key }) => targetId(service, key));
    const stream = new WatchStream(() => this.#leave(stream, ids));
    if (this.#closed) {
      stream.end();
      return stream;
    }
    if (signal?.aborted) {
      stream.fail(signal.reason);
      return stream;
    }
    this.#streams.add(stream);
    const added: WatchTarget[] = [];
    for (const [i, id] of ids.entries()) {
      let entry = this.#entries.get(id);
      if (entry === undefined) {
        entry = new Entry(id, targets[i]);
        this.#entries.set(id, entry);
        added.push(targets[i]);
      }
      entry.watchers.add(stream);
      entry.fresh.add(stream);
      this.#dirty.add(entry);
    }
    if (added.length > 0) this.#onTargets?.(added, []);
    if (signal !== undefined) {
      const abort = () => stream.fail(signal.reason);
      signal.addEventListener("abort", abort, { once: true });
      stream.onEnd(() => signal.removeEventListener("abort", abort));
    }
    this.#queueFlush();
    return stream;
  }

  /** Tells the hub that a key may have changed: its watchers get its state, if it is new. */
  changed(service: string, key: string): void {
    if (this.#entries.size === 0) return; // Nobody watches: no key to build, no lookup.
    const entry = this.#entries.get(targetId(service, key));
    if (entry === undefined) return;
    this.#dirty.add(entry);
    this.#queueFlush();
  }

  /** Ends every watcher (their iterations end) and stops every timer. */
  close(): void {
    this.#closed = true;
    for (const stream of [...this.#streams]) stream.end();
    clearTimeout(this.#retryTimer);
    for (const entry of this.#entries.values()) {
      clearTimeout(entry.throttle);
      clearTimeout(entry.expiry);
    }
  }

  #leave(stream: WatchStream, ids: readonly string[]): void {
    this.#streams.delete(stream);
    const removed: WatchTarget[] = [];
    for (const id of ids) {
      const entry = this.#entries.get(id);
      if (entry === undefined) continue;
      entry.watchers.delete(stream);
      entry.fresh.delete(stream);
      if (entry.watchers.size > 0) continue;
      this.#entries.delete(id);
      this.#dirty.delete(entry);
      this.#failed.delete(entry);
      clearTimeout(entry.expiry);
      clearTimeout(entry.throttle);
      removed.push(entry.target);
    }
    if (removed.length > 0) this.#onTargets?.([], removed);
  }

  #queueFlush(): void {
    if (this.#flushQueued || this.#closed) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  /** Reads every dirty key that is not being read already, in one batch. */
  #flush(): void {
    if (this.#closed) return;
    const batch: Entry[] = [];
    const now = performance.now();
    for (const entry of this.#dirty) {
      if (entry.reading) continue; // Read again once its read in flight is done.
      if (now < entry.nextAt) {
        // A new state went out less than an interval ago: read at the interval's end.
        entry.throttle ??= setTimeout(() => {
          entry.throttle = undefined;
          this.#queueFlush();
        }, entry.nextAt - now);
        continue;
      }
      this.#dirty.delete(entry);
      entry.reading = true;
      batch.push(entry);
    }
    if (batch.length === 0) return;
    let results: Promise<Array<WatchChange | Error>>;
    try {
      results = this.#read(batch.map((entry) => entry.target));
    } catch (error) {
      results = Promise.reject(error);
    }
    results.then(
      (states) => this.#settle(batch, states),
      (error) => this.#settle(batch, batch.map(() => asError(error))),
    );
  }

  #settle(batch: readonly Entry[], states: ReadonlyArray<WatchChange | Error>): void {
    for (const [i, entry] of batch.entries()) {
      entry.reading = false;
      if (this.#closed || this.#entries.get(entry.id) !== entry) continue; // No watcher left.
      const state = states[i] ?? new Error("the read gave no state");
      if (state instanceof Error) {
        for (const stream of [...entry.fresh]) stream.fail(state);
        if (this.#entries.get(entry.id) === entry) this.#retry(entry);
        continue;
      }
      const print = fingerprint(state);
      const changed = print !== entry.fingerprint;
      const to = changed ? entry.watchers : entry.fresh;
      entry.fingerprint = print;
      if (changed) entry.nextAt = performance.now() + INTERVAL_MS;
      for (const stream of to) stream.push(entry.id, state);
      entry.fresh.clear();
      this.#expireLater(entry, state);
    }
    if (this.#dirty.size > 0) this.#queueFlush();
  }

  #retry(entry: Entry): void {
    this.#failed.add(entry);
    this.#retryTimer ??= setTimeout(() => {
      this.#retryTimer = undefined;
      for (const failed of this.#failed) this.#dirty.add(failed);
      this.#failed.clear();
      this.#queueFlush();
    }, RETRY_MS);
  }

  /** A cache entry is read again when it expires, so that its watchers see it go. */
  #expireLater(entry: Entry, state: WatchChange): void {
    clearTimeout(entry.expiry);
    entry.expiry = undefined;
    if (state.service !== "cache" || !state.exists) return;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, state.expiresAt - this.#now() + 1));
    entry.expiry = setTimeout(() => {
      entry.expiry = undefined;
      this.changed(entry.target.service, entry.target.key);
    }, wait);
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * One watcher: an async iterator of changes, with at most one pending state per key (a newer
 * one replaces it). It ends when its consumer returns, with an error when it fails (an aborted
 * signal, a first state that could not be read), or when its hub closes.
 */
export class WatchStream implements AsyncIterableIterator<WatchChange> {
  /** The states not taken yet, by key, in the order their keys first waited. */
  #pending = new Map<string, WatchChange>();
  #waiting: {
    resolve: (result: IteratorResult<WatchChange>) => void;
    reject: (error: unknown) => void;
  } | undefined;
  #ended = false;
  #error: { reason: unknown } | undefined;
  #release: (() => void) | undefined;
  #onEnd: Array<() => void> = [];

  /** @param release Unregisters the watcher from its hub; called once, when it ends. */
  constructor(release: () => void) {
    this.#release = release;
  }

  /** Runs `fn` once the watcher has ended. */
  onEnd(fn: () => void): void {
    if (this.#ended) fn();
    else this.#onEnd.push(fn);
  }

  /** Hands a state of a key over (or keeps it, replacing the key's state not taken yet). */
  push(id: string, change: WatchChange): void {
    if (this.#ended) return;
    const waiting = this.#waiting;
    if (waiting !== undefined) {
      this.#waiting = undefined;
      waiting.resolve({ value: change, done: false });
    } else this.#pending.set(id, change);
  }

  /** Ends the watcher with an error: the next step rejects with it. */
  fail(reason: unknown): void {
    if (this.#ended) return;
    this.#error = { reason };
    this.#finish();
  }

  /** Ends the watcher: its iteration ends. */
  end(): void {
    this.#finish();
  }

  next(): Promise<IteratorResult<WatchChange>> {
    const first = this.#pending.entries().next();
    if (!first.done) {
      const [id, change] = first.value;
      this.#pending.delete(id);
      return Promise.resolve({ value: change, done: false });
    }
    if (this.#ended) {
      const error = this.#error;
      this.#error = undefined; // Rejects once; then the iteration is over.
      return error === undefined
        ? Promise.resolve({ value: undefined, done: true })
        : Promise.reject(error.reason);
    }
    if (this.#waiting !== undefined) {
      return Promise.reject(new TypeError("Cannot take the next change: a step is in flight"));
    }
    return new Promise((resolve, reject) => this.#waiting = { resolve, reject });
  }

  return(): Promise<IteratorResult<WatchChange>> {
    this.#error = undefined;
    this.#finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<WatchChange> {
    return this;
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#pending.clear();
    const release = this.#release;
    this.#release = undefined;
    release?.();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting !== undefined) {
      const error = this.#error;
      this.#error = undefined;
      if (error === undefined) waiting.resolve({ value: undefined, done: true });
      else waiting.reject(error.reason);
    }
    for (const fn of this.#onEnd.splice(0)) fn();
  }
}
