/**
 * The messages of `proto/purple.proto` as TypeScript types, with hand-written codecs (one
 * `encode` and one `decode` per message, on the primitives of `_proto.ts`). Proto3 rules: a
 * field at its default ("", 0, false, empty bytes) is not written, a missing one reads as the
 * default, an unknown one is skipped; an embedded message is written when present.
 *
 * `tests/grpc_test.ts` checks these codecs against `@grpc/proto-loader` encodings of the same
 * messages.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import {
  int32Size,
  int64Size,
  lenFieldSize,
  Reader,
  uint32Size,
  utf8Length,
  Writer,
} from "./_proto.ts";

/** A message's codec: what grpc-js calls to serialize and deserialize it. */
export interface Codec<T> {
  /** Encodes a message. */
  encode(message: T): Buffer;
  /** Decodes a message; throws `InvalidArgumentError` when it is malformed. */
  decode(bytes: Uint8Array): T;
}

/**
 * `message Empty {}`: the reply of calls that only write.
 *
 * @example
 * ```ts
 * import type { Empty } from "@purple/client/grpc";
 *
 * const reply: Empty = {};
 * console.log(reply);
 * ```
 */
export type Empty = Record<string, never>;

/**
 * `message CacheItem`: a cache value and its TTL in seconds (0 means the default, 5 s).
 *
 * @example
 * ```ts
 * import type { CacheItem } from "@purple/client/grpc";
 *
 * const item: CacheItem = { value: "a1b2c3", ttl: 60 };
 * console.log(item);
 * ```
 */
export interface CacheItem {
  /** The value (field 1). */
  value: string;
  /** Seconds to live (field 2, int32). */
  ttl: number;
}

/**
 * `message CacheGetRequest`.
 *
 * @example
 * ```ts
 * import type { CacheGetRequest } from "@purple/client/grpc";
 *
 * const request: CacheGetRequest = { key: "session" };
 * console.log(request);
 * ```
 */
export interface CacheGetRequest {
  /** The key (field 1). */
  key: string;
}

/**
 * `message CacheGetResponse`.
 *
 * @example
 * ```ts
 * import type { CacheGetResponse } from "@purple/client/grpc";
 *
 * const response: CacheGetResponse = { value: "a1b2c3" };
 * console.log(response);
 * ```
 */
export interface CacheGetResponse {
  /** The value (field 1). */
  value: string;
}

/**
 * `message CacheSetRequest`.
 *
 * @example
 * ```ts
 * import type { CacheSetRequest } from "@purple/client/grpc";
 *
 * const request: CacheSetRequest = { key: "session", item: { value: "a1b2c3", ttl: 60 } };
 * console.log(request);
 * ```
 */
export interface CacheSetRequest {
  /** The key (field 1). */
  key: string;
  /** The value and TTL (field 2); absent reads as an empty value and the default TTL. */
  item?: CacheItem;
}

/**
 * `message IncrementCounterRequest`.
 *
 * @example
 * ```ts
 * import type { IncrementCounterRequest } from "@purple/client/grpc";
 *
 * const request: IncrementCounterRequest = { key: "visits", amount: 9007199254740993n };
 * console.log(request);
 * ```
 */
export interface IncrementCounterRequest {
  /** The counter's key (field 1). */
  key: string;
  /** What to add (field 2, int64). */
  amount: bigint;
}

/**
 * `message GetCounterRequest`.
 *
 * @example
 * ```ts
 * import type { GetCounterRequest } from "@purple/client/grpc";
 *
 * const request: GetCounterRequest = { key: "visits" };
 * console.log(request);
 * ```
 */
export interface GetCounterRequest {
  /** The counter's key (field 1). */
  key: string;
}

/**
 * `message GetCounterResponse`.
 *
 * @example
 * ```ts
 * import type { GetCounterResponse } from "@purple/client/grpc";
 *
 * const response: GetCounterResponse = { value: 9007199254740993n };
 * console.log(response);
 * ```
 */
export interface GetCounterResponse {
  /** The counter's value (field 1, int64). */
  value: bigint;
}

/**
 * `message FlagGetRequest`.
 *
 * @example
 * ```ts
 * import type { FlagGetRequest } from "@purple/client/grpc";
 *
 * const request: FlagGetRequest = { key: "beta" };
 * console.log(request);
 * ```
 */
export interface FlagGetRequest {
  /** The flag's key (field 1). */
  key: string;
}

/**
 * `message FlagSetRequest`.
 *
 * @example
 * ```ts
 * import type { FlagSetRequest } from "@purple/client/grpc";
 *
 * const request: FlagSetRequest = { key: "beta", value: true };
 * console.log(request);
 * ```
 */
export interface FlagSetRequest {
  /** The flag's key (field 1). */
  key: string;
  /** The new value (field 2). */
  value: boolean;
}

