/**
 * The gRPC wire format of Purple, derived from `proto/purple.proto` (the only source: the
 * codecs and descriptors in `gen/` are generated from it by `deno task gen`) and from the
 * operation table:
 *
 * - {@linkcode GRPC_BINDINGS}: for each operation, how its arguments become a request message
 *   and back, and how its result becomes a response message and back — the one place per
 *   operation that the gRPC server and `GrpcClient` share;
 * - {@linkcode grpcMethod} and {@linkcode grpcServices}: the methods as grpc-js method
 *   definitions (structurally: this module does not load grpc-js), for the server to register and
 *   the client to call;
 * - {@linkcode fileDescriptorSet}: the descriptors of Purple's services and of the standard
 *   health service, for server reflection.
 *
 * int64 fields are exact `bigint`s, bytes fields `Uint8Array`s. A message that does not decode
 * (truncated, a bad wire type, a string that is not UTF-8) is an `InvalidArgumentError`
 * (`Bad message: ...`).
 *
 * @example Encoding a request the way GrpcClient does
 * ```ts
 * import { GRPC_BINDINGS, grpcMethod } from "@purple/protocol/wire";
 *
 * const method = grpcMethod("counterIncrement");
 * const bytes = method.requestSerialize(GRPC_BINDINGS.counterIncrement.request("hits", 2n ** 60n));
 * console.log(method.path); // "/proto.Counter/CounterIncrement"
 * console.log(method.requestDeserialize(bytes).amount); // 1152921504606846976n
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { create, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import {
  type ErrorCode,
  errorFromCode,
  HTTP_STATUS,
  InternalError,
  InvalidArgumentError,
} from "./errors.ts";
import type {
  BatchableName,
  BatchOperation,
  BatchOutcome,
  KeyPage,
  KvWriteOptions,
  ListOptions,
  Operations,
  WatchChange,
} from "./operations.ts";
import {
  type GrpcRoute,
  type GrpcServiceName,
  type OperationName,
  OPERATIONS,
  type OperationSpec,
  WIRE_OPERATION_NAMES,
  type WireOperationName,
} from "./operation_table.ts";
import { watchKeysOf, watchTargets } from "./watch.ts";
import * as purple from "./gen/purple_pb.ts";
import * as health from "./gen/grpc/health/v1/health_pb.ts";

/**
 * The protobuf package of Purple's services.
 *
 * @example
 * ```ts
 * import { PROTO_PACKAGE } from "@purple/protocol/wire";
 *
 * console.log(PROTO_PACKAGE); // "proto"
 * ```
 */
export const PROTO_PACKAGE = "proto";

/**
 * What `gen/purple_pb.ts` (generated from `proto/purple.proto`) exports: the file's descriptor,
 * and a schema (`<Message>Schema`) for each message and a descriptor for each service.
 *
 * @example
 * ```ts
 * import type { Generated } from "@purple/protocol/wire";
 *
 * type Schemas = keyof Generated; // "CacheGetRequestSchema" | ...
 * ```
 */
export type Generated = typeof purple;

/**
 * The name of a message of `proto/purple.proto`, such as `CacheGetRequest`.
 *
 * @example
 * ```ts
 * import type { MessageName } from "@purple/protocol/wire";
 *
 * const name: MessageName = "PutRequest";
 * console.log(name);
 * ```
 */
export type MessageName = {
  [K in keyof Generated]: K extends `${infer Name}Schema` ? Name : never;
}[keyof Generated];

/** The generated schema of a message, by name. */
type SchemaOf<Name extends MessageName> =
  & Generated[`${Name}Schema` & keyof Generated]
  & DescMessage;

/**
 * A decoded message of `proto/purple.proto`, by name: the TypeScript type protoc-gen-es
 * generated for it (read from its schema's type, so that no protobuf-es type is named here).
 *
 * @example
 * ```ts
 * import type { Message } from "@purple/protocol/wire";
 *
 * function keyOf(request: Message<"CacheGetRequest">): string {
 *   return request.key;
 * }
 * ```
 */
export type Message<Name extends MessageName> = Generated[`${Name}Schema` & keyof Generated] extends
  { readonly $codegenv2: { a: infer Shape } } ? Shape
  : never;

/**
 * What a message is built from: its fields, each optional (a missing field is its default),
 * embedded messages built the same way.
 *
 * @example
 * ```ts
 * import type { MessageInit } from "@purple/protocol/wire";
 *
 * const reply: MessageInit<"GetCounterResponse"> = { value: 3n };
 * console.log(reply);
 * ```
 */
