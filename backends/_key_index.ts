// The keys of one of the memory backend's Maps in order, for listings: pages in key order from
// a cursor, without sorting the whole Map for each page. Private to this folder.
//
// A sorted array holds the keys as of its last rebuild (some may have been deleted since: a page
// skips the keys the Map no longer has); keys added since then wait in a Set, which a page sorts
// and merges in. The Set is merged into the array once it is large next to it, so a page costs a
// binary search, a walk of the page, and the sort of the recent keys.

/** Whether a key still exists (and for the cache, has not expired). */
export type Exists = (key: string) => boolean;

function lowerBound(sorted: readonly string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle] < key) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The keys of a Map in order (JavaScript's: UTF-16 code units). */
export class KeyIndex {
  #sorted: string[] = [];
  #added = new Set<string>();

  /** Notes a key that is new in the Map (a key it already held changes nothing here). */
  add(key: string): void {
    this.#added.add(key);
  }

  /** Forgets every key (the Map was cleared). */
  clear(): void {
    this.#sorted = [];
    this.#added.clear();
  }

  /**
   * The existing keys that start with `prefix` and come after `after` (all of them without
   * it), in order, at most `limit`; and whether more follow.
   */
  page(
    prefix: string,
    after: string | undefined,
    limit: number,
    exists: Exists,
  ): { keys: string[]; more: boolean } {
    if (this.#added.size > Math.max(1024, this.#sorted.length >> 3)) this.#rebuild(exists);
    const recent = [...this.#added].sort();
    const start = after === undefined || after < prefix ? prefix : after;
    const inclusive = after === undefined || after < prefix;
    let i = lowerBound(this.#sorted, start);
    let j = lowerBound(recent, start);
    const keys: string[] = [];
    let previous: string | undefined;
    while (true) {
      const a = this.#sorted[i];
      const b = recent[j];
      let key: string;
      if (a === undefined && b === undefined) return { keys, more: false };
      if (b === undefined || (a !== undefined && a <= b)) {
        key = a;
        i++;
        if (a === b) j++; // A key deleted and added again is in both.
      } else {
        key = b;
        j++;
      }
      if (!key.startsWith(prefix)) return { keys, more: false };
      if (key === previous || (!inclusive && key === start) || !exists(key)) continue;
      if (keys.length === limit) return { keys, more: true };
      keys.push(key);
      previous = key;
    }
  }

  #rebuild(exists: Exists): void {
    const merged = new Set(this.#sorted);
    for (const key of this.#added) merged.add(key);
    this.#sorted = [...merged].filter(exists).sort();
    this.#added.clear();
  }
}
