// What answers each operation over HTTP: read its arguments from the request (path, query,
// body), call it, write the answer in the original Purple's JSON (with the fixes and the binary
// KV extension of the wire contract). Where each is served (method and route) comes from the
// operation table; the compiler refuses an operation without a handler here. Private to the
// HTTP server.

import type { Context } from "hono";
import type { KeyPage, Operations, WireOperationName } from "@purple/protocol";
import { InvalidArgumentError } from "@purple/protocol/errors";
import { batchFromJson, outcomesToJson } from "@purple/protocol/batch-json";
import { clip } from "@purple/protocol/text";
import type { Limits } from "../backends/limits.ts";
import {
  acceptsBytes,
  etag,
  isBytes,
  keyFromPath,
  listOptions,
  parseBool,
  parseInteger,
  parseTtl,
  queryParam,
  writeConditions,
} from "./_http_input.ts";
import type { Access } from "./_auth.ts";
import { runBatch } from "./_batch.ts";
import { readBody } from "./_http_body.ts";
import type { Deadlines } from "./_deadlines.ts";
import { watchHandler } from "./_http_watch.ts";

/** What a handler needs besides the request. */
export interface RouteContext {
  /** The operations to call (already within the backend time limit). */
  readonly ops: Operations;
  /** The limits in force (body sizes and the body time limit). */
  readonly limits: Limits;
  /** The server's deadlines, which cut off a body that does not arrive in time. */
  readonly deadlines: Deadlines;
  /** Where log lines go (an internal error inside a batch). */
  readonly log: (line: string) => void;
  /** Told of each body refused for its size or time (the metrics count them). */
  readonly refused?: (limit: "body_size" | "body_timeout") => void;
  /** How often an open watch stream sends a heartbeat comment, in ms. */
  readonly heartbeatMs: number;
  /** Aborts when the server shuts down: the open watch streams end. */
  readonly shutdown?: AbortSignal;
}

/** Answers one operation: `key` is the key (or set name) from the path, decoded once. */
export type HttpHandler = (c: Context, key: string, route: RouteContext) => Promise<Response>;

const JSON_HEADERS = { "content-type": "application/json" };
const decoder = new TextDecoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** A JSON answer. */
export function json(text: string, status = 200, headers: HeadersInit = JSON_HEADERS): Response {
  return new Response(text, { status, headers });
}

/** The body of every error answer: `{"error": "..."}`. */
export function errorBody(message: string): string {
  return JSON.stringify({ error: message });
}

const noContent = (): Response => new Response(null, { status: 204 });

const BYTES_HEADERS = { "content-type": "application/octet-stream" };

/**
 * A KV value's answer with its version as ETag, and `Vary: Accept` (bytes or JSON), set on the
 * Response once made: Deno 2.9 converts a Response init of two headers or more more slowly (a
 * bare `Deno.serve` here: 1.00-1.05 × the requests/s, six interleaved rounds).
 */
function withVersion(answer: Response, version: string): Response {
  answer.headers.set("etag", etag(version));
  answer.headers.set("vary", "Accept");
  return answer;
}

/** A counter answer, written by hand: a bigint has no JSON form, a number would round. */
function counterBody(key: string, value: bigint): string {
  return `{"counter":${JSON.stringify(key)},"value":${value}}`;
}

function setBody(set: string, items: string[]): string {
  return JSON.stringify({ set, items });
}

function pageBody(page: KeyPage): string {
  return JSON.stringify(page.cursor === undefined ? { keys: page.keys } : page);
}

function required(value: string | undefined, message: string): string {
  if (value === undefined) throw new InvalidArgumentError(message);
  return value;
}

const query = (c: Context, name: string) => queryParam(c.req.url, name);

/**
 * The largest JSON body `PUT /kv/:key` reads: room for a value of `maxValueBytes` bytes whose
 * every byte JSON escapes as `\u00XX` (6 bytes), plus the envelope and whitespace. The decoded
 * content is then held to `maxValueBytes` itself.
 *
 * @param maxValueBytes The value size limit.
 * @returns The body size limit, in bytes.
 *
 * @example
 * ```ts
 * import { jsonBodyLimit } from "@purple/server";
 *
 * console.log(jsonBodyLimit(1024)); // 7168
 * ```
 */
