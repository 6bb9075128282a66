/**
 * The gRPC server: the services of `proto/purple.proto` (package `proto`: Cache, Counter with
 * the earlier release's `IncrementCounter` and `GetCounter`, Flag, KV, Set) on grpc-js, plus
 * the standard health service and server reflection.
 *
 * The server only decodes, calls the operations and maps errors: input is validated by the
 * operations (the checked backend), errors become status codes through `GRPC_STATUS` (not
 * found `NOT_FOUND`, bad input `INVALID_ARGUMENT`, too large `RESOURCE_EXHAUSTED`, backend down
 * `UNAVAILABLE`; anything else `INTERNAL` with a generic message, the details going to the
 * log). The services, their methods and the operation each calls come from the operation table,
 * the messages from the codecs generated from `proto/purple.proto` (`@purple/protocol/wire`):
 * int64 fields travel as `bigint`, exactly. Connections reach grpc-js through a guard against a
 * crash of Deno's `node:http2` (see `_grpc_goaway_guard.ts`).
 *
 * @example Serving the memory backend on a free port
 * ```ts
 * import { DEFAULT_LIMITS, openBackend } from "@purple/server/backends";
 * import { startGrpcServer } from "@purple/server";
 *
 * const ops = await openBackend({ kind: "memory" });
 * const server = await startGrpcServer(ops, {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   limits: DEFAULT_LIMITS,
 * });
 * console.log(server.port > 0); // true
 * await server.shutdown();
 * await ops.close();
 * ```
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import type { Server as TcpServer } from "node:net";
import type { BatchOperation, BatchOptions, OperationName, Operations } from "@purple/protocol";
import {
  codeFromGrpcStatus,
  GRPC_STATUS,
  PurpleError,
  ValueTooLargeError,
} from "@purple/protocol/errors";
import {
  GRPC_BINDINGS,
  grpcServiceNames,
  grpcServices,
  type ServedMethod,
} from "@purple/protocol/wire";
import type { Limits } from "../backends/limits.ts";
import type { RunningServer, ServeOptions } from "./options.ts";
import { Health } from "./_grpc_health.ts";
import { guardSocket } from "./_grpc_goaway_guard.ts";
import { addReflection } from "./_grpc_reflection.ts";
import { withBackendTimeout } from "./_limits.ts";
import { serverDeadlines } from "./_deadlines.ts";
import { grpcLimitsInterceptor } from "./_grpc_limits.ts";
import { fixGrpcClientFaults } from "./_grpc_client_faults.ts";
import { type Access, AccessControl } from "./_auth.ts";
import { runBatch } from "./_batch.ts";
import { ACCESS_METADATA, grpcAccessInterceptor } from "./_grpc_auth.ts";
import { createGrpcListener } from "./_tls.ts";
import { jsonBodyLimit } from "./_http_routes.ts";
import { operationIndex, protocolIndex, type Recorder, recorderOf } from "./_metrics.ts";

/** The index of gRPC in the metrics' arrays. */
const GRPC = protocolIndex("grpc");
import { encodeOnce, GrpcWatches } from "./_grpc_watch.ts";

/** How long `shutdown()` lets calls in flight finish before it cuts them off, in ms. */
export const GRPC_SHUTDOWN_GRACE_MS = 5_000;

/** What a handler of one method does: turn a request into a reply through the operations. */
type Handler = (request: unknown, metadata: grpc.Metadata) => Promise<unknown>;

/** A request that could not be decoded; its handler answers with the decoder's error. */
class BadRequest {
  constructor(readonly error: unknown) {}
}

/** Everything a handler needs besides its request. */
interface Context {
  debug: boolean;
  log: (line: string) => void;
  /** Where calls are counted, when metrics are kept. */
  recorder?: Recorder;
}

/** The operation index (metrics) of each method path of Purple's services, from the table. */
function operationIndexByPath(): (path: string) => number {
  const indexes = new Map<string, number>();
  for (const methods of Object.values(grpcServices())) {
    for (const method of Object.values(methods)) {
      indexes.set(method.path, operationIndex(method.operation));
    }
  }
  const none = operationIndex(undefined);
  return (path) => indexes.get(path) ?? none;
}