/**
 * `message FlagResponse`.
 *
 * @example
 * ```ts
 * import type { FlagResponse } from "@purple/client/grpc";
 *
 * const response: FlagResponse = { value: true };
 * console.log(response);
 * ```
 */
export interface FlagResponse {
  /** The flag's value (field 1). */
  value: boolean;
}

/**
 * `message Location`: a KV key.
 *
 * @example
 * ```ts
 * import type { Location } from "@purple/client/grpc";
 *
 * const location: Location = { key: "greeting" };
 * console.log(location);
 * ```
 */
export interface Location {
  /** The key (field 1). */
  key: string;
}

/**
 * `message Value`: KV content.
 *
 * @example
 * ```ts
 * import type { Value } from "@purple/client/grpc";
 *
 * const value: Value = { content: new TextEncoder().encode("hello") };
 * console.log(value);
 * ```
 */
export interface Value {
  /** The bytes (field 1). */
  content: Uint8Array;
}

/**
 * `message GetResponse`.
 *
 * @example
 * ```ts
 * import type { GetResponse } from "@purple/client/grpc";
 *
 * const response: GetResponse = { value: { content: new Uint8Array([104, 105]) } };
 * console.log(response);
 * ```
 */
export interface GetResponse {
  /** The value (field 1). */
  value?: Value;
}

/**
 * `message PutRequest`.
 *
 * @example
 * ```ts
 * import type { PutRequest } from "@purple/client/grpc";
 *
 * const request: PutRequest = {
 *   location: { key: "greeting" },
 *   value: { content: new TextEncoder().encode("hello") },
 * };
 * console.log(request);
 * ```
 */
export interface PutRequest {
  /** Where (field 1). */
  location?: Location;
  /** What (field 2). */
  value?: Value;
}

/**
 * `message GetSetRequest`.
 *
 * @example
 * ```ts
 * import type { GetSetRequest } from "@purple/client/grpc";
 *
 * const request: GetSetRequest = { set: "todos" };
 * console.log(request);
 * ```
 */
export interface GetSetRequest {
  /** The set's name (field 1). */
  set: string;
}

/**
 * `message ModifySetRequest`.
 *
 * @example
 * ```ts
 * import type { ModifySetRequest } from "@purple/client/grpc";
 *
 * const request: ModifySetRequest = { set: "todos", item: "shopping" };
 * console.log(request);
 * ```
 */
export interface ModifySetRequest {
  /** The set's name (field 1). */
  set: string;
  /** The item (field 2). */
  item: string;
}

/**
 * `message SetResponse`.
 *
 * @example
 * ```ts
 * import type { SetResponse } from "@purple/client/grpc";
 *
 * const response: SetResponse = { items: ["running", "shopping"] };
 * console.log(response);
 * ```
 */
export interface SetResponse {
  /** The items, sorted (field 1, repeated). */
  items: string[];
}

// Keys of the fields used below: field number << 3 | wire type (0 varint, 2 length-delimited).
const F1_VARINT = 0x08;
const F1_LEN = 0x0a;
const F2_VARINT = 0x10;
const F2_LEN = 0x12;

const stringSize = (length: number) => length === 0 ? 0 : lenFieldSize(length);

/** Reads a message whose only field is a string numbered 1. */
function readOnlyString(reader: Reader): string {
  let value = "";
  while (reader.more()) {
    const key = reader.uint32();
    if (key === F1_LEN) value = reader.string();
    else reader.skip(key);
  }
  return value;
}

/** The codec of messages with one string field numbered 1. */
function stringMessage<K extends string>(name: K): Codec<Record<K, string>> {
  return {
    encode(message) {
      const value = message[name];
      const length = utf8Length(value);
      const writer = new Writer(stringSize(length));
      if (length > 0) {
        writer.uint32(F1_LEN);
        writer.string(value, length);
      }
      return writer.finish();
    },
    decode(bytes) {
      return { [name]: readOnlyString(new Reader(bytes)) } as Record<K, string>;
    },
  };
}

/** `Empty`: encodes to nothing, skips whatever it is given. */
export const EMPTY: Codec<Empty> = {
  encode: () => new Writer(0).finish(),
  decode(bytes) {
    const reader = new Reader(bytes);
    while (reader.more()) reader.skip(reader.uint32());
    return {};
  },
};

/** `CacheGetRequest`. */
export const CACHE_GET_REQUEST: Codec<CacheGetRequest> = stringMessage("key");
/** `CacheGetResponse`. */
export const CACHE_GET_RESPONSE: Codec<CacheGetResponse> = stringMessage("value");
/** `GetCounterRequest`. */
export const GET_COUNTER_REQUEST: Codec<GetCounterRequest> = stringMessage("key");
/** `FlagGetRequest`. */
export const FLAG_GET_REQUEST: Codec<FlagGetRequest> = stringMessage("key");
/** `Location`. */
export const LOCATION: Codec<Location> = stringMessage("key");
/** `GetSetRequest`. */
export const GET_SET_REQUEST: Codec<GetSetRequest> = stringMessage("set");

