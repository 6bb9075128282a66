/**
 * The operation table: every operation of {@linkcode Operations} declared once, with what the
 * servers, the clients and the tests derive from it — whether it reads or writes (read-only
 * tokens), its HTTP method and route (routes, `405 Allow` answers), and its gRPC service,
 * method, messages and earlier method names (service registration, the clients' calls).
 *
 * The table is checked by the compiler against the contract: an operation of `Operations`
 * missing here, an entry of the wrong shape, or an entry that is not an operation does not
 * type-check. The gRPC messages
 * are checked against `proto/purple.proto` when `@purple/protocol/wire` loads.
 *
 * @example The routes of the read operations
 * ```ts
 * import { OPERATION_NAMES, OPERATIONS } from "@purple/protocol";
 *
 * for (const name of OPERATION_NAMES) {
 *   const { access, http } = OPERATIONS[name];
 *   if (access === "read") console.log(http.method, http.path); // GET /cache/:key, ...
 * }
 * ```
 *
 * @module
 */

import type { Operations } from "./operations.ts";

/**
 * The name of an operation: a method of {@linkcode Operations} other than `close`.
 *
 * @example
 * ```ts
 * import type { OperationName } from "@purple/protocol";
 *
 * const name: OperationName = "counterIncrement";
 * console.log(name);
 * ```
 */
export type OperationName = Exclude<keyof Operations, "close">;

/**
 * What an operation does to the data: `read` operations are the ones a read-only token may
 * call.
 *
 * @example
 * ```ts
 * import type { Access } from "@purple/protocol";
 *
 * const access: Access = "read";
 * console.log(access);
 * ```
 */
export type Access = "read" | "write";

/**
 * An HTTP method Purple's routes answer (HEAD comes with every GET).
 *
 * @example
 * ```ts
 * import type { HttpMethod } from "@purple/protocol";
 *
 * const method: HttpMethod = "PUT";
 * console.log(method);
 * ```
 */
export type HttpMethod = "GET" | "PUT" | "DELETE";

/**
 * Where an operation is served over HTTP.
 *
 * @example
 * ```ts
 * import type { HttpRoute } from "@purple/protocol";
 *
 * const route: HttpRoute = { method: "GET", path: "/cache/:key" };
 * console.log(route.path);
 * ```
 */
export interface HttpRoute {
  /** The method. */
  readonly method: HttpMethod;
  /**
   * The path: a fixed prefix and then `:key`, the key (or set name), percent-encoded, which
   * takes the rest of the path (it may hold `/`).
   */
  readonly path: `/${string}/:key`;
}

/**
 * A gRPC service of `proto/purple.proto` (package `proto`).
 *
 * @example
 * ```ts
 * import type { GrpcServiceName } from "@purple/protocol";
 *
 * const service: GrpcServiceName = "KV";
 * console.log(`proto.${service}`);
 * ```
 */
export type GrpcServiceName = "Cache" | "Counter" | "Flag" | "KV" | "Set";

/**
 * Where an operation is served over gRPC: a unary method of a service, with the names of its
 * request and response messages in `proto/purple.proto`.
 *
 * @example
 * ```ts
 * import type { GrpcRoute } from "@purple/protocol";
 *
 * const route: GrpcRoute = {
 *   service: "Flag",
 *   method: "FlagGet",
 *   request: "FlagGetRequest",
 *   response: "FlagResponse",
 * };
 * console.log(route.method);
 * ```
 */
export interface GrpcRoute {
  /** The service. */
  readonly service: GrpcServiceName;
  /** The method's name in the service. */
  readonly method: string;
  /** The request message. */
  readonly request: string;
  /** The response message. */
  readonly response: string;
  /**
   * Earlier names of the same call in the same service, still served so that the clients of
   * an earlier release keep working. Each takes the same request; its response is either the
   * same message or `Empty` (the call's result is then dropped).
   */
  readonly legacy?: ReadonlyArray<{ readonly method: string; readonly response: string }>;
}

/**
 * Everything the table says about one operation.
 *
 * @example
 * ```ts
 * import { OPERATIONS, type OperationSpec } from "@purple/protocol";
 *
 * const spec: OperationSpec = OPERATIONS.kvDelete;
 * console.log(spec.access, spec.http.method, spec.grpc.method); // "write" "DELETE" "KVDelete"
 * ```
 */
export interface OperationSpec {
  /** Whether it reads or writes. */
  readonly access: Access;
  /**
   * What it does to its key, as the start of a sentence about it: `Cannot <action> 'key': ...`.
   */
  readonly action: string;
  /** Its HTTP route. */
  readonly http: HttpRoute;
  /** Its gRPC method. */
  readonly grpc: GrpcRoute;
}