/**
 * Starts the gRPC server over a set of operations (the same object the HTTP server gets, so
 * that both see the same data at once) and logs `Starting up the gRPC server on port N`.
 *
 * @param ops The operations to serve: a checked backend from `openBackend()`.
 * @param options Where to listen, the limits, and logging (`debug` logs one line per call:
 * method, status, duration).
 * @returns The running server; `shutdown()` stops accepting calls and lets the calls in flight
 * finish (for at most {@linkcode GRPC_SHUTDOWN_GRACE_MS}). It does not close `ops`.
 * @throws {Deno.errors.AddrInUse} When the port is taken (and the other `Deno.errors` that
 * `Deno.serve` would throw for an address that cannot be bound or resolved).
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS, openBackend } from "@purple/server/backends";
 * import { startGrpcServer } from "@purple/server";
 *
 * const ops = await openBackend({ kind: "memory" });
 * const lines: string[] = [];
 * const server = await startGrpcServer(ops, {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   limits: DEFAULT_LIMITS,
 *   log: (line) => lines.push(line),
 * });
 * console.log(lines[0] === `Starting up the gRPC server on port ${server.port}`); // true
 * await server.shutdown();
 * await ops.close();
 * ```
 */
export async function startGrpcServer(
  ops: Operations,
  options: ServeOptions,
): Promise<RunningServer> {
  const recorder = options.metrics && recorderOf(options.metrics);
  const context: Context = {
    debug: options.debug ?? false,
    log: options.log ?? console.log,
    recorder,
  };
  fixGrpcClientFaults();
  const deadlines = serverDeadlines(options.limits);
  const counting = recorder && { recorder, operationOf: operationIndexByPath() };
  const limits = grpcLimitsInterceptor(options.limits, deadlines, counting);
  const server = new grpc.Server({
    // Each method refuses a message over its own cap in `tolerate` (answered and counted as
    // Purple's refusals are). grpc-js refuses one over this cap as it reads its length, through
    // no interceptor (so not counted): it stays above every method's cap, by CAP_HEADROOM_BYTES.
    "grpc.max_receive_message_length": Math.max(
      jsonBodyLimit(options.limits.maxValueBytes),
      maxRequestBytes(options.limits),
    ) + CAP_HEADROOM_BYTES,
    interceptors: [
      ...(options.auth === undefined ? [] : [
        grpcAccessInterceptor(
          new AccessControl(options.auth),
          context.debug ? context.log : undefined,
          counting &&
            ((path, code) => counting.recorder.request(GRPC, counting.operationOf(path), code, 0)),
        ),
      ]),
      limits.interceptor,
    ],
  });
  const watches = new GrpcWatches();
  registerPurple(
    server,
    withBackendTimeout(
      ops,
      options.limits.backendTimeoutMs,
      deadlines,
      recorder && ((operation) => recorder.backendTimeout(GRPC, operation)),
    ),
    context,
    options.limits,
    watches,
  );
  recorder?.inFlight[GRPC].push(limits.running);
  const health = new Health(grpcServiceNames());
  health.addTo(server);
  addReflection(server);
  const listener = await listen(server, options, serverCredentials());
  const port = (listener.address() as { port: number }).port;
  context.log(`Starting up the gRPC server on port ${port}`);
  let stopping: Promise<void> | undefined;
  return {
    protocol: "gRPC",
    port,
    shutdown: () =>
      stopping ??= stop(server, listener, health, watches).then(() => {
        recorder?.inFlight[GRPC].splice(recorder.inFlight[GRPC].indexOf(limits.running), 1);
      }),
  };
}

/**
 * How far over the largest method's cap grpc-js's own cap is: a message up to that much too
 * large reaches the method, whose refusal is counted in the metrics; a larger one is refused by
 * grpc-js alone (as it reads the message's length, before buffering it).
 */
const CAP_HEADROOM_BYTES = 64 * 1024;

/**
 * The largest request but a batch: a value at the size limit, with its key, item and framing.
 * A batch may be as large as the JSON body of `POST /batch` (`jsonBodyLimit`).
 */
