// The pages of an export: entries read one at a time, gathered into pages of a bounded number
// of entries and bytes, so that an export holds one page at a time whatever the number of
// entries. Private to this folder.

import {
  type ExportOptions,
  type ExportPage,
  RestoreError,
  type StoredEntry,
  type UnreadableEntry,
} from "./backend.ts";

/** The default most entries a page. */
export const PAGE_ENTRIES = 1000;

/** The default most bytes a page (about: keys and values). */
export const PAGE_BYTES = 8 * 1024 * 1024;

/** About how many bytes an entry holds: its key and value (UTF-16 units count two). */
export function entryBytes(entry: StoredEntry): number {
  const key = 2 * entry.key.length + 32;
  switch (entry.service) {
    case "cache":
      return key + 2 * entry.value.length;
    case "kv":
      return key + entry.value.byteLength;
    case "sets": {
      let bytes = key;
      for (const item of entry.value) bytes += 2 * item.length + 16;
      return bytes;
    }
    default:
      return key + 8;
  }
}

/** What a backend's export reads: an entry, or something it cannot read as one. */
export type Found = StoredEntry | ({ unreadable: true } & UnreadableEntry);

/** Gathers what `found` yields into pages within `options`' bounds. */
export async function* pages(
  found: AsyncIterable<Found> | Iterable<Found>,
  options: ExportOptions = {},
): AsyncGenerator<ExportPage> {
  const maxEntries = Math.max(1, options.pageEntries ?? PAGE_ENTRIES);
  const maxBytes = Math.max(1, options.pageBytes ?? PAGE_BYTES);
  let page: ExportPage = { entries: [], unreadable: [] };
  let bytes = 0;
  for await (const item of found) {
    if ("unreadable" in item) {
      const { service, key, reason } = item;
      page.unreadable.push({ service, key, reason });
      continue;
    }
    const size = entryBytes(item);
    if (page.entries.length > 0 && (page.entries.length >= maxEntries || bytes + size > maxBytes)) {
      yield page;
      page = { entries: [], unreadable: [] };
      bytes = 0;
    }
    page.entries.push(item);
    bytes += size;
  }
  if (page.entries.length > 0 || page.unreadable.length > 0) yield page;
}

/**
 * Writes entries with `write` all at once (the backend batches them), and rejects with
 * `RestoreError` for the first that failed (the others may be written). When one key comes
 * more than once, only its last entry is written: the outcome of writing them in order.
 */
export async function restoreAll(
  entries: readonly StoredEntry[],
  write: (entry: StoredEntry) => Promise<unknown>,
): Promise<void> {
  const last = new Map<string, number>();
  entries.forEach((entry, index) => last.set(`${entry.service}\0${entry.key}`, index));
  const outcomes = await Promise.allSettled(entries.map((entry, index) => {
    if (last.get(`${entry.service}\0${entry.key}`) !== index) return Promise.resolve();
    try {
      return write(entry);
    } catch (error) {
      return Promise.reject(error);
    }
  }));
  const index = outcomes.findIndex((outcome) => outcome.status === "rejected");
  if (index >= 0) {
    throw new RestoreError(index, (outcomes[index] as PromiseRejectedResult).reason as Error);
  }
}
