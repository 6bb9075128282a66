// Watching keys of the disk backend. Private to this folder.
//
// Deno KV's own `watch()` on a local file sees only the writes of its own process (another
// process writing to the same file is not seen: tests/watch_process_test.ts shows it), so the
// disk backend tells its watchers itself, two ways:
//
// - **This process's writes**, at once: the group committer reports every unit it committed
//   (`committed()`), and the watched keys among its mutations are read again.
// - **Every process's writes**, by polling: while keys are watched, one poller reads the
//   versionstamps of their entries (the head of a cache or KV value, the counter, the flag, the
//   set's guard, which every change of the set rewrites) every `pollMs` (250 ms by default),
//   ten keys a `getMany()`, one read in flight at a time, and reads again the keys whose
//   versionstamp moved since their state was last read. So a write by another process is seen
//   within `pollMs` and a read.
//
// A state is read through the backend's point reader (the head entries of one turn in one
// `getMany()`), plus the chunks of a large value and the items of a set.

import type { WatchChange } from "@purple/protocol";
import type { WatchTarget } from "@purple/protocol/watch";
import { retryBusy } from "./_disk_busy.ts";
import { readValue } from "./_disk_blob.ts";
import type { Mutation } from "./_disk_commits.ts";
import { counterValue } from "./_disk_counter.ts";
import { counterKey, flagKey, headKey, KV_MAX_READ_KEYS, setGuardKey } from "./_disk_keys.ts";
import type { PointReader } from "./_disk_reads.ts";
import { readItems } from "./_disk_set.ts";
import { backgroundInterval } from "./_util.ts";
import { targetId, WatchHub, type WatchStream } from "./_watch_hub.ts";

/** How often the versionstamps of the watched keys are read by default, in ms. */
export const DEFAULT_WATCH_POLL_MS = 250;

/** The service of each first key part whose entries are a watched key's state. */
const SERVICE_OF_PART: Readonly<Record<string, WatchTarget["service"]>> = {
  cache: "cache",
  counter: "counters",
  flag: "flags",
  kv: "kv",
  set: "sets",
  "set-guard": "sets",
};

/** The entry whose versionstamp changes with every change of a watched key. */
function entryOf({ service, key }: WatchTarget): Deno.KvKey {
  switch (service) {
    case "cache":
      return headKey("cache", key);
    case "counters":
      return counterKey(key);
    case "flags":
      return flagKey(key);
    case "kv":
      return headKey("kv", key);
    case "sets":
      return setGuardKey(key);
  }
}

/** What the poller costs, for the bench and the docs. */
export interface PollStats {
  /** Polls made. */
  polls: number;
  /** `getMany()` calls made by the polls. */
  reads: number;
  /** Keys found changed by a poll (written by another process, or not read since). */
  changes: number;
  /** Time spent in polls, from start to end (the reads are awaited), in ms. */
  pollingMs: number;
}

/** The watchers of one disk backend (see the module comment). */
export class DiskWatch {
  #kv: Deno.Kv;
  #reader: PointReader;
  #hub: WatchHub;
  #pollMs: number;
  /** The versionstamp each watched key's entry had when its state was last read. */
  #stamps = new Map<string, string | null>();
  #stopPolling: (() => void) | undefined;
  #polling: Promise<void> | undefined;
  #closed = false;
  /** What the poller did so far. */
  readonly stats: PollStats = { polls: 0, reads: 0, changes: 0, pollingMs: 0 };

  /**
   * @param kv The database.
   * @param reader The backend's point reader.
   * @param pollMs How often the watched keys' versionstamps are read, in ms.
   */
  constructor(kv: Deno.Kv, reader: PointReader, pollMs = DEFAULT_WATCH_POLL_MS) {
    this.#kv = kv;
    this.#reader = reader;
    this.#pollMs = pollMs;
    this.#hub = new WatchHub({
      read: (targets) => Promise.all(targets.map((target) => this.#state(target))),
      onTargets: (_added, removed) => {
        for (const { service, key } of removed) this.#stamps.delete(targetId(service, key));
        this.#pollWhileWatched();
      },
    });
  }

