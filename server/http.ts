/**
 * The HTTP server: the original Purple's routes (with the fixes and the binary-safe KV
 * extension of the wire contract) on Hono, served by `Deno.serve`.
 *
 * {@linkcode createHttpApp} builds the Hono app (call `app.request()` in tests, no socket
 * needed); {@linkcode startHttpServer} serves it on a port.
 *
 * @example Serving the memory backend on a free port
 * ```ts
 * import { openBackend, DEFAULT_LIMITS } from "@purple/server/backends";
 * import { startHttpServer } from "@purple/server";
 *
 * const ops = await openBackend({ kind: "memory" });
 * const server = await startHttpServer(ops, {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   limits: DEFAULT_LIMITS,
 * });
 * const response = await fetch(`http://127.0.0.1:${server.port}/counters/hits?increment=2`, {
 *   method: "PUT",
 * });
 * console.log(await response.text()); // {"counter":"hits","value":2}
 * await server.shutdown();
 * await ops.close();
 * ```
 *
 * @module
 */

import { type Context, Hono } from "hono";
import type { Operations } from "@purple/client";
import { HTTP_STATUS, InvalidArgumentError, PurpleError } from "@purple/client/errors";
import type { Limits } from "../backends/limits.ts";
import type { RunningServer, ServeOptions } from "./options.ts";
import {
  acceptsBytes,
  clip,
  isBytes,
  keyFromPath,
  parseBool,
  parseInteger,
  parseTtl,
  queryParam,
  rawPath,
  readBody,
} from "./_http_input.ts";
import { refuseWhenBusy, withBackendTimeout } from "./_limits.ts";
import { AccessControl, httpAccessGuard } from "./_auth.ts";

/**
 * How to build the HTTP app.
 *
 * @example
 * ```ts
 * import { createHttpApp, type HttpAppOptions } from "@purple/server";
 * import { DEFAULT_LIMITS, openBackend } from "@purple/server/backends";
 *
 * const options: HttpAppOptions = { limits: DEFAULT_LIMITS, debug: true };
 * const ops = await openBackend({ kind: "memory" });
 * const app = createHttpApp(ops, options);
 * console.log((await app.request("/ping")).status); // 200
 * await ops.close();
 * ```
 */
export interface HttpAppOptions {
  /** The limits the backend was opened with; request bodies are capped from them. */
  limits: Limits;
  /** Log one line per request: method, path, status, duration. */
  debug?: boolean;
  /** Where log lines go (the debug lines, and the details of 5xx answers). Default `console.log`. */
  log?: (line: string) => void;
  /** Require an access token on every route but `/ping` (see `ServeOptions.auth`). */
  auth?: { full: readonly string[]; read: readonly string[] };
}

/** Each route prefix and the methods it answers (HEAD comes with GET). */
const ROUTES: ReadonlyArray<readonly [prefix: string, methods: readonly string[]]> = [
  ["/cache/", ["GET", "PUT"]],
  ["/counters/", ["GET", "PUT"]],
  ["/flags/", ["GET", "PUT"]],
  ["/kv/", ["GET", "PUT", "DELETE"]],
  ["/sets/", ["GET", "PUT", "DELETE"]],
];

/**
 * The methods a path answers, for a 405's `Allow` (with HEAD, which comes with GET), or
 * `undefined` when no route serves the path (a 404). The app answers 405 from its not-found
 * handler rather than from catch-all routes, which would match every request beside its own
 * route and take it off Hono's one-handler fast path.
 */
function allowedMethods(path: string): string | undefined {
  if (path === "/ping") return "GET, HEAD";
  for (const [prefix, methods] of ROUTES) {
    if (path.startsWith(prefix) || path === prefix.slice(0, -1)) {
      return [...methods, "HEAD"].join(", ");
    }
  }
  return undefined;
}

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

const JSON_HEADERS = { "content-type": "application/json" };
const decoder = new TextDecoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

function json(text: string, status = 200, headers: HeadersInit = JSON_HEADERS): Response {
  return new Response(text, { status, headers });
}

function errorBody(message: string): string {
  return JSON.stringify({ error: message });
}

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

/**
 * The cache value of a `PUT /cache/:key` without `?value=` (**ext**): a `text/plain` body, so
 * that values too long for a URL can travel. Without such a body: the original's 400.
 */