export type MessageInit<Name extends MessageName> = Fields<Message<Name>>;

/**
 * The fields of a decoded message, each optional, embedded messages as their fields (the
 * protobuf-es `$typeName` and `$unknown` left out).
 *
 * @example
 * ```ts
 * import type { Fields, Message } from "@purple/protocol/wire";
 *
 * const request: Fields<Message<"CacheSetRequest">> = { key: "session", item: { value: "v" } };
 * console.log(request);
 * ```
 */
export type Fields<T> = {
  [P in keyof T as P extends `$${string}` ? never : P]?: FieldInit<T[P]>;
};

/**
 * What one field is built from: a scalar as it is, a list of what its elements are built from,
 * an embedded message (or a oneof's `{ case, value }`) as its fields.
 *
 * @example
 * ```ts
 * import type { FieldInit } from "@purple/protocol/wire";
 *
 * const items: FieldInit<string[]> = ["a", "b"];
 * console.log(items);
 * ```
 */
export type FieldInit<F> = F extends Uint8Array | bigint | boolean | number | string ? F
  : F extends readonly (infer Element)[] ? FieldInit<Element>[]
  : F extends object ? Fields<F>
  : F;

/**
 * The operation table's type, which the bindings' types read the message names from.
 *
 * @example
 * ```ts
 * import type { Table } from "@purple/protocol/wire";
 *
 * type KvGet = Table["kvGet"]["grpc"]["method"]; // "KVGet"
 * ```
 */
export type Table = typeof OPERATIONS;

/**
 * The request message of an operation, as the operation table names it.
 *
 * @example
 * ```ts
 * import type { RequestName } from "@purple/protocol/wire";
 *
 * const name: RequestName<"kvPut"> = "PutRequest";
 * console.log(name);
 * ```
 */
export type RequestName<Op extends OperationName> = Table[Op]["grpc"]["request"];

/**
 * The response message of an operation, as the operation table names it.
 *
 * @example
 * ```ts
 * import type { ResponseName } from "@purple/protocol/wire";
 *
 * const name: ResponseName<"kvPut"> = "Empty";
 * console.log(name);
 * ```
 */
export type ResponseName<Op extends OperationName> = Table[Op]["grpc"]["response"];

/**
 * The arguments of an operation (without any per-call options).
 *
 * @example
 * ```ts
 * import type { Arguments } from "@purple/protocol/wire";
 *
 * const args: Arguments<"cacheSet"> = ["session", "a1b2c3", 60];
 * console.log(args);
 * ```
 */
export type Arguments<Op extends OperationName> = Parameters<Operations[Op]>;

/**
 * The result an operation resolves with; for a streaming operation (`watch`), one item of its
 * stream (one response message).
 *
 * @example
 * ```ts
 * import type { Result } from "@purple/protocol/wire";
 *
 * const result: Result<"counterGet"> = 3n;
 * const change: Result<"watch"> = { service: "flags", key: "beta", exists: false, value: false };
 * console.log(result, change);
 * ```
 */
export type Result<Op extends OperationName> = ReturnType<Operations[Op]> extends
  AsyncIterable<infer Item> ? Item : Awaited<ReturnType<Operations[Op]>>;

/**
 * How one operation travels over gRPC, both ways. `GrpcClient` calls `request` and `result`,
 * the server `args` and `response`; between them, the bytes.
 *
 * @example
 * ```ts
 * import type { GrpcBinding } from "@purple/protocol/wire";
 *
 * const flagGet: GrpcBinding<"flagGet"> = {
 *   request: (key) => ({ key }),
 *   args: (request) => [request.key],
 *   response: (value) => ({ value }),
 *   result: (response) => response.value,
 * };
 * console.log(flagGet.request("beta"));
 * ```
 */
export interface GrpcBinding<Op extends OperationName> {
  /** Client: the request message of the operation's arguments (already checked). */
  request(...args: Arguments<Op>): MessageInit<RequestName<Op>>;
  /** Server: the operation's arguments from a decoded request message. */
  args(request: Message<RequestName<Op>>): Arguments<Op>;
  /** Server: the response message of the operation's result (the request, for a batch's). */
  response(result: Result<Op>, request: Message<RequestName<Op>>): MessageInit<ResponseName<Op>>;
  /** Client: the operation's result from a decoded response message. */
  result(response: Message<ResponseName<Op>>): Result<Op>;
}

