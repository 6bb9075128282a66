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
import { cors } from "hono/cors";
import {
  type HttpRoute,
  OPERATIONS,
  type Operations,
  WIRE_OPERATION_NAMES,
} from "@purple/protocol";
import { codeFromHttpStatus, HTTP_STATUS, PurpleError } from "@purple/protocol/errors";
import { clip } from "@purple/protocol/text";
import type { Limits } from "../backends/limits.ts";
import type { AccessTokens, RunningServer, ServeOptions } from "./options.ts";
import { hasQueryParam, rawPath } from "./_http_input.ts";
import {
  allowedMethodsOf,
  errorBody,
  HTTP_HANDLERS,
  json,
  keyOf,
  type RouteContext,
  routePrefix,
} from "./_http_routes.ts";
import { refuseWhenBusy, withBackendTimeout } from "./_limits.ts";
import { serverDeadlines } from "./_deadlines.ts";
import { AccessControl, httpAccessGuard } from "./_auth.ts";
import type { Metrics } from "./metrics.ts";
import { openApiDocument } from "./_openapi.ts";
import { spanNamer } from "./_tracing.ts";
import { VERSION } from "./config.ts";
import { operationIndex, type Outcome, protocolIndex, recorderOf } from "./_metrics.ts";
import { DEFAULT_HEARTBEAT_MS } from "./_http_watch.ts";

export { jsonBodyLimit } from "./_http_routes.ts";

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
  auth?: AccessTokens;
  /**
   * Count requests into these metrics and serve them at `GET /metrics` (see
   * `ServeOptions.metrics`).
   */
  metrics?: Metrics;
  /** Let web pages of these origins call the API (see `ServeOptions.corsOrigins`). */
  corsOrigins?: readonly string[];
  /** How often an open watch stream (`GET /watch`) sends a heartbeat comment, in ms. Default 15000. */
  heartbeatMs?: number;
  /**
   * Ends the open watch streams when it aborts (each with a last `event: end`), for a server
   * that shuts down; `startHttpServer()` passes its own.
   */
  signal?: AbortSignal;
}

/**
 * The HTTP app: a handler of web-standard requests (Hono's app, typed by what Purple promises of
 * it).
 *
 * @example
 * ```ts
 * import { createHttpApp, type HttpApp } from "@purple/server";
 * import { DEFAULT_LIMITS, openBackend } from "@purple/server/backends";
 *
 * const ops = await openBackend({ kind: "memory" });
 * const app: HttpApp = createHttpApp(ops, { limits: DEFAULT_LIMITS });
 * console.log((await app.fetch(new Request("http://localhost/ping"))).status); // 200
 * await ops.close();
 * ```
 */
export interface HttpApp {
  /** Answers a request: hand it to `Deno.serve` (or any server of web-standard requests). */
  readonly fetch: (request: Request) => Response | Promise<Response>;
  /** Answers a request given as a path (`/ping`) or URL, without a socket: for tests. */
  readonly request: (
    input: string | URL | Request,
    init?: RequestInit,
  ) => Response | Promise<Response>;
}

/** Every route of the operation table, and the operations it serves. */
const ROUTES = WIRE_OPERATION_NAMES.map((name) => {
  const route: HttpRoute = OPERATIONS[name].http;
  return { name, ...route };
});

/** The methods a path answers, for a 405's `Allow`, or `undefined` for a 404. */
const allowedMethods = allowedMethodsOf(ROUTES);

/**
 * The operation indexes (metrics) of each route prefix (`/cache/`, `/kv`), by method, from the
 * table: the operation of the route, and those a query parameter picks on it.
 */
interface RouteOperations {
  plain: number;
  picked: Array<{ query: string; index: number }>;
}
const OPERATIONS_BY_PREFIX = new Map<string, Record<string, RouteOperations>>();
for (const { name, method, path, query } of ROUTES) {
  const prefix = routePrefix(path);
  const byMethod = OPERATIONS_BY_PREFIX.get(prefix) ?? {};
  const route = byMethod[method] ??= { plain: operationIndex(undefined), picked: [] };
  if (query === undefined) route.plain = operationIndex(name);
  else route.picked.push({ query, index: operationIndex(name) });
  OPERATIONS_BY_PREFIX.set(prefix, byMethod);
}
const NO_OPERATION = operationIndex(undefined);

/**
 * The operation index (metrics) of a request to `url` (HEAD as GET): found from the first path
 * segment, without building the path (this runs for every request).
 */
function operationOfRequest(method: string, url: string): number {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  if (start < 0) return NO_OPERATION;
  const second = url.indexOf("/", start + 1);
  const query = url.indexOf("?", start);
  const prefix = second >= 0 && (query < 0 || second < query)
    ? url.slice(start, second + 1)
    : url.slice(start, query < 0 ? undefined : query);
  const route = OPERATIONS_BY_PREFIX.get(prefix)?.[method === "HEAD" ? "GET" : method];
  if (route === undefined) return NO_OPERATION;
  try {
    for (const { query: name, index } of route.picked) {
      if (hasQueryParam(url, name)) return index;
    }
  } catch {
    // A malformed query: the route answers it 400; counted under the route's own operation.
  }
  return route.plain;
}