async function cacheValueFromBody(request: Request, limits: Limits): Promise<string> {
  const type = request.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
  if (type !== "text/plain" || request.body === null) {
    throw new InvalidArgumentError("no cache value provided");
  }
  const body = await readBody(
    request,
    limits.maxValueBytes,
    "cache value",
    limits.bodyTimeoutMs,
  );
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

function describeRequest(c: Context): string {
  return `${c.req.method} ${clip(rawPath(c.req.url), 200)}`;
}

/**
 * Builds the HTTP app over a set of operations. Every error becomes a JSON
 * `{"error": "..."}` answer with the status of {@linkcode HTTP_STATUS} (one place, the app's
 * `onError`); anything that is not a Purple error is a 500 whose details go to the log only.
 *
 * @param ops The operations to serve (from `openBackend()`).
 * @param options The limits, and the debug log.
 * @returns The Hono app; serve `app.fetch`, or call `app.request()` in tests.
 *
 * @example Calling a route without a socket
 * ```ts
 * import { DEFAULT_LIMITS, openBackend } from "@purple/server/backends";
 * import { createHttpApp } from "@purple/server";
 *
 * const ops = await openBackend({ kind: "memory" });
 * const app = createHttpApp(ops, { limits: DEFAULT_LIMITS });
 * const response = await app.request("/flags/beta");
 * console.log(await response.json()); // { value: false }
 * await ops.close();
 * ```
 */
export function createHttpApp(ops: Operations, options: HttpAppOptions): Hono {
  const { limits } = options;
  ops = withBackendTimeout(ops, limits.backendTimeoutMs);
  const log = options.log ?? console.log;
  const app = new Hono();

  if (options.debug) {
    app.use(async (c, next) => {
      const start = performance.now();
      await next();
      const ms = (performance.now() - start).toFixed(1);
      log(`${describeRequest(c)} ${c.res.status} ${ms}ms`);
    });
  }
  if (options.auth) app.use(httpAccessGuard(new AccessControl(options.auth)));

  app.onError((error, c) => {
    if (error instanceof PurpleError) {
      const status = HTTP_STATUS[error.code];
      if (status >= 500) log(`${describeRequest(c)} failed: ${error.message}`);
      return json(errorBody(error.message), status);
    }
    log(`Internal error answering ${describeRequest(c)}: ${(error as Error)?.stack ?? error}`);
    return json(errorBody("Internal server error"), 500);
  });

  app.notFound((c) => {
    const allow = allowedMethods(c.req.path);
    if (allow === undefined) {
      return json(errorBody(`Cannot ${describeRequest(c)}: no such route`), 404);
    }
    return json(
      errorBody(`Cannot ${describeRequest(c)}: method not allowed (allowed: ${allow})`),
      405,
      { ...JSON_HEADERS, "allow": allow },
    );
  });

  const key = (c: Context, prefix: string) => keyFromPath(c.req.url, prefix);
  const query = (c: Context, name: string) => queryParam(c.req.url, name);

  app.get("/ping", () => new Response(null, { status: 200 }));

  app.get("/cache/*", async (c) => {
    return json(JSON.stringify({ value: await ops.cacheGet(key(c, "/cache/")) }));
  });
  app.put("/cache/*", async (c) => {
    const k = key(c, "/cache/");
    const value = query(c, "value") ?? await cacheValueFromBody(c.req.raw, limits);
    await ops.cacheSet(k, value, parseTtl(query(c, "ttl")));
    return new Response(null, { status: 204 });
  });

  app.get("/counters/*", async (c) => {
    const k = key(c, "/counters/");
    return json(counterBody(k, await ops.counterGet(k)));
  });
  app.put("/counters/*", async (c) => {
    const k = key(c, "/counters/");
    const text = required(query(c, "increment"), "no increment specified");
    return json(counterBody(k, await ops.counterIncrement(k, parseInteger("increment", text))));
  });

  app.get("/flags/*", async (c) => {
    return json(JSON.stringify({ value: await ops.flagGet(key(c, "/flags/")) }));
  });
  app.put("/flags/*", async (c) => {
    const k = key(c, "/flags/");
    const value = parseBool(required(query(c, "value"), "no flag value specified"));
    await ops.flagSet(k, value);
    return new Response(null, { status: 204 });
  });

  app.get("/kv/*", async (c) => {
    const bytes = await ops.kvGet(key(c, "/kv/"));
    if (acceptsBytes(c.req.header("accept") ?? null)) {
      return new Response(bytes as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": "application/octet-stream", "vary": "Accept" },
      });
    }
    return json(JSON.stringify({ value: decoder.decode(bytes) }), 200, {
      ...JSON_HEADERS,
      "vary": "Accept",
    });
  });
  app.put("/kv/*", async (c) => {
    const k = key(c, "/kv/");
    if (isBytes(c.req.header("content-type") ?? null)) {
      const bytes = await readBody(
        c.req.raw,
        limits.maxValueBytes,
        "KV value",
        limits.bodyTimeoutMs,
      );
      await ops.kvPut(k, bytes);
    } else {
      const body = await readBody(
        c.req.raw,
        jsonBodyLimit(limits.maxValueBytes),
        "JSON body",
        limits.bodyTimeoutMs,
      );
      await ops.kvPut(k, contentFromJson(body));
    }
    return new Response(null, { status: 204 });
  });
  app.delete("/kv/*", async (c) => {
    await ops.kvDelete(key(c, "/kv/"));
    return new Response(null, { status: 204 });
  });

  app.get("/sets/*", async (c) => {
    const set = key(c, "/sets/");
    return json(setBody(set, await ops.setGet(set)));
  });
  app.put("/sets/*", async (c) => {
    const set = key(c, "/sets/");
    const item = required(query(c, "item"), "no item supplied");
    return json(setBody(set, await ops.setAdd(set, item)));
  });
  app.delete("/sets/*", async (c) => {
    const set = key(c, "/sets/");
    const item = required(query(c, "item"), "no item supplied");
    return json(setBody(set, await ops.setRemove(set, item)));
  });

  return app;
}

