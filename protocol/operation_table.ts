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

import type { BatchableName, Operations } from "./operations.ts";

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
 * call; `each` (a batch) is as the operations it holds are (a read-only token may run a batch of
 * reads only).
 *
 * @example
 * ```ts
 * import type { Access } from "@purple/protocol";
 *
 * const access: Access = "read";
 * console.log(access);
 * ```
 */
export type Access = "read" | "write" | "each";

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
export type HttpMethod = "GET" | "PUT" | "DELETE" | "POST";

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
   * takes the rest of the path (it may hold `/`); or a fixed path (`/kv`, `/batch`).
   */
  readonly path: `/${string}/:key` | `/${string}`;
  /**
   * The query parameter that picks this operation where two share a method and a route:
   * `DELETE /sets/:key?item=x` removes an item, `DELETE /sets/:key` deletes the set.
   */
  readonly query?: string;
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
export type GrpcServiceName = "Cache" | "Counter" | "Flag" | "KV" | "Set" | "Batch" | "Watch";

/**
 * Where an operation is served over gRPC: a method of a service, with the names of its request
 * and response messages in `proto/purple.proto` (for a streaming operation, the response is the
 * message of one item of the stream).
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
 * The type of an argument, as a batch carries it in JSON (`?`: it may be left out):
 *
 * | type        | JSON                                                                     |
 * | ----------- | ------------------------------------------------------------------------ |
 * | `key`       | a non-empty string                                                       |
 * | `text`      | a string                                                                 |
 * | `seconds?`  | a whole number of seconds                                                |
 * | `int64`     | a string of digits (exact), or a number that is a safe integer           |
 * | `boolean`   | `true` or `false`                                                        |
 * | `bytes`     | a string (its UTF-8 bytes) or `{ "base64": "..." }`                      |
 * | `kvWrite?`  | `{ "ifMatch": "version" }` or `{ "ifNoneMatch": "*" }`                   |
 * | `list?`     | `{ "prefix": "...", "limit": 100, "cursor": "..." }`                     |
 * | `batch`     | a list of operations                                                     |
 * | `batchOptions?` | `{ "atomic": true }`                                                 |
 * | `watchKeys` | `{ "kv": ["a", "b"], "flags": ["c"] }` (a query parameter a key over HTTP) |
 *
 * @example
 * ```ts
 * import type { ParamType } from "@purple/protocol";
 *
 * const type: ParamType = "int64";
 * console.log(type);
 * ```
 */
export type ParamType =
  | "key"
  | "text"
  | "seconds?"
  | "int64"
  | "boolean"
  | "bytes"
  | "kvWrite?"
  | "list?"
  | "batch"
  | "batchOptions?"
  | "watchKeys";

/**
 * The type of a result, as a batch carries it in JSON: `void` is `null`, `int64` a string of
 * digits, `bytes` `{ "base64": "..." }`, `items` a list of strings, `entry`
 * `{ "value": { "base64": "..." }, "version": "..." }`, `page` `{ "keys": [...], "cursor": "..." }`;
 * `change` is one item of a watch's stream (`@purple/protocol/watch-json`).
 *
 * @example
 * ```ts
 * import type { ResultType } from "@purple/protocol";
 *
 * const type: ResultType = "items";
 * console.log(type);
 * ```
 */
