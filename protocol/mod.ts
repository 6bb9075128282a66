/**
 * `@purple/protocol`: what Purple's clients and servers share, declared once — the operations
 * contract ({@linkcode Operations}), the operation table ({@linkcode OPERATIONS}), and, at their
 * own entry points, the typed errors (`./errors`), the input checks (`./validate`), text helpers
 * (`./text`) and the gRPC wire format generated from `proto/purple.proto` (`./wire`).
 *
 * Applications use `@purple/client` (which re-exports the contract and the errors) or
 * `@purple/server`; this package is what both are built on. Its main entry has no dependency, so
 * that the fetch-only `HttpClient` keeps none.
 *
 * @example Every operation a read-only token may call
 * ```ts
 * import { isRead, OPERATION_NAMES } from "@purple/protocol";
 *
 * console.log(OPERATION_NAMES.filter(isRead)); // ["cacheGet", "counterGet", "flagGet", ...]
 * ```
 *
 * @module
 */

export type {
  BatchableName,
  BatchOperation,
  BatchOptions,
  BatchOutcome,
  BatchOutcomes,
  CacheChange,
  CounterAmount,
  CounterChange,
  FlagChange,
  KeyPage,
  KvChange,
  KvEntry,
  KvValue,
  KvWriteOptions,
  ListOptions,
  Operations,
  SetChange,
  WatchChange,
  WatchKeys,
  WatchOptions,
} from "./operations.ts";
export {
  type Access,
  BATCHABLE_NAMES,
  type GrpcRoute,
  type GrpcServiceName,
  type HttpMethod,
  type HttpRoute,
  isRead,
  isStreaming,
  OPERATION_NAMES,
  type OperationName,
  OPERATIONS,
  type OperationSpec,
  type ParamType,
  type ResultType,
  WIRE_OPERATION_NAMES,
  type WireOperationName,
} from "./operation_table.ts";
export { iterateKeys, type KeyService, keysOf, LISTINGS } from "./listing.ts";
