// Point reads on Deno KV, batched. Private to this folder.
//
// Deno KV serves a local file from one thread, one request at a time, and a read costs about as
// much in passing requests and answers as in SQLite. So point reads go together, as writes do
// to the group committer: at most two `getMany()` calls are in flight (enough to keep that
// thread busy); the reads asked meanwhile wait, and go in the next calls, each distinct key
// once, ten keys a call (Deno KV's most). Every read still happens after it was asked, so it
// sees every write acknowledged before it.

import { retryBusy } from "./_disk_busy.ts";
import { KV_MAX_READ_KEYS } from "./_disk_keys.ts";

interface Waiter {
  resolve: (entry: Deno.KvEntryMaybe<unknown>) => void;
  reject: (error: unknown) => void;
}

/** The callers waiting for one key. */
interface Read {
  key: Deno.KvKey;
  waiters: Waiter[];
}

/** A key as a string: equal keys, equal ids (and different keys, different ids). */
function keyId(key: Deno.KvKey): string {
  return JSON.stringify(
    key.map((part) =>
      typeof part === "bigint" ? `${part}n` : part instanceof Uint8Array ? Array.from(part) : part
    ),
  ) + key.map((part) => typeof part).join();
}

/** How many `getMany()` calls may be in flight. */
const MAX_IN_FLIGHT = 2;

/** Batches the point reads of one database. */
export class PointReader {
  #kv: Deno.Kv;
  #pending = new Map<string, Read>();
  #scheduled = false;
  #inFlight = 0;

  /** Reads from `kv`. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Reads the entry at `key`, in a `getMany()` with the other reads of this turn. */
  get<T>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>> {
    return new Promise((resolve, reject) => {
      if (!this.#scheduled && this.#inFlight < MAX_IN_FLIGHT) {
        this.#scheduled = true;
        queueMicrotask(() => this.#flush());
      }
      const id = keyId(key);
      let read = this.#pending.get(id);
      if (read === undefined) this.#pending.set(id, read = { key, waiters: [] });
      read.waiters.push({ resolve: resolve as Waiter["resolve"], reject });
    });
  }

  #flush(): void {
    this.#scheduled = false;
    while (this.#pending.size > 0 && this.#inFlight < MAX_IN_FLIGHT) {
      const part: Read[] = [];
      for (const [id, read] of this.#pending) {
        this.#pending.delete(id);
        if (part.push(read) === KV_MAX_READ_KEYS) break;
      }
      this.#inFlight++;
      retryBusy(() => this.#kv.getMany(part.map((read) => read.key))).then(
        (entries) => {
          part.forEach((read, i) => read.waiters.forEach((waiter) => waiter.resolve(entries[i])));
        },
        (error) => part.forEach((read) => read.waiters.forEach((waiter) => waiter.reject(error))),
      ).finally(() => {
        this.#inFlight--;
        this.#flush();
      });
    }
  }
}