function maxRequestBytes(limits: Limits): number {
  return limits.maxValueBytes + limits.maxKeyBytes + limits.maxItemBytes + 1024;
}

/**
 * Plaintext for grpc-js even with TLS: the listener terminates TLS itself (`node:tls`, see
 * `_tls.ts`) and hands decrypted sockets to the guard and this insecure injector, since the
 * guard reads HTTP/2 frames.
 */
function serverCredentials(): grpc.ServerCredentials {
  return grpc.ServerCredentials.createInsecure();
}

/**
 * Listens on TCP (or TLS, with `tls`) and hands each connection to grpc-js through the GOAWAY
 * guard (see `_grpc_goaway_guard.ts`) instead of letting grpc-js bind the port itself.
 */
function listen(
  server: grpc.Server,
  { hostname, port, tls, reusePort }: ServeOptions,
  credentials: grpc.ServerCredentials,
): Promise<TcpServer> {
  const injector = server.createConnectionInjector(credentials);
  const listener = createGrpcListener(tls, (socket) => {
    socket.setNoDelay(true);
    injector.injectConnection(guardSocket(socket));
  });
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => reject(listenError(error));
    listener.once("error", fail);
    listener.listen({ port, host: hostname, reusePort: reusePort === true }, () => {
      listener.off("error", fail);
      resolve(listener);
    });
  });
}

/** The `Deno.errors` class of a failure to listen, as `Deno.serve` would throw it. */
function listenError(error: Error & { code?: string }): Error {
  const detail = `${error.message.replace(/^listen \w+: /, "")} (gRPC)`;
  switch (error.code) {
    case "EADDRINUSE":
      return new Deno.errors.AddrInUse(detail, { cause: error });
    case "EADDRNOTAVAIL":
    case "EINVAL":
      return new Deno.errors.AddrNotAvailable(detail, { cause: error });
    case "EACCES":
    case "EPERM":
      return new Deno.errors.PermissionDenied(detail, { cause: error });
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new Deno.errors.NotFound(detail, { cause: error });
    default:
      return error;
  }
}

function stop(
  server: grpc.Server,
  listener: TcpServer,
  health: Health,
  watches: GrpcWatches,
): Promise<void> {
  listener.close();
  health.shutdown();
  watches.endAll();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, GRPC_SHUTDOWN_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Registers every service of the operation table: each method decodes its request, calls its
 * operation with the arguments its binding reads from the request, and encodes the result (an
 * earlier method name that answers `Empty` drops it); a streaming operation's method (`Watch`)
 * streams its results.
 */
function registerPurple(
  server: grpc.Server,
  ops: Operations,
  context: Context,
  limits: Limits,
  watches: GrpcWatches,
): void {
  for (const methods of Object.values(grpcServices())) {
    const tolerant: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(methods)) {
      const cap = method.operation === "batch"
        ? jsonBodyLimit(limits.maxValueBytes)
        : maxRequestBytes(limits);
      tolerant[name] = tolerate(method, cap);
      implementation[name] = method.responseStream
        ? streaming(method.path, ops, context, watches)
        : unary(method.path, handler(method, ops, context), context, method.operation);
    }
    server.addService(tolerant, implementation);
  }
}

/**
 * The handler of a method: the operation it serves, through the operation's binding. A batch
 * first checks that the call's token may run every operation it holds.
 */
function handler(method: ServedMethod, ops: Operations, context: Context): Handler {
  const binding = GRPC_BINDINGS[method.operation] as {
    args(request: unknown): unknown[];
    response(result: unknown, request: unknown): unknown;
  };
  const operation = ops[method.operation] as (...args: unknown[]) => Promise<unknown>;
  const batch = method.operation === "batch";
  return async (request, metadata) => {
    const args = binding.args(request);
    const result = batch
      ? await runBatch(
        ops,
        args[0] as BatchOperation[],
        args[1] as BatchOptions,
        metadata.get(ACCESS_METADATA)[0] as Access | undefined,
        context.log,
      )
      : await operation.apply(ops, args);
    return method.dropsResult ? {} : binding.response(result, request);
  };
}

