// Listings of the disk backend: the keys of one service that start with a prefix, a page at a
// time. Private to this folder.
//
// Every listed thing is one entry under its service's first key part (["counter", key], a KV or
// cache head, ["set-guard", name] for a set with items), and Deno KV keeps the entries in key
// order: a string part in the order of its UTF-8 bytes. The keys that start with a prefix are
// therefore one run of entries from [service, prefix]: a page reads from there (or from just
// after the previous page's last key, which its cursor carries) and stops at the first key
// that does not start with the prefix, or once it holds `limit` keys and has seen one more
// (else that page is the last, and has no cursor). A key present during the whole listing is
// listed exactly once: each page starts strictly after the last key of the previous one.
//
// A page reads only what it lists (plus one entry, and the expired cache entries it skips);
// Deno KV lists values with their keys, so it reads those values too (up to 64 KiB a KV head).

import type { KeyPage } from "@purple/protocol";
import { utf8Length } from "@purple/protocol/text";
import { InvalidArgumentError } from "@purple/protocol/errors";
import type { ListQuery } from "./backend.ts";
import { decodeCursor, encodeCursor, isAfterKey } from "./_cursor.ts";
import { retryBusy } from "./_disk_busy.ts";

/** The backend named in the disk backend's cursors. */
const CURSOR_TAG = "disk";

/** How one service's entries are listed. */
export interface ListedService {
  /** The first key part of its entries. */
  part: string;
  /** Whether an entry's value stands for a key that exists (cache: not expired). */
  exists?: (value: unknown, now: number) => boolean;
}

/**
 * Lists one page of a service's keys that start with `query.prefix`, after the cursor's key.
 * @throws {InvalidArgumentError} For a cursor that is not one of this listing's (another
 * backend's, another prefix's, a key longer than any key stored).
 */
export async function listKeys(
  kv: Deno.Kv,
  service: ListedService,
  query: ListQuery,
  maxKeyBytes: number,
): Promise<KeyPage> {
  const { prefix, limit } = query;
  let start = prefix;
  if (query.cursor !== undefined) {
    const after = decodeCursor(CURSOR_TAG, query.cursor, isAfterKey).k;
    if (!after.startsWith(prefix) || utf8Length(after) > maxKeyBytes) {
      throw new InvalidArgumentError(
        `Bad cursor: not a cursor of this listing (it is past a key that does not start with the prefix, or longer than any key); pass back the cursor of the previous page as it came`,
      );
    }
    // The smallest string after `after`: nothing sorts between the two.
    start = `${after}\u0000`;
  }
  return await retryBusy(() => readPage(kv, service, start, prefix, limit));
}

async function readPage(
  kv: Deno.Kv,
  service: ListedService,
  start: string,
  prefix: string,
  limit: number,
): Promise<KeyPage> {
  const keys: string[] = [];
  const now = Date.now();
  const entries = kv.list(
    { prefix: [service.part], start: [service.part, start] },
    { batchSize: Math.min(limit + 1, 1000) },
  );
  for await (const { key, value } of entries) {
    const name = key[1];
    if (typeof name !== "string" || !name.startsWith(prefix)) break;
    if (key.length !== 2 || service.exists?.(value, now) === false) continue;
    if (keys.length === limit) {
      return { keys, cursor: encodeCursor(CURSOR_TAG, { k: keys[limit - 1] }) };
    }
    keys.push(name);
  }
  return { keys };
}
