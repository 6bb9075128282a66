/**
 * The services of `proto/purple.proto` as grpc-js service definitions, built on the
 * hand-written codecs: the server registers them, `GrpcClient` calls through them.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import {
  CACHE_GET_REQUEST,
  CACHE_GET_RESPONSE,
  CACHE_SET_REQUEST,
  type CacheGetRequest,
  type CacheGetResponse,
  type CacheSetRequest,
  type Codec,
  EMPTY,
  type Empty,
  FLAG_GET_REQUEST,
  FLAG_RESPONSE,
  FLAG_SET_REQUEST,
  type FlagGetRequest,
  type FlagResponse,
  type FlagSetRequest,
  GET_COUNTER_REQUEST,
  GET_COUNTER_RESPONSE,
  GET_RESPONSE,
  GET_SET_REQUEST,
  type GetCounterRequest,
  type GetCounterResponse,
  type GetResponse,
  type GetSetRequest,
  INCREMENT_COUNTER_REQUEST,
  type IncrementCounterRequest,
  LOCATION,
  type Location,
  MODIFY_SET_REQUEST,
  type ModifySetRequest,
  PUT_REQUEST,
  type PutRequest,
  SET_RESPONSE,
  type SetResponse,
} from "./_grpc_messages.ts";

/**
 * One unary method: its path and codecs, in the shape of a grpc-js `MethodDefinition` (it can
 * be passed wherever grpc-js takes one).
 *
 * @example
 * ```ts
 * import type { CacheGetRequest, CacheGetResponse, MethodDefinition } from "@purple/client/grpc";
 * import { GRPC_SERVICES } from "@purple/client/grpc";
 *
 * const method: MethodDefinition<CacheGetRequest, CacheGetResponse> = GRPC_SERVICES.Cache.CacheGet;
 * console.log(method.path); // "/proto.Cache/CacheGet"
 * console.log(method.requestDeserialize(method.requestSerialize({ key: "session" }))); // { key: "session" }
 * ```
 */
export interface MethodDefinition<Request, Response> {
  /** `/<package>.<Service>/<Method>`, such as `/proto.Cache/CacheGet`. */
  readonly path: string;
  /** Always false: every method of Purple is unary. */
  readonly requestStream: false;
  /** Always false: every method of Purple is unary. */
  readonly responseStream: false;
  /** Encodes a request. */
  readonly requestSerialize: (message: Request) => Buffer;
  /** Decodes a request; throws `InvalidArgumentError` when it is malformed. */
  readonly requestDeserialize: (bytes: Uint8Array) => Request;
  /** Encodes a response. */
  readonly responseSerialize: (message: Response) => Buffer;
  /** Decodes a response; throws `InvalidArgumentError` when it is malformed. */
  readonly responseDeserialize: (bytes: Uint8Array) => Response;
}

/**
 * The protobuf package of Purple's services.
 *
 * @example
 * ```ts
 * import { PROTO_PACKAGE } from "@purple/client/grpc";
 *
 * console.log(PROTO_PACKAGE); // "proto"
 * ```
 */
export const PROTO_PACKAGE = "proto";

/**
 * The services of `proto/purple.proto`, method by method, with the TypeScript types of their
 * request and response messages. Each service is a grpc-js `ServiceDefinition`.
 *
 * @example
 * ```ts
 * import { GRPC_SERVICES, type GrpcServices } from "@purple/client/grpc";
 *
 * const services: GrpcServices = GRPC_SERVICES;
 * console.log(Object.keys(services)); // ["Cache", "Counter", "Flag", "KV", "Set"]
 * ```
 */