/**
 * A binding for every operation that travels on its own method (`kvGet` travels as
 * `kvGetEntry`): the compiler refuses a missing one.
 *
 * @example
 * ```ts
 * import type { GrpcBindings } from "@purple/protocol/wire";
 *
 * type KvPut = GrpcBindings["kvPut"];
 * ```
 */
export type GrpcBindings = { readonly [Op in WireOperationName]: GrpcBinding<Op> };

const EMPTY_BYTES = new Uint8Array(0);
const encoder = new TextEncoder();

/** The request message of a listing. */
function listRequest(options?: ListOptions): MessageInit<"ListRequest"> {
  return {
    prefix: options?.prefix ?? "",
    limit: options?.limit ?? 0,
    cursor: options?.cursor ?? "",
  };
}

/** The options of a listing request: proto3's defaults ("", 0) are the options left out. */
function listOptions(request: Message<"ListRequest">): [ListOptions] {
  const options: ListOptions = {};
  if (request.prefix !== "") options.prefix = request.prefix;
  if (request.limit !== 0) options.limit = request.limit;
  if (request.cursor !== "") options.cursor = request.cursor;
  return [options];
}

/** A page from a listing response: an empty cursor is the last page. */
function keyPage(response: Message<"ListResponse">): KeyPage {
  return response.cursor === ""
    ? { keys: response.keys }
    : { keys: response.keys, cursor: response.cursor };
}

/** The conditions of a KV write from its message's optional fields (none: `undefined`). */
function writeOptions(
  ifMatch: string | undefined,
  ifNoneMatch: boolean,
): KvWriteOptions | undefined {
  if (ifMatch === undefined && !ifNoneMatch) return undefined;
  const options: KvWriteOptions = {};
  if (ifMatch !== undefined) options.ifMatch = ifMatch;
  if (ifNoneMatch) options.ifNoneMatch = "*";
  return options;
}

const keyOnly = {
  request: (key: string) => ({ key }),
  args: (request: { key: string }): [string] => [request.key],
  response: () => ({}),
  result: () => undefined,
};

/** A watch's change as its message: the state in the field named after its service. */
function changeMessage(change: WatchChange): MessageInit<"WatchChange"> {
  const { key, exists } = change;
  switch (change.service) {
    case "cache":
      return {
        key,
        exists,
        state: {
          case: "cache",
          value: change.exists ? { value: change.value, expiresAt: BigInt(change.expiresAt) } : {},
        },
      };
    case "counters":
      return { key, exists, state: { case: "counters", value: { value: change.value } } };
    case "flags":
      return { key, exists, state: { case: "flags", value: { value: change.value } } };
    case "kv":
      return {
        key,
        exists,
        state: {
          case: "kv",
          value: change.exists ? { value: { content: change.value }, version: change.version } : {},
        },
      };
    case "sets":
      return { key, exists, state: { case: "sets", value: { items: change.items } } };
  }
}

/** A watch's change from its message. */
function changeOf(message: Message<"WatchChange">): WatchChange {
  const { key, exists, state } = message;
  switch (state.case) {
    case "cache":
      return exists
        ? {
          service: "cache",
          key,
          exists,
          value: state.value.value,
          expiresAt: Number(state.value.expiresAt),
        }
        : { service: "cache", key, exists };
    case "counters":
      return { service: "counters", key, exists, value: state.value.value };
    case "flags":
      return { service: "flags", key, exists, value: state.value.value };
    case "kv":
      return exists
        ? {
          service: "kv",
          key,
          exists,
          // A copy, so that the value does not hold on to the whole message it came in.
          value: state.value.value?.content.slice() ?? new Uint8Array(0),
          version: state.value.version,
        }
        : { service: "kv", key, exists };
    case "sets":
      return { service: "sets", key, exists, items: state.value.items };
    default:
      throw new InternalError(`Cannot read a change of the watch of '${key}': it names no service`);
  }
}

const listing = {
  request: listRequest,
  args: listOptions,
  response: (page: KeyPage) => ({ keys: page.keys, cursor: page.cursor ?? "" }),
  result: keyPage,
};

/**
 * How each operation travels over gRPC (see {@linkcode GrpcBinding}). Proto3 gives a missing
 * field its default: a `CacheSetRequest` without its `item` is an empty value with the default
 * TTL, which the operation then refuses as it would any empty value.
 *
 * @example
 * ```ts
 * import { GRPC_BINDINGS } from "@purple/protocol/wire";
 *
 * console.log(GRPC_BINDINGS.cacheSet.request("session", "a1b2c3", 60)); // { key, item: { ... } }
 * ```
 */