/**
 * How long `shutdown()` lets requests in flight finish before it cuts them off, in ms.
 *
 * @example
 * ```ts
 * import { HTTP_SHUTDOWN_GRACE_MS } from "@purple/server";
 *
 * console.log(HTTP_SHUTDOWN_GRACE_MS); // 10000
 * ```
 */
export const HTTP_SHUTDOWN_GRACE_MS = 10_000;

/**
 * Serves the HTTP app with `Deno.serve`, and logs `Starting up the HTTP server on port N`
 * (the real port) once it listens.
 *
 * `shutdown()` drains before it stops: a request already being handled finishes (its body is
 * still read to the end, which `Deno.serve`'s own shutdown would cut off), a new request is
 * answered 503 with `Connection: close`, and once nothing is in flight (or after
 * {@linkcode HTTP_SHUTDOWN_GRACE_MS}) the listener and the connections close.
 *
 * @param ops The operations to serve; the server does not close them.
 * @param options Address, port (0 for any free port), limits and logging.
 * @returns The running server.
 * @throws {Deno.errors.AddrInUse} When the port is taken.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS, openBackend } from "@purple/server/backends";
 * import { startHttpServer } from "@purple/server";
 *
 * const ops = await openBackend({ kind: "memory" });
 * const server = await startHttpServer(ops, {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   limits: DEFAULT_LIMITS,
 * });
 * console.log((await fetch(`http://127.0.0.1:${server.port}/ping`)).status); // 200
 * await server.shutdown();
 * await ops.close();
 * ```
 */
export function startHttpServer(ops: Operations, options: ServeOptions): Promise<RunningServer> {
  const log = options.log ?? console.log;
  const app = createHttpApp(ops, options);
  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | undefined;
  const handle = async (request: Request): Promise<Response> => {
    if (draining) {
      return json(errorBody("Purple is shutting down: retry the request"), 503, {
        ...JSON_HEADERS,
        "connection": "close",
      });
    }
    const busy = refuseWhenBusy(request, inFlight, options.limits);
    if (busy !== undefined) return busy;
    inFlight++;
    try {
      return await app.fetch(request);
    } finally {
      if (--inFlight === 0) drained?.();
    }
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      ...options.tls,
      onListen: () => {},
      onError: (error) => {
        log(`Internal error in the HTTP server: ${(error as Error)?.stack ?? error}`);
        return json(errorBody("Internal server error"), 500);
      },
    }, handle);
  } catch (error) {
    return Promise.reject(error);
  }
  const port = server.addr.port;
  log(`Starting up the HTTP server on port ${port}`);
  const stop = async () => {
    draining = true;
    if (inFlight > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => drained = resolve),
        new Promise<void>((resolve) => timer = setTimeout(resolve, HTTP_SHUTDOWN_GRACE_MS)),
      ]);
      clearTimeout(timer);
      if (inFlight > 0) log(`Cutting off ${inFlight} HTTP requests still in flight`);
    }
    await server.shutdown();
  };
  let stopping: Promise<void> | undefined;
  return Promise.resolve({
    protocol: "HTTP",
    port,
    shutdown: () => stopping ??= stop(),
  });
}