function cacheItemSize(item: CacheItem, valueLength: number): number {
  return stringSize(valueLength) + (item.ttl === 0 ? 0 : 1 + int32Size(item.ttl));
}

function decodeCacheItem(reader: Reader): CacheItem {
  const item: CacheItem = { value: "", ttl: 0 };
  while (reader.more()) {
    const key = reader.uint32();
    if (key === F1_LEN) item.value = reader.string();
    else if (key === F2_VARINT) item.ttl = reader.int32();
    else reader.skip(key);
  }
  return item;
}

/** `CacheSetRequest`, with its embedded `CacheItem`. */
export const CACHE_SET_REQUEST: Codec<CacheSetRequest> = {
  encode({ key, item }) {
    const keyLength = utf8Length(key);
    const valueLength = item === undefined ? 0 : utf8Length(item.value);
    const itemSize = item === undefined ? -1 : cacheItemSize(item, valueLength);
    const writer = new Writer(stringSize(keyLength) + (itemSize < 0 ? 0 : lenFieldSize(itemSize)));
    if (keyLength > 0) {
      writer.uint32(F1_LEN);
      writer.string(key, keyLength);
    }
    if (item !== undefined) {
      writer.uint32(F2_LEN);
      writer.uint32(itemSize);
      if (valueLength > 0) {
        writer.uint32(F1_LEN);
        writer.string(item.value, valueLength);
      }
      if (item.ttl !== 0) {
        writer.uint32(F2_VARINT);
        writer.int32(item.ttl);
      }
    }
    return writer.finish();
  },
  decode(bytes) {
    const reader = new Reader(bytes);
    const message: CacheSetRequest = { key: "" };
    while (reader.more()) {
      const key = reader.uint32();
      if (key === F1_LEN) message.key = reader.string();
      else if (key === F2_LEN) message.item = decodeCacheItem(reader.message());
      else reader.skip(key);
    }
    return message;
  },
};

/** `IncrementCounterRequest`. */
export const INCREMENT_COUNTER_REQUEST: Codec<IncrementCounterRequest> = {
  encode({ key, amount }) {
    const keyLength = utf8Length(key);
    const writer = new Writer(stringSize(keyLength) + (amount === 0n ? 0 : 1 + int64Size(amount)));
    if (keyLength > 0) {
      writer.uint32(F1_LEN);
      writer.string(key, keyLength);
    }
    if (amount !== 0n) {
      writer.uint32(F2_VARINT);
      writer.int64(amount);
    }
    return writer.finish();
  },
  decode(bytes) {
    const reader = new Reader(bytes);
    const message: IncrementCounterRequest = { key: "", amount: 0n };
    while (reader.more()) {
      const key = reader.uint32();
      if (key === F1_LEN) message.key = reader.string();
      else if (key === F2_VARINT) message.amount = reader.int64();
      else reader.skip(key);
    }
    return message;
  },
};

/** `GetCounterResponse`. */
export const GET_COUNTER_RESPONSE: Codec<GetCounterResponse> = {
  encode({ value }) {
    const writer = new Writer(value === 0n ? 0 : 1 + int64Size(value));
    if (value !== 0n) {
      writer.uint32(F1_VARINT);
      writer.int64(value);
    }
    return writer.finish();
  },
  decode(bytes) {
    const reader = new Reader(bytes);
    let value = 0n;
    while (reader.more()) {
      const key = reader.uint32();
      if (key === F1_VARINT) value = reader.int64();
      else reader.skip(key);
    }
    return { value };
  },
};

/** `FlagSetRequest`. */
export const FLAG_SET_REQUEST: Codec<FlagSetRequest> = {
  encode({ key, value }) {
    const keyLength = utf8Length(key);
    const writer = new Writer(stringSize(keyLength) + (value ? 2 : 0));
    if (keyLength > 0) {
      writer.uint32(F1_LEN);
      writer.string(key, keyLength);
    }
    if (value) {
      writer.uint32(F2_VARINT);
      writer.uint32(1);
    }
    return writer.finish();
  },
  decode(bytes) {
    const reader = new Reader(bytes);
    const message: FlagSetRequest = { key: "", value: false };
    while (reader.more()) {
      const key = reader.uint32();
      if (key === F1_LEN) message.key = reader.string();
      else if (key === F2_VARINT) message.value = reader.bool();
      else reader.skip(key);
    }
    return message;
  },
};