export type ResultType =
  | "void"
  | "text"
  | "int64"
  | "boolean"
  | "bytes"
  | "items"
  | "entry"
  | "page"
  | "outcomes"
  | "change";

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
  /** Its parameters, in order: name and type (the JSON of a batch; the docs). */
  readonly params: ReadonlyArray<readonly [name: string, type: ParamType]>;
  /** Its result's type. */
  readonly result: ResultType;
  /** Whether a batch may hold it (default: yes). */
  readonly batch?: false;
  /**
   * `server`: it answers a stream of results (its `result` is one item), for as long as the
   * caller keeps it open: over HTTP a `text/event-stream` (Server-Sent Events, an event a
   * result), over gRPC a server-streaming method (a response message a result). A stream holds
   * no request slot once it runs and no backend time limit applies to it. Absent: one result.
   */
  readonly stream?: "server";
  /**
   * Another operation whose route and method carry this one (`kvGet` travels as `kvGetEntry`,
   * which answers with more): the result of this one is the field `result` of that one's.
   * Such an operation's `http` and `grpc` are the other's.
   */
  readonly servedBy?: { readonly operation: OperationName; readonly result: string };
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
    params: [["key", "key"]],
    result: "text",
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
    params: [["key", "key"], ["value", "text"], ["ttl", "seconds?"]],
    result: "void",
    http: { method: "PUT", path: "/cache/:key" },
    grpc: { service: "Cache", method: "CacheSet", request: "CacheSetRequest", response: "Empty" },
  },
  cacheDelete: {
    access: "write",
    action: "delete cache key",
    params: [["key", "key"]],
    result: "void",
    http: { method: "DELETE", path: "/cache/:key" },
    grpc: {
      service: "Cache",
      method: "CacheDelete",
      request: "CacheDeleteRequest",
      response: "Empty",
    },
  },
  cacheList: {
    access: "read",
    action: "list cache keys",
    params: [["options", "list?"]],
    result: "page",
    batch: false,
    http: { method: "GET", path: "/cache" },
    grpc: {
      service: "Cache",
      method: "CacheList",
      request: "ListRequest",
      response: "ListResponse",
    },
  },
  counterIncrement: {
    access: "write",
    action: "increment counter",
    params: [["key", "key"], ["amount", "int64"]],
    result: "int64",
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
    params: [["key", "key"]],
    result: "int64",
    http: { method: "GET", path: "/counters/:key" },
    grpc: {
      service: "Counter",
      method: "CounterGet",
      request: "GetCounterRequest",
      response: "GetCounterResponse",
      legacy: [{ method: "GetCounter", response: "GetCounterResponse" }],
    },
  },
  counterDelete: {
    access: "write",
    action: "delete counter",
    params: [["key", "key"]],
    result: "void",
    http: { method: "DELETE", path: "/counters/:key" },
    grpc: {
      service: "Counter",
      method: "CounterDelete",
      request: "CounterDeleteRequest",
      response: "Empty",
    },
  },
  counterList: {
    access: "read",
    action: "list counters",
    params: [["options", "list?"]],
    result: "page",
    batch: false,
    http: { method: "GET", path: "/counters" },
    grpc: {
      service: "Counter",
      method: "CounterList",
      request: "ListRequest",
      response: "ListResponse",
    },
  },
  flagGet: {
    access: "read",
    action: "get flag",
    params: [["key", "key"]],
    result: "boolean",
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
    params: [["key", "key"], ["value", "boolean"]],
    result: "void",
    http: { method: "PUT", path: "/flags/:key" },
    grpc: { service: "Flag", method: "FlagSet", request: "FlagSetRequest", response: "Empty" },
  },
  flagDelete: {
    access: "write",
    action: "delete flag",
    params: [["key", "key"]],
    result: "void",
    http: { method: "DELETE", path: "/flags/:key" },
    grpc: {
      service: "Flag",
      method: "FlagDelete",
      request: "FlagDeleteRequest",
      response: "Empty",
    },
  },
  flagList: {
    access: "read",
    action: "list flags",
    params: [["options", "list?"]],
    result: "page",
    batch: false,
    http: { method: "GET", path: "/flags" },
    grpc: { service: "Flag", method: "FlagList", request: "ListRequest", response: "ListResponse" },
  },
  kvGet: {
    access: "read",
    action: "get KV key",
    params: [["key", "key"]],
    result: "bytes",
    servedBy: { operation: "kvGetEntry", result: "value" },
    http: { method: "GET", path: "/kv/:key" },
    grpc: { service: "KV", method: "KVGet", request: "Location", response: "GetResponse" },
  },
  kvGetEntry: {
    access: "read",
    action: "get KV key",
    params: [["key", "key"]],
    result: "entry",
    http: { method: "GET", path: "/kv/:key" },
    grpc: { service: "KV", method: "KVGet", request: "Location", response: "GetResponse" },
  },
  kvPut: {
    access: "write",
    action: "put KV key",
    params: [["key", "key"], ["value", "bytes"], ["options", "kvWrite?"]],
    result: "void",
    http: { method: "PUT", path: "/kv/:key" },
    grpc: { service: "KV", method: "KVPut", request: "PutRequest", response: "Empty" },
  },
  kvDelete: {
    access: "write",
    action: "delete KV key",
    params: [["key", "key"], ["options", "kvWrite?"]],
    result: "void",
    http: { method: "DELETE", path: "/kv/:key" },
    grpc: { service: "KV", method: "KVDelete", request: "Location", response: "Empty" },
  },
  kvList: {
    access: "read",
    action: "list KV keys",
    params: [["options", "list?"]],
    result: "page",
    batch: false,
    http: { method: "GET", path: "/kv" },
    grpc: { service: "KV", method: "KVList", request: "ListRequest", response: "ListResponse" },
  },
  setGet: {
    access: "read",
    action: "get set",
    params: [["set", "key"]],
    result: "items",
    http: { method: "GET", path: "/sets/:key" },
    grpc: { service: "Set", method: "SetGet", request: "GetSetRequest", response: "SetResponse" },
  },
  setAdd: {
    access: "write",
    action: "add to set",
    params: [["set", "key"], ["item", "text"]],
    result: "items",
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
    params: [["set", "key"], ["item", "text"]],
    result: "items",
    http: { method: "DELETE", path: "/sets/:key", query: "item" },
    grpc: {
      service: "Set",
      method: "SetRemove",
      request: "ModifySetRequest",
      response: "SetResponse",
    },
  },
  setDelete: {
    access: "write",
    action: "delete set",
    params: [["set", "key"]],
    result: "void",
    http: { method: "DELETE", path: "/sets/:key" },
    grpc: { service: "Set", method: "SetDelete", request: "SetDeleteRequest", response: "Empty" },
  },
  setList: {
    access: "read",
    action: "list sets",
    params: [["options", "list?"]],
    result: "page",
    batch: false,
    http: { method: "GET", path: "/sets" },
    grpc: { service: "Set", method: "SetList", request: "ListRequest", response: "ListResponse" },
  },
  batch: {
    access: "each",
    action: "run batch",
    params: [["operations", "batch"], ["options", "batchOptions?"]],
    result: "outcomes",
    batch: false,
    http: { method: "POST", path: "/batch" },
    grpc: { service: "Batch", method: "Batch", request: "BatchRequest", response: "BatchResponse" },
  },
  watch: {
    access: "read",
    action: "watch",
    params: [["keys", "watchKeys"]],
    result: "change",
    batch: false,
    stream: "server",
    http: { method: "GET", path: "/watch" },
    grpc: { service: "Watch", method: "Watch", request: "WatchRequest", response: "WatchChange" },
  },
} as const;