export const GRPC_BINDINGS: GrpcBindings = Object.freeze(
  {
    cacheGet: {
      request: (key) => ({ key }),
      args: (request) => [request.key],
      response: (value) => ({ value }),
      result: (response) => response.value,
    },
    cacheSet: {
      request: (key, value, ttl) => ({ key, item: { value, ttl: ttl ?? 0 } }),
      args: ({ key, item }) => [key, item?.value ?? "", item?.ttl ?? 0],
      response: () => ({}),
      result: () => undefined,
    },
    cacheDelete: keyOnly,
    cacheList: listing,
    counterIncrement: {
      request: (key, amount) => ({ key, amount: BigInt(amount) }),
      args: (request) => [request.key, request.amount],
      response: (value) => ({ value }),
      result: (response) => response.value,
    },
    counterGet: {
      request: (key) => ({ key }),
      args: (request) => [request.key],
      response: (value) => ({ value }),
      result: (response) => response.value,
    },
    counterDelete: keyOnly,
    counterList: listing,
    flagGet: {
      request: (key) => ({ key }),
      args: (request) => [request.key],
      response: (value) => ({ value }),
      result: (response) => response.value,
    },
    flagSet: {
      request: (key, value) => ({ key, value }),
      args: (request) => [request.key, request.value],
      response: () => ({}),
      result: () => undefined,
    },
    flagDelete: keyOnly,
    flagList: listing,
    kvGetEntry: {
      request: (key) => ({ key }),
      args: (request) => [request.key],
      response: (entry) => ({ value: { content: entry.value }, version: entry.version }),
      // A copy, so that the value does not hold on to the whole message it came in.
      result: (response) => ({
        value: response.value?.content.slice() ?? new Uint8Array(0),
        version: response.version,
      }),
    },
    kvPut: {
      request: (key, value, options) => ({
        location: { key },
        value: { content: typeof value === "string" ? encoder.encode(value) : value },
        ifMatch: options?.ifMatch,
        ifNoneMatch: options?.ifNoneMatch === "*",
      }),
      args: ({ location, value, ifMatch, ifNoneMatch }) => {
        const options = writeOptions(ifMatch, ifNoneMatch);
        const key = location?.key ?? "";
        const content = value?.content ?? EMPTY_BYTES;
        return options === undefined ? [key, content] : [key, content, options];
      },
      response: () => ({}),
      result: () => undefined,
    },
    kvDelete: {
      request: (key, options) => ({
        key,
        ifMatch: options?.ifMatch,
        ifNoneMatch: options?.ifNoneMatch === "*",
      }),
      args: ({ key, ifMatch, ifNoneMatch }) => {
        const options = writeOptions(ifMatch, ifNoneMatch);
        return options === undefined ? [key] : [key, options];
      },
      response: () => ({}),
      result: () => undefined,
    },
    kvList: listing,
    setGet: {
      request: (set) => ({ set }),
      args: (request) => [request.set],
      response: (items) => ({ items }),
      result: (response) => response.items,
    },
    setAdd: {
      request: (set, item) => ({ set, item }),
      args: (request) => [request.set, request.item],
      response: (items) => ({ items }),
      result: (response) => response.items,
    },
    setRemove: {
      request: (set, item) => ({ set, item }),
      args: (request) => [request.set, request.item],
      response: (items) => ({ items }),
      result: (response) => response.items,
    },
    setDelete: {
      request: (set) => ({ set }),
      args: (request) => [request.set],
      response: () => ({}),
      result: () => undefined,
    },
    setList: listing,
    batch: {
      request: (operations, options) => ({
        operations: operations.map((operation) => ({
          operation: batchOperation(operation) as never,
        })),
        atomic: options?.atomic === true,
      }),
      args: (request) => {
        const operations = request.operations.map((operation, index) =>
          fromBatchOperation(operation.operation, index)
        );
        return request.atomic ? [operations, { atomic: true }] : [operations];
      },
      response: (outcomes, request) => ({
        results: outcomes.map((outcome, index) => ({
          result: batchResult(outcome, request.operations[index]?.operation.case) as never,
        })),
      }),
      result: (response) =>
        response.results.map((result, index) => fromBatchResult(result.result, index)),
    },
    watch: {
      request: (keys) => {
        const { cache = [], counters = [], flags = [], kv = [], sets = [] } = keys;
        return {
          cache: [...cache],
          counters: [...counters],
          flags: [...flags],
          kv: [...kv],
          sets: [...sets],
        };
      },
      // Checked here for their shape (each key once), as the HTTP route reads its query.
      args: ({ cache, counters, flags, kv, sets }) => [
        watchKeysOf(watchTargets({ cache, counters, flags, kv, sets })),
      ],
      response: changeMessage,
      result: changeOf,
    },
  } satisfies GrpcBindings,
);