/** `FlagResponse`. */
export const FLAG_RESPONSE: Codec<FlagResponse> = {
  encode({ value }) {
    const writer = new Writer(value ? 2 : 0);
    if (value) {
      writer.uint32(F1_VARINT);
      writer.uint32(1);
    }
    return writer.finish();
  },
  decode(bytes) {
    const reader = new Reader(bytes);
    let value = false;
    while (reader.more()) {
      const key = reader.uint32();
      if (key === F1_VARINT) value = reader.bool();
      else reader.skip(key);
    }
    return { value };
  },
};

const contentSize = (value: Value) =>
  value.content.length === 0 ? 0 : lenFieldSize(value.content.length);

function writeValue(writer: Writer, value: Value, size: number): void {
  writer.uint32(size);
  if (value.content.length > 0) {
    writer.uint32(F1_LEN);
    writer.bytes(value.content);
  }
}

function decodeValue(reader: Reader): Value {
  let content: Uint8Array = new Uint8Array(0);
  while (reader.more()) {
    const key = reader.uint32();
    if (key === F1_LEN) content = reader.bytesView();
    else reader.skip(key);
  }
  return { content };
}

/**
 * `GetResponse`. Decoded content is a view of the received message; the client copies it
 * before handing it out.
 */
export const GET_RESPONSE: Codec<GetResponse> = {
  encode({ value }) {
    const size = value === undefined ? -1 : contentSize(value);
    const writer = new Writer(size < 0 ? 0 : lenFieldSize(size));
    if (value !== undefined) {
      writer.uint32(F1_LEN);
      writeValue(writer, value, size);
    }
    return writer.finish();
  },
  decode(bytes) {
    const reader = new Reader(bytes);
    const message: GetResponse = {};
    while (reader.more()) {
      const key = reader.uint32();
      if (key === F1_LEN) message.value = decodeValue(reader.message());
      else reader.skip(key);
    }
    return message;
  },
};

/** `PutRequest`. Decoded content is a view of the received message (backends copy it). */
export const PUT_REQUEST: Codec<PutRequest> = {
  encode({ location, value }) {
    const keyLength = location === undefined ? 0 : utf8Length(location.key);
    const locationSize = location === undefined ? -1 : stringSize(keyLength);
    const valueSize = value === undefined ? -1 : contentSize(value);
    const writer = new Writer(
      (locationSize < 0 ? 0 : lenFieldSize(locationSize)) +
        (valueSize < 0 ? 0 : lenFieldSize(valueSize)),
    );
    if (location !== undefined) {
      writer.uint32(F1_LEN);
      writer.uint32(locationSize);
      if (keyLength > 0) {
        writer.uint32(F1_LEN);
        writer.string(location.key, keyLength);
      }
    }
    if (value !== undefined) {
      writer.uint32(F2_LEN);
      writeValue(writer, value, valueSize);
    }
    return writer.finish();
  },
  decode(bytes) {
    const reader = new Reader(bytes);
    const message: PutRequest = {};
    while (reader.more()) {
      const key = reader.uint32();
      if (key === F1_LEN) message.location = { key: readOnlyString(reader.message()) };
      else if (key === F2_LEN) message.value = decodeValue(reader.message());
      else reader.skip(key);
    }
    return message;
  },
};

/** `ModifySetRequest`. */
export const MODIFY_SET_REQUEST: Codec<ModifySetRequest> = {
  encode({ set, item }) {
    const setLength = utf8Length(set);
    const itemLength = utf8Length(item);
    const writer = new Writer(stringSize(setLength) + stringSize(itemLength));
    if (setLength > 0) {
      writer.uint32(F1_LEN);
      writer.string(set, setLength);
    }
    if (itemLength > 0) {
      writer.uint32(F2_LEN);
      writer.string(item, itemLength);
    }
    return writer.finish();
  },
  decode(bytes) {
    const reader = new Reader(bytes);
    const message: ModifySetRequest = { set: "", item: "" };
    while (reader.more()) {
      const key = reader.uint32();
      if (key === F1_LEN) message.set = reader.string();
      else if (key === F2_LEN) message.item = reader.string();
      else reader.skip(key);
    }
    return message;
  },
};

/** `SetResponse`: each item is written, even an empty one (repeated fields have no default). */
export const SET_RESPONSE: Codec<SetResponse> = {
  encode({ items }) {
    const lengths = items.map(utf8Length);
    let size = 0;
    for (const length of lengths) size += 1 + uint32Size(length) + length;
    const writer = new Writer(size);
    for (let i = 0; i < items.length; i++) {
      writer.uint32(F1_LEN);
      writer.string(items[i], lengths[i]);
    }
    return writer.finish();
  },
  decode(bytes) {
    const reader = new Reader(bytes);
    const items: string[] = [];
    while (reader.more()) {
      const key = reader.uint32();
      if (key === F1_LEN) items.push(reader.string());
      else reader.skip(key);
    }
    return { items };
  },
};
