// Point reads on Deno KV, batched. Private to this folder.
//
// Deno KV serves a local file from one thread, one request at a time, and a read costs about as
// much in passing requests and answers as in SQLite. So the point reads asked in one turn of the
// event loop go together: each distinct key once, ten keys a `getMany()` (Deno KV's most), the
// calls concurrent. Every read still happens after it was asked, so it sees every write
// acknowledged before it.

import { retryBusy } from "./_disk_busy.ts";
import { KV_MAX_READ_KEYS } from "./_disk_keys.ts";

interface Waiter {
  resolve: (entry: Deno.KvEntryMaybe<unknown>) => void;
  reject: (error: unknown) => void;
}

/** A key as a string: equal keys, equal ids (and different keys, different ids). */
function keyId(key: Deno.KvKey): string {
  return JSON.stringify(
    key.map((part) =>
      typeof part === "bigint" ? `${part}n` : part instanceof Uint8Array ? Array.from(part) : part
    ),
  ) + key.map((part) => typeof part).join();
}

/** Batches the point reads of one database. */
export class PointReader {
  #kv: Deno.Kv;
  #pending = new Map<string, { key: Deno.KvKey; waiters: Waiter[] }>();

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Reads the entry at `key`, in a `getMany()` with the other reads of this turn. */
  get<T>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>> {
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0) queueMicrotask(() => this.#flush());
      const id = keyId(key);
      let read = this.#pending.get(id);
      if (read === undefined) this.#pending.set(id, read = { key, waiters: [] });
      read.waiters.push({ resolve: resolve as Waiter["resolve"], reject });
    });
  }

  #flush(): void {
    const reads = [...this.#pending.values()];
    this.#pending.clear();
    for (let first = 0; first < reads.length; first += KV_MAX_READ_KEYS) {
      const part = reads.slice(first, first + KV_MAX_READ_KEYS);
      retryBusy(() => this.#kv.getMany(part.map((read) => read.key))).then(
        (entries) => {
          part.forEach((read, i) => read.waiters.forEach((waiter) => waiter.resolve(entries[i])));
        },
        (error) => part.forEach((read) => read.waiters.forEach((waiter) => waiter.reject(error))),
      );
    }
  }
}