/** A binding seen without its types, for the batch's generic code. */
interface AnyBinding {
  request(...args: unknown[]): unknown;
  args(request: unknown): unknown[];
  response(result: unknown, request?: unknown): unknown;
  result(response: unknown): unknown;
}

/** The operations a batch may hold, by the name it travels under (`kvGet`: `kvGetEntry`). */
const BATCHABLE: ReadonlySet<WireOperationName> = new Set(
  WIRE_OPERATION_NAMES.filter((op) => (OPERATIONS[op] as OperationSpec).batch !== false),
);

/**
 * The operation that carries `op` on the wire: itself, or the one it is `servedBy`.
 *
 * @param op An operation.
 * @returns The operation whose route and method carry it.
 *
 * @example
 * ```ts
 * import { wireOperation } from "@purple/protocol/wire";
 *
 * console.log(wireOperation("kvGet"), wireOperation("kvPut")); // "kvGetEntry" "kvPut"
 * ```
 */
export function wireOperation(op: OperationName): WireOperationName {
  const spec: OperationSpec = OPERATIONS[op];
  return (spec.servedBy?.operation ?? op) as WireOperationName;
}

/**
 * An operation's result from the result of the operation that carries it (`kvGet`'s value
 * from `kvGetEntry`'s entry), or the result itself.
 *
 * @param op The operation asked for.
 * @param result The result of `wireOperation(op)`.
 * @returns The result of `op`.
 *
 * @example
 * ```ts
 * import { projectResult } from "@purple/protocol/wire";
 *
 * const entry = { value: new Uint8Array([1]), version: "1" };
 * console.log(projectResult("kvGet", entry)); // Uint8Array(1) [ 1 ]
 * ```
 */
export function projectResult(op: OperationName, result: unknown): unknown {
  const spec: OperationSpec = OPERATIONS[op];
  return spec.servedBy === undefined
    ? result
    : (result as Record<string, unknown>)[spec.servedBy.result];
}

function batchOperation(operation: BatchOperation): { case: string; value: unknown } {
  const wire = wireOperation(operation.op);
  const binding = GRPC_BINDINGS[wire] as unknown as AnyBinding;
  return { case: wire, value: binding.request(...operation.args) };
}

function fromBatchOperation(
  operation: { case?: string; value?: unknown },
  index: number,
): BatchOperation {
  const op = operation.case as WireOperationName | undefined;
  if (op === undefined || !BATCHABLE.has(op)) {
    throw new InvalidArgumentError(`Bad batch: operation ${index} names no operation`);
  }
  const binding = GRPC_BINDINGS[op] as unknown as AnyBinding;
  return { op, args: binding.args(operation.value) } as unknown as BatchOperation;
}

function batchResult(
  outcome: BatchOutcome<BatchableName>,
  op: string | undefined,
): { case: string; value: unknown } {
  if (!outcome.ok) {
    return { case: "error", value: { code: outcome.error.code, message: outcome.error.message } };
  }
  const binding = GRPC_BINDINGS[op as WireOperationName] as unknown as AnyBinding;
  return { case: op!, value: binding.response(outcome.value) };
}

function fromBatchResult(
  result: { case?: string; value?: unknown },
  index: number,
): BatchOutcome<BatchableName> {
  if (result.case === "error") {
    const { code, message } = result.value as { code: string; message: string };
    const known = code in HTTP_STATUS ? code as ErrorCode : "INTERNAL";
    return { ok: false, error: errorFromCode(known, message) };
  }
  const op = result.case as WireOperationName | undefined;
  if (op === undefined || !BATCHABLE.has(op)) {
    throw new InternalError(`Cannot read the batch's result ${index}: it names no operation`);
  }
  return {
    ok: true,
    value: (GRPC_BINDINGS[op] as unknown as AnyBinding).result(result.value),
  } as BatchOutcome<BatchableName>;
}

