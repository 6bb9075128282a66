/**
 * What the clients and the servers share about watches besides the contract's types: the keys of
 * a watch as a list of targets (checked, each once), and a change as JSON, as the `data:` of an
 * event of `GET /watch` carries it (int64 values as strings of digits, bytes as
 * `{ "base64": "..." }`, as `POST /batch` has them).
 *
 * It has no dependency: `HttpClient` uses it in browsers too.
 *
 * @example A change as the HTTP server sends it
 * ```ts
 * import { changeToJson } from "@purple/protocol/watch";
 *
 * const json = changeToJson({ service: "counters", key: "hits", exists: true, value: 3n });
 * console.log(JSON.stringify(json)); // {"service":"counters","key":"hits","exists":true,"value":"3"}
 * ```
 *
 * @module
 */

import { InternalError, InvalidArgumentError } from "./errors.ts";
import type { KeyService } from "./listing.ts";
import type { WatchChange, WatchKeys } from "./operations.ts";
import { fromBase64, toBase64 } from "./text.ts";
import { assertName, describe } from "./validate.ts";

/**
 * The services whose keys can be watched, in the order a watch reads them (and `GET /watch`
 * names them: one query parameter each).
 *
 * @example
 * ```ts
 * import { WATCH_SERVICES } from "@purple/protocol/watch";
 *
 * console.log(WATCH_SERVICES); // ["cache", "counters", "flags", "kv", "sets"]
 * ```
 */
export const WATCH_SERVICES: readonly KeyService[] = Object.freeze([
  "cache",
  "counters",
  "flags",
  "kv",
  "sets",
]);

/**
 * The default of the most keys one watch may follow (the server's `--max-watch-keys`).
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_WATCH_KEYS } from "@purple/protocol/watch";
 *
 * console.log(DEFAULT_MAX_WATCH_KEYS); // 100
 * ```
 */
export const DEFAULT_MAX_WATCH_KEYS = 100;

/**
 * One watched key: its service and the key.
 *
 * @example
 * ```ts
 * import type { WatchTarget } from "@purple/protocol/watch";
 *
 * const target: WatchTarget = { service: "flags", key: "dark-mode" };
 * console.log(target.service);
 * ```
 */
export interface WatchTarget {
  /** The service. */
  readonly service: KeyService;
  /** The key (a set's name for `sets`). */
  readonly key: string;
}

/**
 * The keys of a watch as targets, service by service in {@linkcode WATCH_SERVICES}' order, each
 * key once, checked for their shape (a list of non-empty, well-formed strings per known
 * service). The limits (key length, how many keys) are the server's to check.
 *
 * @param keys The keys, by service.
 * @returns The targets.
 * @throws {InvalidArgumentError} When `keys` is not an object of lists of keys, names a service
 * that has no keys to watch, or holds no key at all.
 *
 * @example
 * ```ts
 * import { watchTargets } from "@purple/protocol/watch";
 *
 * console.log(watchTargets({ kv: ["a", "a"], flags: ["b"] }));
 * // [{ service: "flags", key: "b" }, { service: "kv", key: "a" }]
 * ```
 */
export function watchTargets(keys: WatchKeys): WatchTarget[] {
  if (typeof keys !== "object" || keys === null || Array.isArray(keys)) {
    throw new InvalidArgumentError(
      `Bad watch: expected the keys by service ({ kv: ["a"], flags: ["b"] }), found ${
        describe(keys)
      }`,
    );
  }
  for (const name of Object.keys(keys)) {
    if (!(WATCH_SERVICES as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(
        `Bad watch: '${name}' is not a service to watch (expected ${WATCH_SERVICES.join(", ")})`,
      );
    }
  }
  const targets: WatchTarget[] = [];
  for (const service of WATCH_SERVICES) {
    const list = keys[service];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      throw new InvalidArgumentError(
        `Bad watch: the ${service} keys must be a list of keys, found ${describe(list)}`,
      );
    }
    const seen = new Set<string>();
    for (const key of list) {
      assertName(service === "sets" ? "set name" : "key", key);
      if (seen.has(key)) continue;
      seen.add(key);
      targets.push({ service, key });
    }
  }
  if (targets.length === 0) {
    throw new InvalidArgumentError("Bad watch: no key to watch (name at least one)");
  }
  return targets;
}