/**
 * The operation table (see the module doc). Adding an operation starts here and in
 * {@linkcode Operations}; docs/ARCHITECTURE.md lists the other places.
 *
 * @example
 * ```ts
 * import { OPERATIONS } from "@purple/protocol";
 *
 * console.log(OPERATIONS.counterIncrement.grpc.legacy); // [{ method: "IncrementCounter", ... }]
 * ```
 */
export const OPERATIONS = {
  cacheGet: {
    access: "read",
    action: "get cache key",
    http: { method: "GET", path: "/cache/:key" },
    grpc: {
      service: "Cache",
      method: "CacheGet",
      request: "CacheGetRequest",
      response: "CacheGetResponse",
    },
  },
  cacheSet: {
    access: "write",
    action: "set cache key",
    http: { method: "PUT", path: "/cache/:key" },
    grpc: { service: "Cache", method: "CacheSet", request: "CacheSetRequest", response: "Empty" },
  },
  counterIncrement: {
    access: "write",
    action: "increment counter",
    http: { method: "PUT", path: "/counters/:key" },
    grpc: {
      service: "Counter",
      method: "CounterIncrement",
      request: "IncrementCounterRequest",
      response: "GetCounterResponse",
      legacy: [{ method: "IncrementCounter", response: "Empty" }],
    },
  },
  counterGet: {
    access: "read",
    action: "get counter",
    http: { method: "GET", path: "/counters/:key" },
    grpc: {
      service: "Counter",
      method: "CounterGet",
      request: "GetCounterRequest",
      response: "GetCounterResponse",
      legacy: [{ method: "GetCounter", response: "GetCounterResponse" }],
    },
  },
  flagGet: {
    access: "read",
    action: "get flag",
    http: { method: "GET", path: "/flags/:key" },
    grpc: {
      service: "Flag",
      method: "FlagGet",
      request: "FlagGetRequest",
      response: "FlagResponse",
    },
  },
  flagSet: {
    access: "write",
    action: "set flag",
    http: { method: "PUT", path: "/flags/:key" },
    grpc: { service: "Flag", method: "FlagSet", request: "FlagSetRequest", response: "Empty" },
  },
  kvGet: {
    access: "read",
    action: "get KV key",
    http: { method: "GET", path: "/kv/:key" },
    grpc: { service: "KV", method: "KVGet", request: "Location", response: "GetResponse" },
  },
  kvPut: {
    access: "write",
    action: "put KV key",
    http: { method: "PUT", path: "/kv/:key" },
    grpc: { service: "KV", method: "KVPut", request: "PutRequest", response: "Empty" },
  },
  kvDelete: {
    access: "write",
    action: "delete KV key",
    http: { method: "DELETE", path: "/kv/:key" },
    grpc: { service: "KV", method: "KVDelete", request: "Location", response: "Empty" },
  },
  setGet: {
    access: "read",
    action: "get set",
    http: { method: "GET", path: "/sets/:key" },
    grpc: { service: "Set", method: "SetGet", request: "GetSetRequest", response: "SetResponse" },
  },
  setAdd: {
    access: "write",
    action: "add to set",
    http: { method: "PUT", path: "/sets/:key" },
    grpc: {
      service: "Set",
      method: "SetAdd",
      request: "ModifySetRequest",
      response: "SetResponse",
    },
  },
  setRemove: {
    access: "write",
    action: "remove from set",
    http: { method: "DELETE", path: "/sets/:key" },
    grpc: {
      service: "Set",
      method: "SetRemove",
      request: "ModifySetRequest",
      response: "SetResponse",
    },
  },
} as const;

// The compiler checks the table against the contract: every operation has an entry of the right
// shape (a missing one fails the first line), and no entry is not an operation (the second).
const _everyOperation: Record<OperationName, OperationSpec> = OPERATIONS;
const _noOtherEntry: [Exclude<keyof typeof OPERATIONS, OperationName>] extends [never] ? true
  : false = true;

/**
 * Every operation's name, in the table's order.
 *
 * @example
 * ```ts
 * import { OPERATION_NAMES } from "@purple/protocol";
 *
 * console.log(OPERATION_NAMES.length); // 12
 * ```
 */
export const OPERATION_NAMES: readonly OperationName[] = Object.freeze(
  Object.keys(OPERATIONS) as OperationName[],
);

/**
 * Whether a read-only token may call an operation.
 *
 * @param name The operation.
 * @returns `true` for the operations that only read.
 *
 * @example
 * ```ts
 * import { isRead } from "@purple/protocol";
 *
 * console.log(isRead("kvGet"), isRead("kvPut")); // true false
 * ```
 */
export function isRead(name: OperationName): boolean {
  return OPERATIONS[name].access === "read";
}