/**
 * A method in the shape of a grpc-js `MethodDefinition` (unary, or server-streaming for a
 * streaming operation): it can be passed wherever grpc-js takes one. Serializers return `Buffer`s (grpc-js copies them with Buffer methods). They take
 * what a message is built from (`RequestInit`, `ResponseInit`), decoders give whole messages.
 *
 * @example
 * ```ts
 * import { grpcMethod, type MethodDefinition } from "@purple/protocol/wire";
 *
 * const method: MethodDefinition<unknown, unknown> = grpcMethod("kvGet");
 * console.log(method.path); // "/proto.KV/KVGet"
 * ```
 */
export interface MethodDefinition<
  Request,
  Response,
  RequestInit = Request,
  ResponseInit = Response,
> {
  /** `/<package>.<Service>/<Method>`, such as `/proto.Cache/CacheGet`. */
  readonly path: string;
  /** Always false: no method of Purple takes a stream of requests. */
  readonly requestStream: false;
  /** Whether the method answers a stream of responses (a streaming operation: `watch`). */
  readonly responseStream: boolean;
  /** Encodes a request. */
  readonly requestSerialize: (message: RequestInit) => Buffer;
  /** Decodes a request; throws `InvalidArgumentError` when it is malformed. */
  readonly requestDeserialize: (bytes: Uint8Array) => Request;
  /** Encodes a response. */
  readonly responseSerialize: (message: ResponseInit) => Buffer;
  /** Decodes a response; throws `InvalidArgumentError` when it is malformed. */
  readonly responseDeserialize: (bytes: Uint8Array) => Response;
}

/**
 * A method of one of Purple's services, with the operation it serves.
 *
 * @example
 * ```ts
 * import { grpcServices, type ServedMethod } from "@purple/protocol/wire";
 *
 * const method: ServedMethod = grpcServices().Counter.IncrementCounter;
 * console.log(method.operation, method.legacy); // "counterIncrement" true
 * ```
 */
export interface ServedMethod extends MethodDefinition<unknown, unknown> {
  /** The operation the method calls. */
  readonly operation: WireOperationName;
  /** Whether this is an earlier name of the operation's method (see the table's `legacy`). */
  readonly legacy: boolean;
  /**
   * Whether the method answers `Empty` where the operation has a result (an earlier name that
   * returned nothing): the server then drops the result.
   */
  readonly dropsResult: boolean;
}

/** The generated schema of a message, by name. */
function schema(name: string): DescMessage {
  const found = (purple as Record<string, unknown>)[`${name}Schema`];
  if (typeof found !== "object" || found === null || (found as DescMessage).kind !== "message") {
    throw new Error(
      `The operation table names the message '${name}', which is not in purple.proto`,
    );
  }
  return found as DescMessage;
}

/**
 * A message's encoder and decoder with grpc-js's conventions: Buffers out (grpc-js copies them
 * with Buffer methods), `InvalidArgumentError` for bytes that do not decode.
 *
 * @example
 * ```ts
 * import { type Codec, messageCodecOf } from "@purple/protocol/wire";
 *
 * const codec: Codec<{ value?: bigint }, { value: bigint }> = messageCodecOf("GetCounterResponse");
 * console.log(codec.decode(codec.encode({ value: 7n })).value); // 7n
 * ```
 */
export interface Codec<Init, Decoded> {
  /** Encodes a message built from its fields. */
  encode(message: Init): Buffer;
  /** Decodes a message; throws `InvalidArgumentError` when the bytes are not one. */
  decode(bytes: Uint8Array): Decoded;
}