  /** Opens a watcher (see `WatchHub.open`). */
  open(targets: readonly WatchTarget[], signal?: AbortSignal): WatchStream {
    return this.#hub.open(targets, signal);
  }

  /** Tells the watchers of the keys a committed unit wrote. */
  committed(mutations: readonly Mutation[]): void {
    if (this.#hub.watchers === 0) return; // No watched key: the hub would ignore them all.
    for (const { key } of mutations) {
      const service = SERVICE_OF_PART[key[0] as string];
      if (service !== undefined) this.#hub.changed(service, key[1] as string);
    }
  }

  /** Ends every watcher and stops the poller (waits for a poll in flight). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#hub.close();
    this.#stopPolling?.();
    this.#stopPolling = undefined;
    await this.#polling;
  }

  /** Polls while keys are watched, and only then. */
  #pollWhileWatched(): void {
    const watched = this.#hub.watchers > 0 && !this.#closed;
    if (watched && this.#stopPolling === undefined) {
      this.#stopPolling = backgroundInterval(() => {
        this.#polling ??= this.#poll().finally(() => this.#polling = undefined);
      }, this.#pollMs);
    } else if (!watched && this.#stopPolling !== undefined) {
      this.#stopPolling();
      this.#stopPolling = undefined;
    }
  }

  /** Reads the versionstamps of the watched keys, ten at a time; tells the hub what moved. */
  async #poll(): Promise<void> {
    const start = performance.now();
    try {
      await this.#pollOnce();
    } finally {
      this.stats.polls++;
      this.stats.pollingMs += performance.now() - start;
    }
  }

  async #pollOnce(): Promise<void> {
    const targets = [...this.#hub.targets()];
    for (let first = 0; first < targets.length && !this.#closed; first += KV_MAX_READ_KEYS) {
      const part = targets.slice(first, first + KV_MAX_READ_KEYS);
      let entries: Deno.KvEntryMaybe<unknown>[];
      try {
        this.stats.reads++;
        entries = await retryBusy(() => this.#kv.getMany(part.map(entryOf)));
      } catch {
        return; // The database is closing, or failing: the next poll tries again.
      }
      for (const [i, { service, key }] of part.entries()) {
        const id = targetId(service, key);
        const known = this.#stamps.get(id);
        if (known === undefined || known === entries[i].versionstamp) continue;
        this.stats.changes++;
        this.#hub.changed(service, key);
      }
    }
  }

  /** The state of a watched key now, noting the versionstamp of its entry. */
  async #state(target: WatchTarget): Promise<WatchChange | Error> {
    const read = async () => {
      const entry = await this.#reader.get<unknown>(entryOf(target));
      this.#stamps.set(targetId(target.service, target.key), entry.versionstamp);
      return entry;
    };
    try {
      const { service, key } = target;
      switch (service) {
        case "cache": {
          const found = await readValue(this.#kv, service, key, read, { action: "watch" });
          if (found === null) return { service, key, exists: false };
          return { service, key, exists: true, value: found.value, expiresAt: found.expiresAt! };
        }
        case "kv": {
          const found = await readValue(this.#kv, service, key, read, { action: "watch" });
          if (found === null) return { service, key, exists: false };
          return { service, key, exists: true, value: found.value, version: found.versionstamp };
        }
        case "counters": {
          const { value, versionstamp } = await read();
          return { service, key, exists: versionstamp !== null, value: counterValue(value) };
        }
        case "flags": {
          const { value, versionstamp } = await read();
          return { service, key, exists: versionstamp !== null, value: value === true };
        }
        case "sets": {
          const { versionstamp } = await read();
          const items = versionstamp === null
            ? []
            : await retryBusy(() => readItems(this.#kv, key));
          return { service, key, exists: items.length > 0, items };
        }
      }
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }
}