export function jsonBodyLimit(maxValueBytes: number): number {
  return 6 * maxValueBytes + 1024;
}

/**
 * The cache value of a `PUT /cache/:key` without `?value=` (**ext**): a `text/plain` body, so
 * that values too long for a URL can travel. Without such a body: the original's 400.
 */
async function cacheValueFromBody(request: Request, route: RouteContext): Promise<string> {
  const type = request.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
  if (type !== "text/plain" || request.body === null) {
    throw new InvalidArgumentError("no cache value provided");
  }
  const body = await readBody(request, route.limits.maxValueBytes, "cache value", route);
  try {
    return strictDecoder.decode(body);
  } catch {
    throw new InvalidArgumentError("Bad cache value: the body is not UTF-8");
  }
}

function contentFromJson(body: Uint8Array): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(strictDecoder.decode(body));
  } catch (error) {
    const reason = error instanceof SyntaxError ? error.message : "it is not UTF-8";
    throw new InvalidArgumentError(`Bad JSON body: ${clip(reason, 200)}`);
  }
  const content = (parsed as { content?: unknown } | null)?.content;
  if (typeof content !== "string") {
    throw new InvalidArgumentError(`Bad JSON body: expected {"content": "..."}`);
  }
  return content;
}

/**
 * The handler of every operation that has a route of its own (`kvGet` travels as `kvGetEntry`,
 * whose answer the original's clients read as before: the ETag is a header).
 */
export const HTTP_HANDLERS: { readonly [Op in WireOperationName]: HttpHandler } = {
  cacheGet: async (_c, key, { ops }) => json(JSON.stringify({ value: await ops.cacheGet(key) })),
  cacheSet: async (c, key, route) => {
    const value = query(c, "value") ?? await cacheValueFromBody(c.req.raw, route);
    await route.ops.cacheSet(key, value, parseTtl(query(c, "ttl")));
    return noContent();
  },
  cacheDelete: async (_c, key, { ops }) => {
    await ops.cacheDelete(key);
    return noContent();
  },
  cacheList: async (c, _key, { ops }) =>
    json(pageBody(await ops.cacheList(listOptions(c.req.url)))),
  counterIncrement: async (c, key, { ops }) => {
    const text = required(query(c, "increment"), "no increment specified");
    return json(counterBody(key, await ops.counterIncrement(key, parseInteger("increment", text))));
  },
  counterGet: async (_c, key, { ops }) => json(counterBody(key, await ops.counterGet(key))),
  counterDelete: async (_c, key, { ops }) => {
    await ops.counterDelete(key);
    return noContent();
  },
  counterList: async (c, _key, { ops }) =>
    json(pageBody(await ops.counterList(listOptions(c.req.url)))),
  flagGet: async (_c, key, { ops }) => json(JSON.stringify({ value: await ops.flagGet(key) })),
  flagSet: async (c, key, { ops }) => {
    await ops.flagSet(key, parseBool(required(query(c, "value"), "no flag value specified")));
    return noContent();
  },
  flagDelete: async (_c, key, { ops }) => {
    await ops.flagDelete(key);
    return noContent();
  },
  flagList: async (c, _key, { ops }) => json(pageBody(await ops.flagList(listOptions(c.req.url)))),
  kvGetEntry: async (c, key, { ops }) => {
    const { value, version } = await ops.kvGetEntry(key);
    const answer = acceptsBytes(c.req.header("accept") ?? null)
      ? new Response(value as Uint8Array<ArrayBuffer>, { headers: BYTES_HEADERS })
      : json(JSON.stringify({ value: decoder.decode(value) }));
    return withVersion(answer, version);
  },
  kvPut: async (c, key, route) => {
    const { maxValueBytes } = route.limits;
    const conditions = writeConditions(c.req.raw.headers);
    const value = isBytes(c.req.header("content-type") ?? null)
      ? await readBody(c.req.raw, maxValueBytes, "KV value", route)
      : contentFromJson(
        await readBody(c.req.raw, jsonBodyLimit(maxValueBytes), "JSON body", route),
      );
    await route.ops.kvPut(key, value, conditions);
    return noContent();
  },
  kvDelete: async (c, key, { ops }) => {
    await ops.kvDelete(key, writeConditions(c.req.raw.headers));
    return noContent();
  },
  kvList: async (c, _key, { ops }) => json(pageBody(await ops.kvList(listOptions(c.req.url)))),
  setGet: async (_c, set, { ops }) => json(setBody(set, await ops.setGet(set))),
  setAdd: async (c, set, { ops }) => {
    const item = required(query(c, "item"), "no item supplied");
    return json(setBody(set, await ops.setAdd(set, item)));
  },
  setRemove: async (c, set, { ops }) => {
    const item = required(query(c, "item"), "no item supplied");
    return json(setBody(set, await ops.setRemove(set, item)));
  },
  setDelete: async (_c, set, { ops }) => {
    await ops.setDelete(set);
    return noContent();
  },
  setList: async (c, _key, { ops }) => json(pageBody(await ops.setList(listOptions(c.req.url)))),
  batch: async (c, _key, route) => {
    const body = await readBody(
      c.req.raw,
      jsonBodyLimit(route.limits.maxValueBytes),
      "batch",
      route,
    );
    let parsed: unknown;
    try {
      parsed = JSON.parse(strictDecoder.decode(body));
    } catch (error) {
      const reason = error instanceof SyntaxError ? error.message : "it is not UTF-8";
      throw new InvalidArgumentError(`Bad batch: the body is not JSON: ${clip(reason, 200)}`);
    }
    const { operations, options } = batchFromJson(parsed);
    const access = (c.get as (name: string) => Access | undefined)("access");
    const outcomes = await runBatch(route.ops, operations, options, access, route.log);
    return json(JSON.stringify(outcomesToJson(operations, outcomes)));
  },
  watch: (c, _key, route) => watchHandler(c, route),
};