/** A message's codec with grpc-js's conventions: Buffers out, typed errors in. */
function codec(desc: DescMessage): Codec<unknown, unknown> {
  return {
    encode: (message: unknown): Buffer => {
      const bytes = toBinary(desc, create(desc, message as never));
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    decode: (bytes: Uint8Array): unknown => {
      try {
        // A plain view of grpc-js's Buffer: bytes fields are then plain Uint8Arrays (a Buffer's
        // slice() would not even copy).
        return fromBinary(desc, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      } catch (cause) {
        throw new InvalidArgumentError(`Bad message: ${decodeProblem(cause)}`, { cause });
      }
    },
  };
}

/** Why a message did not decode, for `Bad message: ...`. */
function decodeProblem(error: unknown): string {
  // TextDecoder's fatal mode throws a TypeError; protobuf-es throws Errors of its own.
  if (error instanceof TypeError) return "a string field is not valid UTF-8";
  return error instanceof Error ? error.message : String(error);
}

function methodDefinition(
  service: GrpcServiceName,
  method: string,
  request: string,
  response: string,
  responseStream: boolean,
): MethodDefinition<unknown, unknown> {
  const requestCodec = codec(schema(request));
  const responseCodec = codec(schema(response));
  return {
    path: `/${PROTO_PACKAGE}.${service}/${method}`,
    requestStream: false,
    responseStream,
    requestSerialize: requestCodec.encode,
    requestDeserialize: requestCodec.decode,
    responseSerialize: responseCodec.encode,
    responseDeserialize: responseCodec.decode,
  } as MethodDefinition<unknown, unknown>;
}

/** Checks that the proto declares a method with the table's messages and kind. */
function assertInProto(
  service: string,
  method: string,
  request: string,
  response: string,
  responseStream: boolean,
) {
  const declared = purple.file_purple.services.find((s) => s.name === service)?.methods
    .find((m) => m.name === method);
  const kind = responseStream ? "server_streaming" : "unary";
  if (
    declared?.input.name !== request || declared.output.name !== response ||
    declared.methodKind !== kind
  ) {
    throw new Error(
      `The operation table says ${PROTO_PACKAGE}.${service}/${method} takes ${request} and ` +
        `returns ${responseStream ? "a stream of " : ""}${response}, which purple.proto does ` +
        "not declare",
    );
  }
}

let services: Record<GrpcServiceName, Record<string, ServedMethod>> | undefined;

/**
 * Every method of Purple's services, service by service, from the operation table (earlier
 * method names included), checked against `proto/purple.proto`: a method the proto declares and
 * the table does not serve, or the reverse, throws. Built once.
 *
 * @returns The services, each a grpc-js `ServiceDefinition` whose methods say which operation
 * they call.
 * @throws {Error} When the table and the proto disagree (a bug caught by every gRPC test).
 *
 * @example
 * ```ts
 * import { grpcServices } from "@purple/protocol/wire";
 *
 * console.log(Object.keys(grpcServices().Counter)); // ["CounterIncrement", "IncrementCounter", ...]
 * ```
 */
export function grpcServices(): Readonly<Record<GrpcServiceName, Record<string, ServedMethod>>> {
  if (services !== undefined) return services;
  const built = {} as Record<GrpcServiceName, Record<string, ServedMethod>>;
  for (const operation of WIRE_OPERATION_NAMES) {
    const spec: OperationSpec = OPERATIONS[operation];
    const route: GrpcRoute = spec.grpc;
    const { service, method, request, response, legacy = [] } = route;
    const streams = spec.stream === "server";
    const methods = built[service] ??= {};
    for (
      const [name, replies, isLegacy] of [
        [method, response, false] as const,
        ...legacy.map((old) => [old.method, old.response, true] as const),
      ]
    ) {
      assertInProto(service, name, request, replies, streams);
      if (isLegacy && replies !== response && replies !== "Empty") {
        throw new Error(`The earlier method ${service}/${name} must answer ${response} or Empty`);
      }
      methods[name] = {
        ...methodDefinition(service, name, request, replies, streams),
        operation,
        legacy: isLegacy,
        dropsResult: replies !== response,
      };
    }
  }
  for (const declared of purple.file_purple.services) {
    for (const method of declared.methods) {
      if (built[declared.name as GrpcServiceName]?.[method.name] === undefined) {
        throw new Error(
          `${PROTO_PACKAGE}.${declared.name}/${method.name} is in purple.proto but not in the ` +
            "operation table",
        );
      }
    }
  }
  assertBatchOneofs();
  return services = built;
}

/**
 * Checks that the batch messages of the proto hold exactly the operations a batch may hold,
 * each with its method's request and response.
 */
function assertBatchOneofs(): void {
  const operation = purple.BatchOperationSchema.oneofs[0].fields;
  const result = purple.BatchResultSchema.oneofs[0].fields;
  const expected = [...BATCHABLE].sort();
  const got = operation.map((field) => field.localName).sort();
  if (JSON.stringify(got) !== JSON.stringify(expected)) {
    throw new Error(
      `BatchOperation in purple.proto holds ${got.join(", ")}; the operation table's batchable ` +
        `operations are ${expected.join(", ")}`,
    );
  }
  for (const field of operation) {
    const { request, response } = OPERATIONS[field.localName as WireOperationName].grpc;
    const answer = result.find((candidate) => candidate.localName === field.localName);
    if (field.message?.name !== request || answer?.message?.name !== response) {
      throw new Error(
        `BatchOperation.${field.name} and BatchResult.${field.name} must be ${request} and ` +
          `${response}, as the operation table says`,
      );
    }
  }
}

/**
 * The method of an operation (its current name, not an earlier one).
 *
 * @param operation The operation.
 * @returns Its grpc-js method definition.
 *
 * @example
 * ```ts
 * import { grpcMethod } from "@purple/protocol/wire";
 *
 * console.log(grpcMethod("setAdd").path); // "/proto.Set/SetAdd"
 * ```
 */
export function grpcMethod<Op extends WireOperationName>(
  operation: Op,
): MethodDefinition<
  Message<RequestName<Op>>,
  Message<ResponseName<Op>>,
  MessageInit<RequestName<Op>>,
  MessageInit<ResponseName<Op>>
> {
  const { service, method } = OPERATIONS[operation].grpc;
  return grpcServices()[service][method] as never;
}

/**
 * The full names of Purple's services, such as `proto.Cache`, as health checks name them.
 *
 * @returns The names, in the proto's order.
 *
 * @example
 * ```ts
 * import { grpcServiceNames } from "@purple/protocol/wire";
 *
 * console.log(grpcServiceNames()); // ["proto.Cache", "proto.Counter", "proto.Flag", ...]
 * ```
 */
export function grpcServiceNames(): string[] {
  return purple.file_purple.services.map((service) => service.typeName);
}

/**
 * The encoded `google.protobuf.FileDescriptorSet` of `purple.proto` and of the health service
 * (`grpc/health/v1/health.proto`), as server reflection serves them.
 *
 * @returns The bytes.
 *
 * @example
 * ```ts
 * import { fileDescriptorSet } from "@purple/protocol/wire";
 *
 * console.log(fileDescriptorSet().length > 0); // true
 * ```
 */
export function fileDescriptorSet(): Uint8Array {
  return toBinary(
    FileDescriptorSetSchema,
    create(FileDescriptorSetSchema, {
      file: [purple.file_purple.proto, health.file_grpc_health_v1_health.proto],
    }),
  );
}

/**
 * The codec of a message of `proto/purple.proto`, by name (tests and tools; the servers and
 * clients go through {@linkcode grpcMethod}).
 *
 * @param name The message's name.
 * @returns Its encoder and decoder.
 *
 * @example
 * ```ts
 * import { messageCodecOf } from "@purple/protocol/wire";
 *
 * console.log(messageCodecOf("GetCounterResponse").encode({ value: 1n })); // <Buffer 08 01>
 * ```
 */
export function messageCodecOf<Name extends MessageName>(
  name: Name,
): Codec<MessageInit<Name>, Message<Name>> {
  return codec(schema(name)) as Codec<MessageInit<Name>, Message<Name>>;
}

/**
 * The serving status of the standard health service (`grpc.health.v1`'s
 * `HealthCheckResponse.ServingStatus`).
 *
 * @example
 * ```ts
 * import { HEALTH_STATUS } from "@purple/protocol/wire";
 *
 * console.log(HEALTH_STATUS.SERVING); // 1
 * ```
 */
export const HEALTH_STATUS: Readonly<{
  UNKNOWN: number;
  SERVING: number;
  NOT_SERVING: number;
  SERVICE_UNKNOWN: number;
}> = Object.freeze({
  UNKNOWN: health.HealthCheckResponse_ServingStatus.UNKNOWN,
  SERVING: health.HealthCheckResponse_ServingStatus.SERVING,
  NOT_SERVING: health.HealthCheckResponse_ServingStatus.NOT_SERVING,
  SERVICE_UNKNOWN: health.HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN,
});

/**
 * The codecs of the standard health service's messages, generated from
 * `proto/grpc/health/v1/health.proto` (the descriptors reflection serves too).
 *
 * @returns The request's codec (the service to check) and the response's (its status).
 *
 * @example
 * ```ts
 * import { HEALTH_STATUS, healthCodecs } from "@purple/protocol/wire";
 *
 * const { response } = healthCodecs();
 * console.log([...response.encode({ status: HEALTH_STATUS.SERVING })]); // [8, 1]
 * ```
 */
export function healthCodecs(): {
  request: Codec<{ service?: string }, { service: string }>;
  response: Codec<{ status?: number }, { status: number }>;
} {
  return {
    request: codec(health.HealthCheckRequestSchema) as Codec<
      { service?: string },
      { service: string }
    >,
    response: codec(health.HealthCheckResponseSchema) as Codec<
      { status?: number },
      { status: number }
    >,
  };
}
