/**
 * Listing every key of a service, page after page: what the clients' `keys()` iterators are
 * built on. A backend that may give a key twice in one listing (Redis) is covered: repeats are
 * dropped.
 *
 * @example
 * ```ts
 * import { iterateKeys } from "@purple/protocol";
 *
 * const pages = [{ keys: ["a", "b"], cursor: "1" }, { keys: ["b", "c"] }];
 * const list = (options?: { cursor?: string }) =>
 *   Promise.resolve(pages[options?.cursor === undefined ? 0 : 1]);
 * for await (const key of iterateKeys(list)) console.log(key); // a, b, c
 * ```
 *
 * @module
 */

import type { KeyPage, ListOptions, Operations } from "./operations.ts";

/**
 * The services that have keys, by their names in the HTTP routes, and their listings.
 *
 * @example
 * ```ts
 * import { LISTINGS } from "@purple/protocol";
 *
 * console.log(LISTINGS.kv); // "kvList"
 * ```
 */
export const LISTINGS:
  & {
    readonly [Service in KeyService]: `${string}List`;
  }
  & {
    readonly cache: "cacheList";
    readonly counters: "counterList";
    readonly flags: "flagList";
    readonly kv: "kvList";
    readonly sets: "setList";
  } = Object.freeze({
    cache: "cacheList",
    counters: "counterList",
    flags: "flagList",
    kv: "kvList",
    sets: "setList",
  });

/**
 * A service with keys, named as its HTTP routes are (`/kv`, `/sets`, ...).
 *
 * @example
 * ```ts
 * import type { KeyService } from "@purple/protocol";
 *
 * const service: KeyService = "counters";
 * console.log(service);
 * ```
 */
export type KeyService = "cache" | "counters" | "flags" | "kv" | "sets";

/**
 * Every key a listing gives, page after page, each once (a repeat, which Redis may give, is
 * dropped).
 *
 * @param list The listing: one of the `...List` operations.
 * @param options The prefix, and the page size of the requests.
 * @returns The keys.
 *
 * @example
 * ```ts ignore
 * import { iterateKeys } from "@purple/protocol";
 * import { HttpClient } from "@purple/client";
 *
 * const purple = new HttpClient("http://localhost:8080");
 * for await (const key of iterateKeys((o) => purple.kvList(o), { prefix: "user:" })) {
 *   console.log(key);
 * }
 * ```
 */
export async function* iterateKeys(
  list: (options?: ListOptions) => Promise<KeyPage>,
  options: Omit<ListOptions, "cursor"> = {},
): AsyncGenerator<string, void, undefined> {
  const seen = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await list(cursor === undefined ? { ...options } : { ...options, cursor });
    for (const key of page.keys) {
      if (seen.has(key)) continue;
      seen.add(key);
      yield key;
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/**
 * Every key of one service of `ops`, page after page, each once.
 *
 * @param ops Any implementation of the operations.
 * @param service The service.
 * @param options The prefix, and the page size of the requests.
 * @returns The keys (set names, for `sets`).
 *
 * @example
 * ```ts ignore
 * import { keysOf } from "@purple/protocol";
 *
 * for await (const key of keysOf(ops, "counters", { prefix: "visits:" })) console.log(key);
 * ```
 */
export function keysOf(
  ops: Operations,
  service: KeyService,
  options?: Omit<ListOptions, "cursor">,
): AsyncGenerator<string, void, undefined> {
  const list = LISTINGS[service];
  return iterateKeys((page) => ops[list](page), options);
}