export interface GrpcServices {
  /** `proto.Cache`. */
  readonly Cache: {
    readonly CacheGet: MethodDefinition<CacheGetRequest, CacheGetResponse>;
    readonly CacheSet: MethodDefinition<CacheSetRequest, Empty>;
  };
  /** `proto.Counter`, with the earlier release's `IncrementCounter` and `GetCounter`. */
  readonly Counter: {
    readonly CounterGet: MethodDefinition<GetCounterRequest, GetCounterResponse>;
    readonly CounterIncrement: MethodDefinition<IncrementCounterRequest, GetCounterResponse>;
    readonly IncrementCounter: MethodDefinition<IncrementCounterRequest, Empty>;
    readonly GetCounter: MethodDefinition<GetCounterRequest, GetCounterResponse>;
  };
  /** `proto.Flag`. */
  readonly Flag: {
    readonly FlagGet: MethodDefinition<FlagGetRequest, FlagResponse>;
    readonly FlagSet: MethodDefinition<FlagSetRequest, Empty>;
  };
  /** `proto.KV`. */
  readonly KV: {
    readonly KVGet: MethodDefinition<Location, GetResponse>;
    readonly KVPut: MethodDefinition<PutRequest, Empty>;
    readonly KVDelete: MethodDefinition<Location, Empty>;
  };
  /** `proto.Set`. */
  readonly Set: {
    readonly SetGet: MethodDefinition<GetSetRequest, SetResponse>;
    readonly SetAdd: MethodDefinition<ModifySetRequest, SetResponse>;
    readonly SetRemove: MethodDefinition<ModifySetRequest, SetResponse>;
  };
}

function unary<Request, Response>(
  service: string,
  method: string,
  request: Codec<Request>,
  response: Codec<Response>,
): MethodDefinition<Request, Response> {
  return {
    path: `/${PROTO_PACKAGE}.${service}/${method}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: request.encode,
    requestDeserialize: request.decode,
    responseSerialize: response.encode,
    responseDeserialize: response.decode,
  };
}

/**
 * Purple's services as grpc-js service definitions (`server.addService(GRPC_SERVICES.Cache,
 * ...)`), serializing with hand-written codecs: int64 fields are `bigint`, bytes fields
 * `Uint8Array`.
 *
 * @example Encoding a request by hand
 * ```ts
 * import { GRPC_SERVICES } from "@purple/client/grpc";
 *
 * const { path, requestSerialize, requestDeserialize } = GRPC_SERVICES.Counter.CounterIncrement;
 * const bytes = requestSerialize({ key: "hits", amount: 9007199254740993n });
 * console.log(path); // "/proto.Counter/CounterIncrement"
 * console.log(requestDeserialize(bytes).amount); // 9007199254740993n
 * ```
 */
export const GRPC_SERVICES: GrpcServices = Object.freeze({
  Cache: Object.freeze({
    CacheGet: unary("Cache", "CacheGet", CACHE_GET_REQUEST, CACHE_GET_RESPONSE),
    CacheSet: unary("Cache", "CacheSet", CACHE_SET_REQUEST, EMPTY),
  }),
  Counter: Object.freeze({
    CounterGet: unary("Counter", "CounterGet", GET_COUNTER_REQUEST, GET_COUNTER_RESPONSE),
    CounterIncrement: unary(
      "Counter",
      "CounterIncrement",
      INCREMENT_COUNTER_REQUEST,
      GET_COUNTER_RESPONSE,
    ),
    IncrementCounter: unary("Counter", "IncrementCounter", INCREMENT_COUNTER_REQUEST, EMPTY),
    GetCounter: unary("Counter", "GetCounter", GET_COUNTER_REQUEST, GET_COUNTER_RESPONSE),
  }),
  Flag: Object.freeze({
    FlagGet: unary("Flag", "FlagGet", FLAG_GET_REQUEST, FLAG_RESPONSE),
    FlagSet: unary("Flag", "FlagSet", FLAG_SET_REQUEST, EMPTY),
  }),
  KV: Object.freeze({
    KVGet: unary("KV", "KVGet", LOCATION, GET_RESPONSE),
    KVPut: unary("KV", "KVPut", PUT_REQUEST, EMPTY),
    KVDelete: unary("KV", "KVDelete", LOCATION, EMPTY),
  }),
  Set: Object.freeze({
    SetGet: unary("Set", "SetGet", GET_SET_REQUEST, SET_RESPONSE),
    SetAdd: unary("Set", "SetAdd", MODIFY_SET_REQUEST, SET_RESPONSE),
    SetRemove: unary("Set", "SetRemove", MODIFY_SET_REQUEST, SET_RESPONSE),
  }),
});
