// What answers each operation over HTTP: read its arguments from the request (path, query,
// body), call it, write the answer in the original Purple's JSON (with the fixes and the binary
// KV extension of the wire contract). Where each is served (method and route) comes from the
// operation table; the compiler refuses an operation without a handler here. Private to the
// HTTP server.

import type { Context } from "hono";
import type { OperationName, Operations } from "@purple/protocol";
import { InvalidArgumentError } from "@purple/protocol/errors";
import { clip } from "@purple/protocol/text";
import type { Limits } from "../backends/limits.ts";
import {
  acceptsBytes,
  isBytes,
  keyFromPath,
  parseBool,
  parseInteger,
  parseTtl,
  queryParam,
} from "./_http_input.ts";
import { readBody } from "./_http_body.ts";
import type { Deadlines } from "./_deadlines.ts";

/** What a handler needs besides the request. */
export interface RouteContext {
  /** The operations to call (already within the backend time limit). */
  readonly ops: Operations;
  /** The limits in force (body sizes and the body time limit). */
  readonly limits: Limits;
  /** The server's deadlines, which cut off a body that does not arrive in time. */
  readonly deadlines: Deadlines;
  /** Told of each body refused for its size or time (the metrics count them). */
  readonly refused?: (limit: "body_size" | "body_timeout") => void;
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

/** A counter answer, written by hand: a bigint has no JSON form, a number would round. */
function counterBody(key: string, value: bigint): string {
  return `{"counter":${JSON.stringify(key)},"value":${value}}`;
}

function setBody(set: string, items: string[]): string {
  return JSON.stringify({ set, items });
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

/** The handler of every operation. */
export const HTTP_HANDLERS: { readonly [Op in OperationName]: HttpHandler } = {
  cacheGet: async (_c, key, { ops }) => json(JSON.stringify({ value: await ops.cacheGet(key) })),
  cacheSet: async (c, key, route) => {
    const value = query(c, "value") ?? await cacheValueFromBody(c.req.raw, route);
    await route.ops.cacheSet(key, value, parseTtl(query(c, "ttl")));
    return noContent();
  },
  counterIncrement: async (c, key, { ops }) => {
    const text = required(query(c, "increment"), "no increment specified");
    return json(counterBody(key, await ops.counterIncrement(key, parseInteger("increment", text))));
  },
  counterGet: async (_c, key, { ops }) => json(counterBody(key, await ops.counterGet(key))),
  flagGet: async (_c, key, { ops }) => json(JSON.stringify({ value: await ops.flagGet(key) })),
  flagSet: async (c, key, { ops }) => {
    await ops.flagSet(key, parseBool(required(query(c, "value"), "no flag value specified")));
    return noContent();
  },
  kvGet: async (c, key, { ops }) => {
    const bytes = await ops.kvGet(key);
    if (acceptsBytes(c.req.header("accept") ?? null)) {
      return new Response(bytes as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": "application/octet-stream", "vary": "Accept" },
      });
    }
    return json(JSON.stringify({ value: decoder.decode(bytes) }), 200, {
      ...JSON_HEADERS,
      "vary": "Accept",
    });
  },
  kvPut: async (c, key, route) => {
    const { maxValueBytes } = route.limits;
    if (isBytes(c.req.header("content-type") ?? null)) {
      await route.ops.kvPut(key, await readBody(c.req.raw, maxValueBytes, "KV value", route));
    } else {
      const body = await readBody(c.req.raw, jsonBodyLimit(maxValueBytes), "JSON body", route);
      await route.ops.kvPut(key, contentFromJson(body));
    }
    return noContent();
  },
  kvDelete: async (_c, key, { ops }) => {
    await ops.kvDelete(key);
    return noContent();
  },
  setGet: async (_c, set, { ops }) => json(setBody(set, await ops.setGet(set))),
  setAdd: async (c, set, { ops }) => {
    const item = required(query(c, "item"), "no item supplied");
    return json(setBody(set, await ops.setAdd(set, item)));
  },
  setRemove: async (c, set, { ops }) => {
    const item = required(query(c, "item"), "no item supplied");
    return json(setBody(set, await ops.setRemove(set, item)));
  },
};

/** The fixed part of a route's path: `/cache/` for `/cache/:key`. */
export function routePrefix(path: string): string {
  return path.slice(0, path.indexOf(":"));
}

/** The HTTP methods in the order an `Allow` header lists them. */
const METHOD_ORDER = ["GET", "PUT", "DELETE"];

/** Each route prefix and the methods the table serves on it, plus HEAD with GET. */
function routeMethods(
  routes: ReadonlyArray<{ method: string; path: string }>,
): Map<string, string[]> {
  const byPrefix = new Map<string, string[]>();
  for (const { method, path } of routes) {
    const prefix = routePrefix(path);
    const methods = byPrefix.get(prefix) ?? [];
    if (!methods.includes(method)) methods.push(method);
    byPrefix.set(prefix, methods);
  }
  for (const methods of byPrefix.values()) {
    methods.sort((a, b) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b));
    if (methods.includes("GET")) methods.push("HEAD");
  }
  return byPrefix;
}

/**
 * The `Allow` value of every route path (`/ping` and each operation's route), or `undefined`
 * for a path no route serves. The app answers 405 from its not-found handler rather than from
 * catch-all routes, which would match every request beside its own route and take it off
 * Hono's one-handler fast path.
 */
export function allowedMethodsOf(
  routes: ReadonlyArray<{ method: string; path: string }>,
): (path: string) => string | undefined {
  const allow = new Map<string, string>();
  for (const [prefix, methods] of routeMethods(routes)) allow.set(prefix, methods.join(", "));
  return (path) => {
    if (path === "/ping") return "GET, HEAD";
    for (const [prefix, methods] of allow) {
      if (path.startsWith(prefix) || path === prefix.slice(0, -1)) return methods;
    }
    return undefined;
  };
}

/** The key of a request to a route with this prefix: the rest of the path, decoded once. */
export function keyOf(c: Context, prefix: string): string {
  return keyFromPath(c.req.url, prefix);
}