/**
 * The keys of targets, by service (the inverse of {@linkcode watchTargets}).
 *
 * @param targets The targets.
 * @returns The keys, by service; services without a key are left out.
 *
 * @example
 * ```ts
 * import { watchKeysOf } from "@purple/protocol/watch";
 *
 * console.log(watchKeysOf([{ service: "kv", key: "a" }])); // { kv: ["a"] }
 * ```
 */
export function watchKeysOf(targets: readonly WatchTarget[]): WatchKeys {
  const keys: Partial<Record<KeyService, string[]>> = {};
  for (const { service, key } of targets) (keys[service] ??= []).push(key);
  return keys;
}

/**
 * A change as JSON: `{ "service", "key", "exists", ... }` with the state's fields, typed per
 * service: `value` (a string for the cache, with `expiresAt` in ms since the epoch; a string of
 * digits for counters; a boolean for flags; `{ "base64": "..." }` for KV values, with
 * `version`), or `items` for sets.
 *
 * @example
 * ```ts
 * import type { ChangeJson } from "@purple/protocol/watch";
 *
 * const json: ChangeJson = { service: "flags", key: "beta", exists: true, value: true };
 * console.log(json.service);
 * ```
 */
export type ChangeJson =
  & { service: KeyService; key: string; exists: boolean }
  & Record<string, unknown>;

/**
 * A change as JSON (see {@linkcode ChangeJson}).
 *
 * @param change The change.
 * @returns Its JSON object, for `JSON.stringify`.
 *
 * @example
 * ```ts
 * import { changeToJson } from "@purple/protocol/watch";
 *
 * const json = changeToJson({ service: "kv", key: "k", exists: true, value: new Uint8Array([1]), version: "7" });
 * console.log(JSON.stringify(json)); // {"service":"kv","key":"k","exists":true,"value":{"base64":"AQ=="},"version":"7"}
 * ```
 */
export function changeToJson(change: WatchChange): ChangeJson {
  const { service, key, exists } = change;
  switch (change.service) {
    case "cache":
      return change.exists
        ? { service, key, exists, value: change.value, expiresAt: change.expiresAt }
        : { service, key, exists };
    case "counters":
      return { service, key, exists, value: String(change.value) };
    case "flags":
      return { service, key, exists, value: change.value };
    case "kv":
      return change.exists
        ? {
          service,
          key,
          exists,
          value: { base64: toBase64(change.value) },
          version: change.version,
        }
        : { service, key, exists };
    case "sets":
      return { service, key, exists, items: change.items };
  }
}

/**
 * A change from its JSON, as `HttpClient` reads the events of `GET /watch`.
 *
 * @param json The parsed `data:` of an event.
 * @returns The change.
 * @throws {InternalError} When the JSON is not a change.
 *
 * @example
 * ```ts
 * import { changeFromJson } from "@purple/protocol/watch";
 *
 * const change = changeFromJson({ service: "counters", key: "hits", exists: true, value: "3" });
 * console.log(change); // { service: "counters", key: "hits", exists: true, value: 3n }
 * ```
 */
export function changeFromJson(json: unknown): WatchChange {
  const { service, key, exists, value, expiresAt, version, items } =
    (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
  const bad = (expected: string) =>
    new InternalError(`Cannot read a change of the watch: expected ${expected}`);
  if (typeof key !== "string" || typeof exists !== "boolean") throw bad("a key and exists");
  switch (service) {
    case "cache":
      if (!exists) return { service, key, exists };
      if (typeof value !== "string" || typeof expiresAt !== "number") {
        throw bad("a cache value and expiresAt");
      }
      return { service, key, exists, value, expiresAt };
    case "counters":
      if (typeof value !== "string" || !/^-?[0-9]+$/.test(value)) {
        throw bad("a counter as a string of digits");
      }
      return { service, key, exists, value: BigInt(value) };
    case "flags":
      if (typeof value !== "boolean") throw bad("a flag's boolean");
      return { service, key, exists, value };
    case "kv": {
      if (!exists) return { service, key, exists };
      const text = (value as { base64?: unknown } | null)?.base64;
      if (typeof text !== "string" || typeof version !== "string") {
        throw bad('a KV value {"base64": ...} and its version');
      }
      try {
        return { service, key, exists, value: fromBase64(text), version };
      } catch {
        throw bad("a KV value in base64");
      }
    }
    case "sets":
      if (!Array.isArray(items) || !items.every((item) => typeof item === "string")) {
        throw bad("a set's items");
      }
      return { service, key, exists, items };
    default:
      throw bad(`a service (${WATCH_SERVICES.join(", ")})`);
  }
}