/** The fixed part of a route's path: `/cache/` for `/cache/:key`, the path itself for `/kv`. */
export function routePrefix(path: string): string {
  const key = path.indexOf(":");
  return key < 0 ? path : path.slice(0, key);
}

/** The HTTP methods in the order an `Allow` header lists them. */
const METHOD_ORDER = ["GET", "PUT", "POST", "DELETE"];

/**
 * The `Allow` value of every route path (`/ping`, each key route such as `/kv/:key`, each fixed
 * route such as `/kv`), or `undefined` for a path no route serves. The app answers 405 from its
 * not-found handler rather than from catch-all routes, which would match every request beside
 * its own route and take it off Hono's one-handler fast path.
 */
export function allowedMethodsOf(
  routes: ReadonlyArray<{ method: string; path: string }>,
): (path: string) => string | undefined {
  const byRoute = new Map<string, string[]>([["/ping", ["GET"]]]);
  for (const { method, path } of routes) {
    const methods = byRoute.get(routePrefix(path)) ?? [];
    if (!methods.includes(method)) methods.push(method);
    byRoute.set(routePrefix(path), methods);
  }
  const allow = new Map<string, string>();
  for (const [route, methods] of byRoute) {
    methods.sort((a, b) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b));
    if (methods.includes("GET")) methods.push("HEAD");
    allow.set(route, methods.join(", "));
  }
  return (path) => {
    const exact = allow.get(path);
    if (exact !== undefined) return exact;
    for (const [route, methods] of allow) {
      if (route.endsWith("/") && (path.startsWith(route) || path === route.slice(0, -1))) {
        return methods;
      }
    }
    return undefined;
  };
}

/** The key of a request to a route with this prefix: the rest of the path, decoded once. */
export function keyOf(c: Context, prefix: string): string {
  return prefix.endsWith("/") ? keyFromPath(c.req.url, prefix) : "";
}
