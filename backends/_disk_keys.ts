// The key layout of the disk backend and Deno KV's size limits. Private to this folder.
//
// Every service lives under its own first key part, so the same user key names five
// different things:
//
//   ["cache", key]                     cache head: inline value or chunk reference, expiry
//   ["counter", key]                   bigint
//   ["flag", key]                      boolean
//   ["kv", key]                        KV head: inline bytes or chunk reference
//   ["set", name, sha256hex(item)]     the item (the digest keeps long items within key limits)
//   ["set-guard", name]                the item count of a set, rewritten by every change of the
//                                      set: its versionstamp makes a check-then-add atomic
//   ["chunk", service, key, gen, i]    chunk i of a large cache or KV value of generation gen
//   ["chunk-pending", gen]             a generation no head points at yet (being written) or any
//                                      more (being deleted): { service, key, chunks, createdAt };
//                                      the sweep reclaims those a crash left behind

import { InvalidArgumentError } from "@purple/protocol/errors";
import { utf8Length } from "@purple/protocol/text";
import type { Limits } from "./limits.ts";

/** The services whose values may be split into chunks. */
export type ChunkedService = "cache" | "kv";

/** Deno KV refuses a key longer than this when writing, in encoded bytes. */
export const KV_MAX_KEY_BYTES = 2048;
/** Deno KV refuses a value larger than this, in serialized bytes. */
export const KV_MAX_VALUE_BYTES = 65536;
/** Deno KV refuses an atomic commit whose keys and values add up to more than this. */
export const KV_MAX_COMMIT_BYTES = 819200;
/** Deno KV refuses an atomic commit whose written and checked keys add up to more than this. */
export const KV_MAX_COMMIT_KEY_BYTES = 81920;
/** Deno KV refuses an atomic commit with more mutations than this. */
export const KV_MAX_COMMIT_MUTATIONS = 1000;
/** Deno KV refuses an atomic commit with more checks than this. */
export const KV_MAX_COMMIT_CHECKS = 100;
/** Deno KV reads at most this many keys in one `getMany()`. */
export const KV_MAX_READ_KEYS = 10;

/** A generation id is a UUID: 36 characters. */
const GEN_SAMPLE = "00000000-0000-0000-0000-000000000000";
/** A SHA-256 digest in hex: 64 characters. */
const DIGEST_SAMPLE = "0".repeat(64);

/** The largest set item the disk backend stores (a V8-serialized string of 2 bytes a unit). */
export const MAX_ITEM_BYTES = 32 * 1024 - 32;

/** The head entry of a cache or KV value. */
export function headKey(service: ChunkedService, key: string): Deno.KvKey {
  return [service, key];
}

/** The prefix of the chunks of one generation of a value. */
export function chunkPrefix(service: ChunkedService, key: string, gen: string): Deno.KvKey {
  return ["chunk", service, key, gen];
}

/** The marker of a generation of chunks that no head points at (yet, or any more). */
export function pendingKey(gen: string): Deno.KvKey {
  return ["chunk-pending", gen];
}

/** The entry of a counter. */
export function counterKey(key: string): Deno.KvKey {
  return ["counter", key];
}

/** The entry of a flag. */
export function flagKey(key: string): Deno.KvKey {
  return ["flag", key];
}

/** The prefix of the items of a set. */
export function setPrefix(name: string): Deno.KvKey {
  return ["set", name];
}

/** The entry whose versionstamp changes with every change of a set's items. */
export function setGuardKey(name: string): Deno.KvKey {
  return ["set-guard", name];
}

/** The encoded size of a string's UTF-8 bytes, a NUL taking two (Deno KV escapes it). */
function stringPartBytes(value: string): number {
  let nuls = 0;
  for (let i = value.indexOf("\0"); i >= 0; i = value.indexOf("\0", i + 1)) nuls++;
  return utf8Length(value) + nuls;
}

/**
 * The size of a key as Deno KV encodes it (the FoundationDB tuple layer): a type byte, the
 * bytes with 0x00 escaped as 0x00 0xFF, and a terminating 0x00 for strings and bytes; a type
 * byte and 8 bytes for numbers.
 */
export function keyBytes(key: Deno.KvKey): number {
  let size = 0;
  for (const part of key) {
    if (typeof part === "string") size += 2 + stringPartBytes(part);
    else if (part instanceof Uint8Array) {
      size += 2 + part.length + part.filter((b) => b === 0).length;
    } else if (typeof part === "number") size += 9;
    else if (typeof part === "boolean") size += 1;
    else size += 2 + Math.ceil(part.toString(16).length / 2); // bigint: an upper bound
  }
  return size;
}

/** The longest encoded key the disk backend writes for a user key of `maxKeyBytes` bytes. */
function worstKeyBytes(maxKeyBytes: number): number {
  const key = "\u0000".repeat(maxKeyBytes); // every byte a NUL: the longest encoding
  return Math.max(
    keyBytes([...chunkPrefix("cache", key, GEN_SAMPLE), 0]),
    keyBytes(counterKey(key)),
    keyBytes(flagKey(key)),
    keyBytes(headKey("cache", key)),
    keyBytes([...setPrefix(key), DIGEST_SAMPLE]),
    keyBytes(setGuardKey(key)),
  );
}

/** The largest `maxKeyBytes` whose every key fits Deno KV's key limit. */
export const MAX_KEY_BYTES: number = Math.floor((KV_MAX_KEY_BYTES - worstKeyBytes(0)) / 2);

/**
 * Refuses limits the disk backend cannot hold within Deno KV's limits. Values of any size are
 * chunked, so only the key and item limits matter.
 */
export function assertDiskLimits(limits: Limits): void {
  if (!(limits.maxKeyBytes <= MAX_KEY_BYTES)) {
    throw new InvalidArgumentError(
      `Cannot open the disk backend with maxKeyBytes ${limits.maxKeyBytes}: the largest the disk backend supports is ${MAX_KEY_BYTES}`,
    );
  }
  if (!(limits.maxItemBytes <= MAX_ITEM_BYTES)) {
    throw new InvalidArgumentError(
      `Cannot open the disk backend with maxItemBytes ${limits.maxItemBytes}: the largest the disk backend supports is ${MAX_ITEM_BYTES}`,
    );
  }
}
