/**
 * Test data of `purple export` and `purple import`: a deterministic set of entries of every
 * kind (binary KV values with every byte, values past Deno KV's 64 KiB so that the disk backend
 * chunks them, cache entries with TTLs and without, sets near the item limit, counters at the
 * int64 extremes, flags, unicode and odd keys), and a way to compare what two backends hold.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { CheckedOperations, StoredEntry } from "../backends/mod.ts";
import { DEFAULT_LIMITS } from "../backends/mod.ts";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Keys that are hard to carry: every one appears in every service. */
export const ODD_KEYS: readonly string[] = [
  "ünïcødé ключ 鍵 🔑",
  "with\u0000nul",
  "new\nline\r\ttab",
  "{braces}",
  "}starts-with-brace",
  "glob*?[chars]\\",
  " spaces ",
  "\u2028\u2029",
  "\"quotes\" and 'quotes'",
  "emoji 👩‍👩‍👧‍👦",
  "a".repeat(DEFAULT_LIMITS.maxKeyBytes), // the longest key
  "é".repeat(DEFAULT_LIMITS.maxKeyBytes / 2), // the longest key in two-byte characters
];

/** A value of `length` bytes that holds every byte value (0 to 255) from the 256th byte on. */
export function everyByte(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i + seed * 31) & 0xff;
  return bytes;
}

/** The options of {@linkcode dataset}. */
export interface DatasetOptions {
  /** About how many entries. */
  entries: number;
  /** How many KV values past 64 KiB (the disk backend chunks them). Default 4. */
  largeValues?: number;
  /** How many sets of `maxSetItems` items (the limit, exactly) and one less. Default 1 each. */
  bigSets?: number;
}

/**
 * A deterministic dataset, a generator so that a large one need not be held: one entry of
 * each service in turn, plus the odd keys in every service, the int64 extremes, large values
 * and big sets.
 */
export function* dataset(options: DatasetOptions): Generator<StoredEntry> {
  const { maxSetItems, maxValueBytes } = DEFAULT_LIMITS;
  const large = options.largeValues ?? 4;
  const bigSets = options.bigSets ?? 1;
  // The special ones first.
  for (const [i, key] of ODD_KEYS.entries()) {
    yield { service: "kv", key, value: everyByte(256 + i, i) };
    yield { service: "cache", key, value: `${key} ✓`, ttlMs: 600_000 + i };
    yield { service: "counters", key, value: BigInt(i) - 5n };
    yield { service: "flags", key, value: i % 2 === 0 };
    yield { service: "sets", key, value: [key, "ünï", "\u0000"].sort() };
  }
  yield { service: "counters", key: "int64-min", value: INT64_MIN };
  yield { service: "counters", key: "int64-max", value: INT64_MAX };
  yield { service: "counters", key: "zero", value: 0n };
  yield { service: "cache", key: "no-expiry", value: "forever", ttlMs: null };
  yield { service: "cache", key: "large-cache", value: "ж".repeat(50_000), ttlMs: 900_000 };
  yield { service: "kv", key: "largest", value: everyByte(maxValueBytes, 7) };
  for (let i = 0; i < large; i++) {
    yield { service: "kv", key: `large-${i}`, value: everyByte(65_537 + 70_001 * i, i) };
  }
  for (let i = 0; i < bigSets; i++) {
    for (const size of [maxSetItems, maxSetItems - 1]) {
      const items = Array.from({ length: size }, (_, j) => `item ${j} of ${size} ✓`);
      yield { service: "sets", key: `big-set-${i}-${size}`, value: items.sort() };
    }
  }
  // The bulk: each service in turn.
  for (let i = 0; i < options.entries; i++) {
    const key = `key:${i}`;
    switch (i % 5) {
      case 0:
        yield { service: "kv", key, value: everyByte(1 + (i % 300), i) };
        break;
      case 1:
        yield {
          service: "cache",
          key,
          value: `value ${i} ☕`,
          // Ten minutes at least: the round trip through every backend takes minutes on a
          // loaded machine, and an entry that expires on the way is rightly not exported.
          ttlMs: 600_000 + (i % 3_600_000),
        };
        break;
      case 2:
        yield { service: "counters", key, value: BigInt(i) * 1_000_003n - 50_000_000_000n };
        break;
      case 3:
        yield { service: "flags", key, value: i % 3 === 0 };
        break;
      case 4:
        yield {
          service: "sets",
          key,
          value: Array.from({ length: 1 + (i % 4) }, (_, j) => `m${j}-${i}`).sort(),
        };
    }
  }
}

/** An entry as a comparable text (the value exactly), and its TTL apart. */
export function describeEntry(entry: StoredEntry): { text: string; ttlMs?: number | null } {
  switch (entry.service) {
    case "cache":
      return { text: JSON.stringify([entry.value]), ttlMs: entry.ttlMs };
    case "kv":
      return { text: Buffer.from(entry.value).toString("base64") };
    case "counters":
      return { text: String(entry.value) };
    case "flags":
      return { text: String(entry.value) };
    case "sets":
      return { text: JSON.stringify(entry.value) };
  }
}

/** What a backend holds, by `service key`: each entry's text and TTL. */
export type Snapshot = Map<string, { text: string; ttlMs?: number | null }>;

/** The entries as a snapshot. */
export function snapshotOf(entries: Iterable<StoredEntry>): Snapshot {
  const snapshot: Snapshot = new Map();
  for (const entry of entries) snapshot.set(`${entry.service} ${entry.key}`, describeEntry(entry));
  return snapshot;
}

/** Exports a backend into a snapshot (an entry seen twice, as Redis may give it, once). */
export async function snapshot(ops: CheckedOperations): Promise<Snapshot> {
  const result: Snapshot = new Map();
  for await (const page of ops.exportEntries()) {
    assert.deepEqual(page.unreadable, []);
    for (const entry of page.entries) {
      result.set(`${entry.service} ${entry.key}`, describeEntry(entry));
    }
  }
  return result;
}

/**
 * Asserts that `actual` holds exactly the entries of `expected`, byte for byte, and each
 * cache entry's TTL within `[expected - elapsedMs - 1000, expected + 1000]` (`null` stays
 * `null`).
 */
export function assertSameEntries(actual: Snapshot, expected: Snapshot, elapsedMs: number): void {
  const missing = [...expected.keys()].filter((id) => !actual.has(id));
  const extra = [...actual.keys()].filter((id) => !expected.has(id));
  assert.deepEqual(
    { missing: missing.slice(0, 5), extra: extra.slice(0, 5) },
    { missing: [], extra: [] },
    `${missing.length} missing, ${extra.length} extra`,
  );
  for (const [id, want] of expected) {
    const got = actual.get(id)!;
    if (got.text !== want.text) {
      assert.fail(
        `${JSON.stringify(id)} differs: ${got.text.slice(0, 80)} ≠ ${want.text.slice(0, 80)}`,
      );
    }
    if (want.ttlMs === undefined) continue;
    if (want.ttlMs === null || got.ttlMs === null) {
      assert.equal(got.ttlMs, want.ttlMs, `${JSON.stringify(id)}: the TTL`);
      continue;
    }
    const ttl = got.ttlMs!;
    assert.ok(
      ttl <= want.ttlMs + 1000 && ttl >= want.ttlMs - elapsedMs - 1000,
      `${JSON.stringify(id)}: TTL ${ttl} ms, expected ${want.ttlMs} ms less up to ${elapsedMs} ms`,
    );
  }
}