/**
 * The method, with a request decoder that hands a malformed request, or one over `maxBytes`
 * (refused as grpc-js refuses one over the server's cap), to the handler.
 */
function tolerate<Request, Response>(
  method: grpc.MethodDefinition<Request, Response>,
  maxBytes: number,
): grpc.MethodDefinition<Request | BadRequest, Response> {
  const decode = method.requestDeserialize;
  return {
    path: method.path,
    requestStream: false,
    responseStream: method.responseStream,
    requestSerialize: () => {
      throw new Error(`Cannot serialize a request of '${method.path}': this is the server`);
    },
    requestDeserialize: (bytes) => {
      if (bytes.length > maxBytes) {
        return new BadRequest(
          new ValueTooLargeError(
            `Received message larger than max (${bytes.length} vs ${maxBytes})`,
          ),
        );
      }
      try {
        return decode(bytes);
      } catch (error) {
        return new BadRequest(error);
      }
    },
    // A streamed message goes to many watchers: encoded once.
    responseSerialize: method.responseStream
      ? encodeOnce(method.responseSerialize as (message: object) => Buffer) as never
      : method.responseSerialize,
    responseDeserialize: method.responseDeserialize,
  };
}

/** Serves a streaming method (`Watch`): see `_grpc_watch.ts`. */
function streaming(
  path: string,
  ops: Operations,
  context: Context,
  watches: GrpcWatches,
): grpc.handleServerStreamingCall<unknown, unknown> {
  return (call) => {
    const request = call.request;
    const bad = request instanceof BadRequest ? { error: request.error } : undefined;
    if (context.debug) {
      const start = performance.now();
      call.once("finish", () => logCall(context, path, grpc.status.OK, start));
      call.once("error", (error: { code?: grpc.status }) => {
        logCall(context, path, error.code ?? grpc.status.UNKNOWN, start);
      });
    }
    watches.serve(call, ops, (error) => statusOf(error, path, context), bad);
  };
}

function unary(
  path: string,
  handler: Handler,
  context: Context,
  name: OperationName,
): grpc.handleUnaryCall<unknown, unknown> {
  const { recorder } = context;
  const operation = operationIndex(name);
  return (call, callback) => {
    const start = context.debug || recorder ? performance.now() : 0;
    const request = call.request;
    const reply = request instanceof BadRequest
      ? Promise.reject(request.error)
      : handler(request, call.metadata);
    reply.then(
      (response) => {
        if (context.debug) logCall(context, path, grpc.status.OK, start);
        recorder?.request(GRPC, operation, "ok", (performance.now() - start) / 1000);
        callback(null, response);
      },
      (error) => {
        const status = statusOf(error, path, context);
        if (context.debug) logCall(context, path, status.code, start);
        if (recorder !== undefined) {
          const outcome = codeFromGrpcStatus(status.code) ?? "INTERNAL";
          const seconds = (performance.now() - start) / 1000;
          const backend = outcome === "UNAVAILABLE" || outcome === "INTERNAL";
          recorder.request(GRPC, operation, outcome, seconds, backend);
        }
        callback(status);
      },
    );
  };
}

/** Maps an error to its status: a Purple error keeps its message, anything else is hidden. */
function statusOf(
  error: unknown,
  path: string,
  context: Context,
): { code: grpc.status; details: string } {
  if (error instanceof PurpleError) {
    const code: grpc.status = GRPC_STATUS[error.code];
    if (code === grpc.status.UNAVAILABLE || code === grpc.status.INTERNAL) {
      context.log(`${path} failed: ${error.message}`);
    }
    return { code, details: error.message };
  }
  context.log(`Internal error answering ${path}: ${(error as Error)?.stack ?? error}`);
  return { code: GRPC_STATUS.INTERNAL, details: "Internal server error" };
}

function logCall(context: Context, path: string, code: grpc.status, start: number): void {
  const ms = (performance.now() - start).toFixed(1);
  context.log(`${path} ${grpc.status[code]} ${ms}ms`);
}