/** What an HTTP status says of a request's outcome. */
function outcomeOf(status: number): Outcome {
  if (status < 400) return "ok";
  return codeFromHttpStatus(status) ?? (status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT");
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
export function createHttpApp(ops: Operations, options: HttpAppOptions): HttpApp {
  const { limits, metrics } = options;
  const deadlines = serverDeadlines(limits);
  const log = options.log ?? console.log;
  const recorder = metrics && recorderOf(metrics);
  const HTTP = protocolIndex("http");
  const route: RouteContext = {
    ops: withBackendTimeout(
      ops,
      limits.backendTimeoutMs,
      deadlines,
      recorder && ((operation) => recorder.backendTimeout(HTTP, operation)),
    ),
    limits,
    deadlines,
    log,
    refused: recorder && ((limit) => recorder.refused(HTTP, limit)),
    heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    shutdown: options.signal,
  };
  const app = new Hono();

  if (options.debug) {
    app.use(async (c, next) => {
      const start = performance.now();
      await next();
      const ms = (performance.now() - start).toFixed(1);
      log(`${describeRequest(c)} ${c.res.status} ${ms}ms`);
    });
  }
  // Before the token check: a browser's preflight (OPTIONS) carries no token.
  if (options.corsOrigins !== undefined && options.corsOrigins.length > 0) {
    app.use(corsMiddleware(options.corsOrigins));
  }
  if (options.auth) app.use(httpAccessGuard(new AccessControl(options.auth)));

  app.onError((error, c) => {
    if (error instanceof PurpleError) {
      const status = HTTP_STATUS[error.code];
      if (status >= 500) log(`${describeRequest(c)} failed: ${error.message}`);
      if (status === 404 && c.req.header("accept") === undefined) return originalNotFound();
      return json(errorBody(error.message), status);
    }
    log(`Internal error answering ${describeRequest(c)}: ${(error as Error)?.stack ?? error}`);
    return json(errorBody("Internal server error"), 500);
  });

  app.notFound((c) => {
    const own = c.req.path === "/openapi.json" ||
      (metrics !== undefined && c.req.path === "/metrics");
    const allow = own ? "GET, HEAD" : allowedMethods(c.req.path);
    if (allow === undefined) {
      return json(errorBody(`Cannot ${describeRequest(c)}: no such route`), 404);
    }
    return json(
      errorBody(`Cannot ${describeRequest(c)}: method not allowed (allowed: ${allow})`),
      405,
      { "content-type": "application/json", "allow": allow },
    );
  });

  app.get("/ping", () => new Response(null, { status: 200 }));
  const openApi = JSON.stringify(
    openApiDocument({ version: VERSION, metrics: metrics !== undefined }),
  );
  app.get("/openapi.json", () => json(openApi));
  if (metrics !== undefined) {
    app.get("/metrics", async () =>
      new Response(await metrics.text(), {
        headers: { "content-type": metrics.contentType, "cache-control": "no-store" },
      }));
  }
  const nameSpan = spanNamer();
  // One Hono route per method and path; where two operations share one, the one named by its
  // query parameter when the request has it, else the other (DELETE /sets/:key?item=x). Fixed
  // paths first: Hono's `/kv/*` also matches `/kv`, the listing's path.
  const shared = Map.groupBy(ROUTES, ({ method, path }) => `${method} ${path}`);
  const fixedFirst = [...shared.values()].sort((a, b) =>
    Number(a[0].path.includes(":")) - Number(b[0].path.includes(":"))
  );
  for (const candidates of fixedFirst) {
    const { method, path } = candidates[0];
    const prefix = routePrefix(path);
    const plain = candidates.find((candidate) => candidate.query === undefined)!;
    const picked = candidates.filter((candidate) => candidate.query !== undefined);
    app.on(method, prefix.endsWith("/") ? `${prefix}*` : prefix, (c, next) => {
      // `/sets/*` matches `/sets` too: that path belongs to the listing (405 for this method).
      if (!c.req.path.startsWith(prefix)) return next();
      const { name } = picked.find(({ query }) => hasQueryParam(c.req.url, query!)) ?? plain;
      nameSpan?.(name, path);
      return HTTP_HANDLERS[name](c, keyOf(c, prefix), route);
    });
  }
  return {
    fetch: (request) => app.fetch(withPath(request)),
    request: (input, init) => app.request(input, init),
  };
}

/**
 * Hono's CORS middleware for the HTTP API: the methods of the routes, the headers a client
 * sends (`Authorization`, `Content-Type`, `Accept`) and reads (`Retry-After`), preflights cached
 * for 10 minutes. With `*`, any origin (no credentials: tokens travel in `Authorization`, which
 * a page sets itself).
 */
function corsMiddleware(origins: readonly string[]) {
  return cors({
    origin: origins.includes("*") ? "*" : [...origins],
    allowMethods: ["GET", "HEAD", "PUT", "DELETE"],
    allowHeaders: ["Authorization", "Content-Type", "Accept"],
    exposeHeaders: ["Retry-After", "WWW-Authenticate"],
    maxAge: 600,
  });
}

/**
 * A miss (`NotFoundError`) answered to a request without an `Accept` header: the original Go
 * Purple's 404 with an empty body. Its Go HTTP client sends no `Accept` and reads a cache miss
 * by failing to parse the body as JSON: a `{"error": ...}` body parses, into an empty value and
 * no error. Every other client (curl, browsers, `fetch`, HttpClient) sends `Accept` and gets the
 * JSON body that says why.
 */
function originalNotFound(): Response {
  return new Response(null, { status: 404 });
}

/**
 * The request itself, or, when its URL has no path (an absolute-form target such as
 * `OPTIONS http://host?a=1`, which `Deno.serve` passes on as sent), the same request with the
 * path `/` that the URL standard gives it: Hono finds the path by position and fails without
 * one (a 500 for methods no route serves).
 */
function withPath(request: Request): Request {
  const url = request.url;
  let end = url.indexOf("://") + 3;
  for (; end < url.length; end++) {
    const char = url.charCodeAt(end);
    if (char === 0x2f /* / */) return request;
    if (char === 0x3f /* ? */ || char === 0x23 /* # */) break;
  }
  // Not `new Request(url, request)`: that reads `request.signal`, which Deno warns about.
  return new Request(`${url.slice(0, end)}/${url.slice(end)}`, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    duplex: "half",
  } as RequestInit);
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
 * `shutdown()` drains before it stops: the open watch streams end at once (each with a last
 * `event: end`), a request already being handled finishes (its body is still read to the end,
 * which `Deno.serve`'s own shutdown would cut off), a new request is answered 503 with
 * `Connection: close`, and once nothing is in flight (or after {@linkcode HTTP_SHUTDOWN_GRACE_MS})
 * the listener and the connections close. A watch stream holds no request slot once it runs.
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
  const closing = new AbortController();
  const app = createHttpApp(ops, { ...options, signal: closing.signal });
  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | undefined;
  /** The answers of the server itself (busy, shutting down), not of an operation. */
  const own = new WeakSet<Response>();
  const handle = async (request: Request): Promise<Response> => {
    if (draining) {
      const answer = json(errorBody("Purple is shutting down: retry the request"), 503, {
        "content-type": "application/json",
        "connection": "close",
      });
      own.add(answer);
      return answer;
    }
    const busy = refuseWhenBusy(request, inFlight, options.limits);
    if (busy !== undefined) {
      recorder?.refused(HTTP, "concurrent_requests");
      own.add(busy);
      return busy;
    }
    inFlight++;
    try {
      return await app.fetch(request);
    } finally {
      if (--inFlight === 0) drained?.();
    }
  };
  const recorder = options.metrics && recorderOf(options.metrics);
  const HTTP = protocolIndex("http");
  const readInFlight = () => inFlight;
  recorder?.inFlight[HTTP].push(readInFlight);
  /** The same, counting each request by operation and outcome, with its time. */
  const measured = async (request: Request): Promise<Response> => {
    const start = performance.now();
    let response: Response | undefined;
    try {
      return response = await handle(request);
    } finally {
      const operation = operationOfRequest(request.method, request.url);
      const outcome = response === undefined ? "INTERNAL" : outcomeOf(response.status);
      const backendFailed = operation !== NO_OPERATION && response !== undefined &&
        (outcome === "UNAVAILABLE" || outcome === "INTERNAL") && !own.has(response);
      recorder!.request(
        HTTP,
        operation,
        outcome,
        (performance.now() - start) / 1000,
        backendFailed,
      );
    }
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      ...options.tls,
      ...(options.reusePort ? { reusePort: true } : {}),
      onListen: () => {},
      onError: (error) => {
        log(`Internal error in the HTTP server: ${(error as Error)?.stack ?? error}`);
        return json(errorBody("Internal server error"), 500);
      },
    }, recorder === undefined ? handle : measured);
  } catch (error) {
    return Promise.reject(error);
  }
  const port = server.addr.port;
  log(`Starting up the HTTP server on port ${port}`);
  const stop = async () => {
    draining = true;
    closing.abort();
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
    recorder?.inFlight[HTTP].splice(recorder.inFlight[HTTP].indexOf(readInFlight), 1);
  };
  let stopping: Promise<void> | undefined;
  return Promise.resolve({
    protocol: "HTTP",
    port,
    shutdown: () => stopping ??= stop(),
  });
}