// The compiler checks the table against the contract: every operation has an entry of the right
// shape (a missing one fails the first line), and no entry is not an operation (the second).
const _everyOperation: Record<OperationName, OperationSpec> = OPERATIONS;
const _noOtherEntry: [Exclude<keyof typeof OPERATIONS, OperationName>] extends [never] ? true
  : false = true;

/**
 * The operations that travel on their own route and method (all but those `servedBy` another).
 *
 * @example
 * ```ts
 * import type { WireOperationName } from "@purple/protocol";
 *
 * const name: WireOperationName = "kvGetEntry";
 * console.log(name);
 * ```
 */
export type WireOperationName = {
  [Op in OperationName]: (typeof OPERATIONS)[Op] extends { servedBy: object } ? never : Op;
}[OperationName];

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
 * Every operation that travels on its own route and method, in the table's order.
 *
 * @example
 * ```ts
 * import { WIRE_OPERATION_NAMES } from "@purple/protocol";
 *
 * console.log(WIRE_OPERATION_NAMES.includes("kvGet")); // false: it travels as kvGetEntry
 * ```
 */
export const WIRE_OPERATION_NAMES: readonly WireOperationName[] = Object.freeze(
  OPERATION_NAMES.filter((name) => !("servedBy" in OPERATIONS[name])) as WireOperationName[],
);

/**
 * Every operation a batch may hold (all but the listings, `watch` and `batch` itself), in the table's
 * order.
 *
 * @example
 * ```ts
 * import { BATCHABLE_NAMES } from "@purple/protocol";
 *
 * console.log(BATCHABLE_NAMES.includes("kvList")); // false
 * ```
 */
export const BATCHABLE_NAMES: readonly BatchableName[] = Object.freeze(
  OPERATION_NAMES.filter((name) => !("batch" in OPERATIONS[name])) as BatchableName[],
);

/**
 * Whether an operation answers a stream of results (the table's `stream`) rather than one.
 *
 * @param name The operation.
 * @returns `true` for `watch`.
 *
 * @example
 * ```ts
 * import { isStreaming } from "@purple/protocol";
 *
 * console.log(isStreaming("watch"), isStreaming("kvGet")); // true false
 * ```
 */
export function isStreaming(name: OperationName): boolean {
  const spec: OperationSpec = OPERATIONS[name];
  return spec.stream !== undefined;
}

/**
 * Whether a read-only token may call an operation (a batch: whether it may enter, its
 * operations are then checked one by one).
 *
 * @param name The operation.
 * @returns `true` for the operations that only read, and for `batch`.
 *
 * @example
 * ```ts
 * import { isRead } from "@purple/protocol";
 *
 * console.log(isRead("kvGet"), isRead("kvPut")); // true false
 * ```
 */
export function isRead(name: OperationName): boolean {
  return OPERATIONS[name].access !== "write";
}
