/**
 * The proto sources the gRPC server describes through reflection, embedded so that nothing is
 * read from disk at run time (the server may run from a JSR URL).
 *
 * `PURPLE_PROTO` must stay a verbatim copy of `proto/purple.proto`, the source of truth:
 * `tests/grpc_test.ts` fails when they differ.
 *
 * @module
 */

/** The file name `PURPLE_PROTO` is described under. */
export const PURPLE_PROTO_FILE = "purple.proto";

/** A verbatim copy of `proto/purple.proto`. */
export const PURPLE_PROTO =
  `// The gRPC interface of Purple: a cache with TTL, counters, flags, key/value and sets.
//
// Wire-compatible with the original Go Purple (github.com/purpledb/purple): the same package,
// services, messages and field numbers, so clients generated from either file work with either
// server. Additions to the original are marked "ext", fixes "fix".
//
// Errors are gRPC status codes: NOT_FOUND (a missing or expired cache key, a missing KV key),
// INVALID_ARGUMENT (an empty key or value, a negative TTL, a counter result outside int64, ...),
// RESOURCE_EXHAUSTED (a value over the size limit, 1 MiB by default), UNAVAILABLE (the backend
// cannot be reached) and INTERNAL (anything else; the details stay in the server's log).
//
// To generate a client in another language (protoc, buf), see the README's gRPC section.

syntax = "proto3";

package proto;

// The empty reply of calls that only write.
message Empty {}

// Cache

// A cache entry: the value and its time to live.
message CacheItem {
  // The value; must not be empty.
  string value = 1;
  // Seconds to live; 0 means the default, 5 seconds. Negative is INVALID_ARGUMENT.
  int32 ttl = 2;
}

message CacheGetRequest {
  string key = 1;
}

message CacheGetResponse {
  string value = 1;
}

message CacheSetRequest {
  string key = 1;
  CacheItem item = 2;
}

service Cache {
  // The value, or NOT_FOUND if the key is absent or its TTL has passed (fix: the original
  // answered OK with an empty value).
  rpc CacheGet (CacheGetRequest) returns (CacheGetResponse);
  // Sets the value and TTL, overwriting both.
  rpc CacheSet (CacheSetRequest) returns (Empty);
}

// Counters: signed 64-bit integers; a missing counter counts as 0.

message IncrementCounterRequest {
  string key = 1;
  // What to add; may be negative. A result outside int64 is INVALID_ARGUMENT, never a wrap.
  int64 amount = 2;
}

message GetCounterRequest {
  string key = 1;
}

message GetCounterResponse {
  int64 value = 1;
}

service Counter {
  // The counter's value, 0 if it was never incremented.
  rpc CounterGet (GetCounterRequest) returns (GetCounterResponse);
  // Adds atomically and returns the new value.
  rpc CounterIncrement (IncrementCounterRequest) returns (GetCounterResponse);
  // ext: the earlier release's name of CounterIncrement, which returned nothing.
  rpc IncrementCounter (IncrementCounterRequest) returns (Empty);
  // ext: the earlier release's name of CounterGet.
  rpc GetCounter (GetCounterRequest) returns (GetCounterResponse);
}

// Flags (fix: the original did not register this service).

message FlagGetRequest {
  string key = 1;
}

message FlagSetRequest {
  string key = 1;
  bool value = 2;
}

message FlagResponse {
  bool value = 1;
}

service Flag {
  // The flag's value, false if it was never set.
  rpc FlagGet (FlagGetRequest) returns (FlagResponse);
  rpc FlagSet (FlagSetRequest) returns (Empty);
}

// Key/value: values are arbitrary bytes.

message Location {
  string key = 1;
}

message Value {
  // Must not be empty; at most the size limit (1 MiB by default), else RESOURCE_EXHAUSTED.
  bytes content = 1;
}

message GetResponse {
  Value value = 1;
}

message PutRequest {
  Location location = 1;
  Value value = 2;
}

service KV {
  // The bytes, or NOT_FOUND.
  rpc KVGet (Location) returns (GetResponse);
  // Stores the bytes, overwriting any previous value.
  rpc KVPut (PutRequest) returns (Empty);
  // Deletes the value, or NOT_FOUND if there is none.
  rpc KVDelete (Location) returns (Empty);
}

// Sets of strings. Items come back sorted (by UTF-16 code units).

message GetSetRequest {
  string set = 1;
}

message ModifySetRequest {
  string set = 1;
  string item = 2;
}

message SetResponse {
  repeated string items = 1;
}

service Set {
  // The items; empty if the set does not exist.
  rpc SetGet (GetSetRequest) returns (SetResponse);
  // Adds the item (idempotent) and returns the resulting items.
  rpc SetAdd (ModifySetRequest) returns (SetResponse);
  // Removes the item (idempotent) and returns the resulting items.
  rpc SetRemove (ModifySetRequest) returns (SetResponse);
}
`;

/** The file name `HEALTH_PROTO` is described under (its name in grpc/grpc-proto). */
export const HEALTH_PROTO_FILE = "grpc/health/v1/health.proto";

/** The standard health service, `grpc.health.v1.Health` (comments left out). */
export const HEALTH_PROTO = `syntax = "proto3";

package grpc.health.v1;

message HealthCheckRequest {
  string service = 1;
}

message HealthCheckResponse {
  enum ServingStatus {
    UNKNOWN = 0;
    SERVING = 1;
    NOT_SERVING = 2;
    SERVICE_UNKNOWN = 3;
  }
  ServingStatus status = 1;
}

service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
  rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);
}
`;
