import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { BatchOperation, Operations } from "@purple/client";
import {
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
  UnavailableError,
  ValueTooLargeError,
} from "@purple/client/errors";
import {
  checked,
  DEFAULT_LIMITS,
  type Limits,
  MemoryBackend,
  openBackend,
} from "../backends/mod.ts";
import {
  DISK_FILE_NAME,
  DISK_MAX_ITEM_BYTES,
  DISK_MAX_KEY_BYTES,
  type DiskBackend,
  type DiskSweepOptions,
  openDiskBackend,
} from "../backends/disk.ts";
import { KeyedBatcher } from "../backends/_disk_batch.ts";
import { headModel, writeChunks } from "../backends/_disk_blob.ts";
import { GroupCommitter } from "../backends/_disk_commits.ts";
import { PointReader } from "../backends/_disk_reads.ts";
import { conformance } from "./conformance.ts";
import { balances, casLoops, transfers } from "./_disk_contention.ts";

const INT64_MAX = 2n ** 63n - 1n;
const MiB = 1024 * 1024;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

conformance("disk", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "purple_disk_" });
  let ops = await openBackend({ kind: "disk", dataDir });
  return {
    ops,
    listing: "sorted",
    reopen: async () => {
      await ops.close();
      ops = await openBackend({ kind: "disk", dataDir });
      return ops;
    },
    close: async () => {
      await ops.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
});

interface Disk {
  dataDir: string;
  path: string;
  backend: DiskBackend;
  ops: Operations;
  /** A second handle on the same file, to look at the raw entries. */
  raw: Deno.Kv;
}

async function withDisk(
  fn: (disk: Disk) => Promise<void>,
  limits: Limits = DEFAULT_LIMITS,
  sweep: DiskSweepOptions = {},
): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "purple_disk_" });
  const backend = await openDiskBackend({ dataDir, limits, ...sweep });
  const path = `${dataDir}/${DISK_FILE_NAME}`;
  const raw = await Deno.openKv(path);
  try {
    await fn({ dataDir, path, backend, ops: checked(backend, limits), raw });
  } finally {
    raw.close();
    await backend.close();
    await Deno.remove(dataDir, { recursive: true });
  }
}

async function rawKeys(raw: Deno.Kv, prefix: Deno.KvKey): Promise<Deno.KvKey[]> {
  const keys: Deno.KvKey[] = [];
  for await (const entry of raw.list({ prefix })) keys.push(entry.key);
  return keys;
}

Deno.test("openDiskBackend() creates the data directory and its purple.sqlite3", async () => {
  const parent = await Deno.makeTempDir({ prefix: "purple_disk_" });
  try {
    const dataDir = `${parent}/nested/data`;
    const backend = await openDiskBackend({ dataDir, limits: DEFAULT_LIMITS });
    await backend.flagSet("f", true);
    await backend.close();
    assert.ok((await Deno.stat(`${dataDir}/${DISK_FILE_NAME}`)).isFile);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("DiskBackend round-trips a 1 MiB KV value holding every byte value", async () => {
  await withDisk(async ({ ops, raw }) => {
    const big = new Uint8Array(MiB).map((_, i) => (i * 7 + (i >> 8)) % 256);
    assert.equal(new Set(big).size, 256);
    await ops.kvPut("big", big);
    assert.deepEqual(await ops.kvGet("big"), big);
    assert.equal((await rawKeys(raw, ["chunk", "kv", "big"])).length, 16);
  });
});

Deno.test("DiskBackend leaves no chunk behind after overwrites and a delete", async () => {
  await withDisk(async ({ ops, raw }) => {
    const first = new Uint8Array(MiB).fill(1);
    const second = new Uint8Array(MiB - 3).fill(2);
    await ops.kvPut("k", first);
    await ops.kvPut("k", "small");
    assert.equal(new TextDecoder().decode(await ops.kvGet("k")), "small");
    assert.deepEqual(await rawKeys(raw, ["chunk"]), []);
    await ops.kvPut("k", first);
    await ops.kvPut("k", second);
    assert.deepEqual(await ops.kvGet("k"), second);
    const chunks = await rawKeys(raw, ["chunk"]);
    assert.equal(chunks.length, 16);
    assert.equal(new Set(chunks.map((key) => key[3])).size, 1, "one generation only");
    await ops.kvDelete("k");
    await assert.rejects(ops.kvGet("k"), NotFoundError);
    await assert.rejects(ops.kvDelete("k"), NotFoundError);
    assert.deepEqual(await rawKeys(raw, ["chunk"]), []);
    assert.deepEqual(await rawKeys(raw, ["kv"]), []);
  });
});

Deno.test("DiskBackend chunks a 1 MiB cache value and cleans up when it is overwritten", async () => {
  await withDisk(async ({ ops, raw }) => {
    const big = "ж€😀a".repeat((MiB - 6) / 10) + "012345"; // 2 + 3 + 4 + 1 bytes a round
    assert.equal(new TextEncoder().encode(big).length, MiB);
    await ops.cacheSet("c", big, 60);
    assert.equal(await ops.cacheGet("c"), big);
    assert.equal((await rawKeys(raw, ["chunk", "cache", "c"])).length, 16);
    await ops.cacheSet("c", "small", 60);
    assert.equal(await ops.cacheGet("c"), "small");
    assert.deepEqual(await rawKeys(raw, ["chunk"]), []);
  });
});

Deno.test("DiskBackend counts 500 concurrent increments exactly", async () => {
  await withDisk(async ({ ops }) => {
    const results = await Promise.all(
      Array.from({ length: 500 }, () => ops.counterIncrement("n", 1)),
    );
    assert.deepEqual(
      results.map(Number).sort((a, b) => a - b),
      [...Array(500).keys()].map((i) => i + 1),
    );
    assert.equal(await ops.counterGet("n"), 500n);
  });
});

Deno.test("two DiskBackends on one file count 200 concurrent increments each exactly", async () => {
  await withDisk(async ({ dataDir, ops }) => {
    const other = checked(
      await openDiskBackend({ dataDir, limits: DEFAULT_LIMITS }),
      DEFAULT_LIMITS,
    );
    try {
      const increments: Promise<bigint>[] = [];
      for (let i = 0; i < 200; i++) {
        increments.push(ops.counterIncrement("shared", 1), other.counterIncrement("shared", 1));
      }
      const results = await Promise.all(increments);
      // Every increment is atomic across both: together they saw each value 1..400 once.
      assert.deepEqual(
        results.map(Number).sort((a, b) => a - b),
        [...Array(400).keys()].map((i) => i + 1),
      );
      assert.equal(await ops.counterGet("shared"), 400n);
      assert.equal(await other.counterGet("shared"), 400n);
      // And a later increment on either one starts from what the other wrote.
      assert.equal(await ops.counterIncrement("shared", 1), 401n);
      assert.equal(await other.counterIncrement("shared", 1), 402n);
    } finally {
      await other.close();
    }
  });
});

Deno.test("DiskBackend refuses only the increment that would leave int64 in a batch", async () => {
  await withDisk(async ({ ops }) => {
    await ops.counterIncrement("edge", INT64_MAX - 10n);
    const settled = await Promise.allSettled([
      ops.counterIncrement("edge", 5),
      ops.counterIncrement("edge", 100),
      ops.counterIncrement("edge", 5),
      ops.counterIncrement("edge", 1),
    ]);
    assert.deepEqual(settled.map((s) => s.status === "fulfilled" ? s.value : s.reason.name), [
      INT64_MAX - 5n,
      "InvalidArgumentError",
      INT64_MAX,
      "InvalidArgumentError",
    ]);
    assert.equal(await ops.counterGet("edge"), INT64_MAX);
  });
});

Deno.test("DiskBackend readers never see a mixed or truncated value during overwrites", async () => {
  await withDisk(async ({ dataDir, ops, raw }) => {
    const other = checked(
      await openDiskBackend({ dataDir, limits: DEFAULT_LIMITS }),
      DEFAULT_LIMITS,
    );
    // Version v is (MiB - v * 999) bytes, all equal to v: any mix or cut is visible.
    const version = (v: number) => new Uint8Array(v % 5 === 0 ? 100 : MiB - v * 999).fill(v);
    const check = (bytes: Uint8Array) => {
      assert.ok(bytes.length > 0, "an empty value");
      const v = bytes[0];
      assert.equal(bytes.length, version(v).length, `length of version ${v}`);
      assert.ok(bytes.every((b) => b === v), `bytes of version ${v}`);
    };
    await ops.kvPut("hot", version(1));
    let writing = true;
    let reads = 0;
    const writer = async (from: number) => {
      for (let v = from; v < from + 20; v++) await ops.kvPut("hot", version(v));
    };
    const reader = async (from: Operations) => {
      while (writing) {
        check(await from.kvGet("hot"));
        reads++;
      }
    };
    const writers = Promise.all([writer(2), writer(100)]).finally(() => writing = false);
    try {
      await Promise.all([writers, reader(ops), reader(ops), reader(other), reader(other)]);
    } finally {
      await other.close();
    }
    assert.ok(reads > 10, `only ${reads} reads happened during the overwrites`);
    const last = await ops.kvGet("hot");
    check(last);
    const chunks = await rawKeys(raw, ["chunk"]);
    assert.equal(chunks.length, last.length > 65536 ? Math.ceil(last.length / 65536) : 0);
    assert.ok(new Set(chunks.map((key) => key[3])).size <= 1, "one generation only");
  });
});

Deno.test("DiskBackend refuses a value whose chunks are gone at each of 100 reads in a row (read, export, watch)", async () => {
  await withDisk(async ({ backend, ops, raw }) => {
    // Heads pointing at chunks that are not there: what a reader finds when an overwrite
    // removes the chunks between its read of the head and its read of the chunks, every time.
    const ref = { gen: crypto.randomUUID(), chunks: 2, size: 100_000 };
    await raw.set(["kv", "torn"], ref);
    await raw.set(["cache", "torn"], { ...ref, expiresAt: Date.now() + 60_000 });
    const overwritten = (action: string, service: string) => (error: unknown) =>
      error instanceof UnavailableError &&
      error.message ===
        `Cannot ${action} ${service} key 'torn': it was overwritten during 100 reads in a row`;
    await assert.rejects(ops.kvGet("torn"), overwritten("read", "kv"));
    await assert.rejects(ops.cacheGet("torn"), overwritten("read", "cache"));
    const exportAll = async () => {
      for await (const _ of backend.exportEntries()) { /* Read every page. */ }
    };
    await assert.rejects(exportAll(), overwritten("export", "cache"));
    await raw.delete(["cache", "torn"]);
    await assert.rejects(exportAll(), overwritten("export", "kv"));
    const watch = backend.watch([{ service: "kv", key: "torn" }]);
    await assert.rejects(watch.next(), overwritten("watch", "kv"));
  });
});

Deno.test("DiskBackend cacheGet() is NotFound right after the TTL though Deno KV still holds it", async () => {
  await withDisk(async ({ ops, raw }) => {
    await ops.cacheSet("ttl", "short-lived", 1);
    assert.equal(await ops.cacheGet("ttl"), "short-lived");
    await sleep(1_000);
    await assert.rejects(ops.cacheGet("ttl"), NotFoundError);
    assert.notEqual((await raw.get(["cache", "ttl"])).value, null, "Deno KV expires lazily");
    // An entry whose own expiry has passed is never served, whatever Deno KV keeps.
    await raw.set(["cache", "stale"], { value: "stale", expiresAt: Date.now() - 1 });
    await assert.rejects(ops.cacheGet("stale"), NotFoundError);
  });
});

Deno.test("openDiskBackend() refuses a key limit Deno KV keys cannot hold, naming the largest", async () => {
  const parent = await Deno.makeTempDir({ prefix: "purple_disk_" });
  const dataDir = `${parent}/never-created`;
  const limits = { ...DEFAULT_LIMITS, maxKeyBytes: DISK_MAX_KEY_BYTES + 1 };
  await assert.rejects(openDiskBackend({ dataDir, limits }), (error: Error) => {
    assert.ok(error instanceof InvalidArgumentError);
    assert.match(
      error.message,
      new RegExp(`largest the disk backend supports is ${DISK_MAX_KEY_BYTES}`),
    );
    return true;
  });
  await assert.rejects(
    openBackend({ kind: "disk", dataDir, limits: { maxKeyBytes: 4096 } }),
    InvalidArgumentError,
  );
  await assert.rejects(
    openDiskBackend({
      dataDir,
      limits: { ...DEFAULT_LIMITS, maxItemBytes: DISK_MAX_ITEM_BYTES + 1 },
    }),
    new RegExp(`maxItemBytes ${DISK_MAX_ITEM_BYTES + 1}: the largest the disk backend supports is`),
  );
  await assert.rejects(Deno.stat(dataDir), Deno.errors.NotFound);
  await Deno.remove(parent, { recursive: true });
});

Deno.test("DiskBackend stores keys of all NULs at its largest key limit in every service", async () => {
  const limits = { ...DEFAULT_LIMITS, maxKeyBytes: DISK_MAX_KEY_BYTES, maxValueBytes: 8 * MiB };
  await withDisk(async ({ ops, raw }) => {
    const key = "\u0000".repeat(DISK_MAX_KEY_BYTES); // encoded as two bytes each
    const item = "\u0000".repeat(DEFAULT_LIMITS.maxItemBytes);
    const big = "x".repeat(200_000);
    await ops.cacheSet(key, big, 60);
    await ops.counterIncrement(key, 1);
    await ops.flagSet(key, true);
    await ops.kvPut(key, new Uint8Array(300_000).fill(7));
    await ops.setAdd(key, item);
    assert.equal(await ops.cacheGet(key), big);
    assert.equal(await ops.counterGet(key), 1n);
    assert.equal(await ops.flagGet(key), true);
    assert.deepEqual(await ops.kvGet(key), new Uint8Array(300_000).fill(7));
    assert.deepEqual(await ops.setGet(key), [item]);
    await ops.kvDelete(key);
    assert.deepEqual(await rawKeys(raw, ["chunk", "kv"]), []);
    // 128 chunks with 2 KiB keys: more deletes than one commit holds.
    const huge = new Uint8Array(8 * MiB).map((_, i) => i % 253);
    await ops.kvPut(key, huge);
    assert.deepEqual(await ops.kvGet(key), huge);
    assert.equal((await rawKeys(raw, ["chunk", "kv"])).length, 128);
    await ops.kvPut(key, "small");
    assert.deepEqual(await rawKeys(raw, ["chunk", "kv"]), []);
  }, limits);
});

Deno.test("DiskBackend stores set items at its largest item limit", async () => {
  const limits = { ...DEFAULT_LIMITS, maxItemBytes: DISK_MAX_ITEM_BYTES };
  await withDisk(async ({ ops }) => {
    // One two-byte character makes V8 store the whole string at two bytes a unit.
    const item = "ж" + "a".repeat(DISK_MAX_ITEM_BYTES - 2);
    assert.deepEqual(await ops.setAdd("s", item), [item]);
    assert.deepEqual(await ops.setAdd("s", "x"), ["x", item]);
  }, limits);
});

Deno.test("openDiskBackend() without Deno KV says to add --unstable-kv", async () => {
  const descriptor = Object.getOwnPropertyDescriptor(Deno, "openKv")!;
  Object.defineProperty(Deno, "openKv", { value: undefined, configurable: true });
  try {
    await assert.rejects(
      openDiskBackend({ dataDir: "./never-created", limits: DEFAULT_LIMITS }),
      /--unstable-kv or add "unstable": \["kv"\]/,
    );
  } finally {
    Object.defineProperty(Deno, "openKv", descriptor);
  }
});

Deno.test("a DiskBackend in another process shares counters atomically", async () => {
  await withDisk(async ({ dataDir, ops }) => {
    // The child increments before, during and after the parent's 1000 increments (it stops one
    // increment after the parent sets the flag "stop"), so the two windows overlap by design,
    // not by timing luck; every result of both processes must still be distinct and gapless.
    const child = `
      import { DEFAULT_LIMITS } from "${new URL("../backends/mod.ts", import.meta.url)}";
      import { openDiskBackend } from "${new URL("../backends/disk.ts", import.meta.url)}";
      const backend = await openDiskBackend({ dataDir: ${
      JSON.stringify(dataDir)
    }, limits: DEFAULT_LIMITS });
      const results = [String(await backend.counterIncrement("p", 1n))];
      console.log("ready");
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (!(await backend.flagGet("stop"))) {
          results.push(String(await backend.counterIncrement("p", 1n)));
        }
      }));
      results.push(String(await backend.counterIncrement("p", 1n)));
      await backend.close();
      console.log(JSON.stringify(results));
    `;
    const config = new URL("../deno.json", import.meta.url).pathname;
    const process = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", config, "--unstable-kv", child],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = process.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
      new TransformStream<string, string>(
        {
          buffer: "",
          transform(chunk, controller) {
            const parts = (this.buffer + chunk).split("\n");
            this.buffer = parts.pop()!;
            parts.forEach((line) => controller.enqueue(line));
          },
        } as Transformer<string, string> & { buffer: string },
      ),
    ).getReader();
    assert.equal((await lines.read()).value, "ready");
    const mine: bigint[] = [];
    await Promise.all(Array.from({ length: 10 }, async () => {
      for (let i = 0; i < 100; i++) mine.push(await ops.counterIncrement("p", 1));
    }));
    await ops.flagSet("stop", true);
    const theirs = (JSON.parse((await lines.read()).value!) as string[]).map(BigInt);
    lines.releaseLock();
    assert.ok((await process.status).success, "the child process failed");
    const all = [...mine, ...theirs].map(Number).sort((a, b) => a - b);
    assert.deepEqual(all, [...Array(all.length).keys()].map((i) => i + 1));
    assert.equal(await ops.counterGet("p"), BigInt(all.length));
    const [low, high] = [theirs[0], theirs[theirs.length - 1]];
    assert.ok(mine.every((n) => n > low && n < high), "the child ran before and after the parent");
  });
});

Deno.test("DiskBackend commits 200 concurrent puts of one key in a few commits, answering each in order", async () => {
  await withDisk(async ({ backend, ops }) => {
    const before = backend.commitStats.commits;
    await Promise.all(Array.from({ length: 200 }, (_, i) => ops.kvPut("hot", `v${i}`)));
    assert.equal(new TextDecoder().decode(await ops.kvGet("hot")), "v199");
    assert.ok(backend.commitStats.commits - before <= 3, `${backend.commitStats.commits} commits`);
    // In one batch: put, delete, delete (refused alone: nothing to delete), put, delete.
    const settled = await Promise.allSettled([
      ops.kvPut("k", "a"),
      ops.kvDelete("k"),
      ops.kvDelete("k"),
      ops.kvPut("k", "b"),
      ops.kvDelete("k"),
    ]);
    assert.deepEqual(settled.map((s) => s.status === "fulfilled" ? "ok" : s.reason.name), [
      "ok",
      "ok",
      "NotFoundError",
      "ok",
      "ok",
    ]);
    await assert.rejects(ops.kvGet("k"), NotFoundError);
  });
});

Deno.test("DiskBackend keeps a set's size limit exact for concurrent adds in one batch", async () => {
  const limits = { ...DEFAULT_LIMITS, maxSetItems: 10 };
  await withDisk(async ({ ops }) => {
    const settled = await Promise.allSettled(
      Array.from({ length: 25 }, (_, i) => ops.setAdd("s", `item-${String(i).padStart(2, "0")}`)),
    );
    const added = settled.filter((s) => s.status === "fulfilled");
    assert.equal(added.length, 10);
    assert.ok(
      settled.every((s) => s.status === "fulfilled" || s.reason instanceof ValueTooLargeError),
    );
    // Each caller saw the set right after its own add.
    assert.deepEqual(
      added.map((s) => (s as PromiseFulfilledResult<string[]>).value.length).sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    const items = await ops.setGet("s");
    assert.equal(items.length, 10);
    // A remove makes room for exactly one more, and an add of an item there is no change.
    await ops.setRemove("s", items[0]);
    const again = await Promise.allSettled([
      ops.setAdd("s", items[1]),
      ops.setAdd("s", "new-1"),
      ops.setAdd("s", "new-2"),
    ]);
    // (Concurrent calls arrive in no set order: one of the two new items gets the room.)
    assert.equal(again[0].status, "fulfilled");
    assert.deepEqual(again.slice(1).map((s) => s.status).sort(), ["fulfilled", "rejected"]);
  }, limits);
});

Deno.test("two DiskBackends on one file keep a set's size limit exact", async () => {
  const limits = { ...DEFAULT_LIMITS, maxSetItems: 50 };
  await withDisk(async ({ dataDir, ops }) => {
    const other = checked(await openDiskBackend({ dataDir, limits }), limits);
    try {
      const adds: Promise<string[]>[] = [];
      for (let i = 0; i < 40; i++) adds.push(ops.setAdd("s", `a${i}`), other.setAdd("s", `b${i}`));
      const settled = await Promise.allSettled(adds);
      assert.equal(settled.filter((s) => s.status === "fulfilled").length, 50);
      assert.equal((await ops.setGet("s")).length, 50);
      assert.deepEqual(await other.setGet("s"), await ops.setGet("s"));
      // Each one's remembered items follow the other's changes.
      await other.setRemove("s", (await other.setGet("s"))[0]);
      assert.equal((await ops.setAdd("s", "last")).length, 50);
      await assert.rejects(other.setAdd("s", "one-too-many"), ValueTooLargeError);
    } finally {
      await other.close();
    }
  }, limits);
});

Deno.test("a DiskBackend in another process keeps sets exact and KV values whole", async () => {
  const limits = { ...DEFAULT_LIMITS, maxSetItems: 300 };
  await withDisk(async ({ dataDir, ops, raw }) => {
    // Both processes add 250 items each to one set of at most 300, and overwrite one KV key
    // with large (chunked) and small values in turn.
    const child = `
      import { DEFAULT_LIMITS, checked } from "${new URL("../backends/mod.ts", import.meta.url)}";
      import { openDiskBackend } from "${new URL("../backends/disk.ts", import.meta.url)}";
      const limits = { ...DEFAULT_LIMITS, maxSetItems: 300 };
      const ops = checked(await openDiskBackend({ dataDir: ${
      JSON.stringify(dataDir)
    }, limits }), limits);
      let added = 0;
      await Promise.all([
        ...Array.from({ length: 250 }, (_, i) =>
          ops.setAdd("shared", "child-" + i).then(() => added++, () => {})),
        (async () => {
          for (let i = 0; i < 20; i++) {
            await ops.kvPut("hot", new Uint8Array(i % 2 ? 100 : 200_000).fill(1));
          }
        })(),
      ]);
      await ops.close();
      console.log(JSON.stringify({ added }));
    `;
    const config = new URL("../deno.json", import.meta.url).pathname;
    const process = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", config, "--unstable-kv", child],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let mine = 0;
    await Promise.all([
      ...Array.from(
        { length: 250 },
        (_, i) =>
          ops.setAdd("shared", `parent-${i}`).then(() => mine++, (error) => {
            assert.ok(error instanceof ValueTooLargeError, String(error));
          }),
      ),
      (async () => {
        for (let i = 0; i < 20; i++) {
          await ops.kvPut("hot", new Uint8Array(i % 2 ? 150_000 : 50).fill(2));
        }
      })(),
    ]);
    const output = await process.output();
    assert.ok(output.success, "the child process failed");
    const { added } = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.equal(mine + added, 300, `parent ${mine} + child ${added} adds accepted`);
    assert.equal((await ops.setGet("shared")).length, 300);
    const hot = await ops.kvGet("hot");
    assert.ok(hot.every((byte) => byte === hot[0]), "one whole value");
    // Only the chunks of the value the head points at are left.
    const chunks = await rawKeys(raw, ["chunk"]);
    const head = (await raw.get<{ gen?: string }>(["kv", "hot"])).value;
    assert.deepEqual(new Set(chunks.map((key) => key[3])).size, head?.gen ? 1 : 0);
    assert.deepEqual(await rawKeys(raw, ["chunk-pending"]), []);
  }, limits);
});

Deno.test("DiskBackend: Deno KV removes expired cache entries and their chunks from the file", async () => {
  // Deno KV's write thread deletes every expired entry when the database opens, then again at
  // the earliest expiry it knows of (or 60 s later when it knows none), each time looking for
  // the next earliest. Short-lived entries are gone from the file, not only hidden. The rows
  // are counted with SQLite itself: opening the file with Deno KV would collect them.
  const dataDir = await Deno.makeTempDir({ prefix: "purple_disk_" });
  const path = `${dataDir}/${DISK_FILE_NAME}`;
  const rows = () => {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      return (db.prepare("SELECT count(*) AS n FROM kv").get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  const eventually = async (expected: number) => {
    for (const start = Date.now(); rows() !== expected && Date.now() - start < 5_000;) {
      await sleep(100);
    }
    assert.equal(rows(), expected);
  };
  try {
    let ops = checked(await openDiskBackend({ dataDir, limits: DEFAULT_LIMITS }), DEFAULT_LIMITS);
    await ops.cacheSet("keep", "long-lived", 3600);
    await ops.cacheSet("soon", "wakes Deno KV's collector up", 2);
    await Promise.all(Array.from({ length: 500 }, (_, i) => ops.cacheSet(`c${i}`, "x", 1)));
    await ops.cacheSet("large", "y".repeat(200_000), 1); // a head and 4 chunks
    assert.equal(rows(), 2 + 500 + 5);
    await ops.close();
    await sleep(1_100);
    // Opening the file removes what expired meanwhile (right after it opens).
    ops = checked(await openDiskBackend({ dataDir, limits: DEFAULT_LIMITS }), DEFAULT_LIMITS);
    try {
      await eventually(2);
      // In a running backend: the collector wakes at the expiry of "soon", and follows the
      // expiries of the entries written since.
      await Promise.all(Array.from({ length: 500 }, (_, i) => ops.cacheSet(`d${i}`, "x", 1)));
      assert.equal(rows(), 502);
      await eventually(1);
      assert.equal(await ops.cacheGet("keep"), "long-lived");
    } finally {
      await ops.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("DiskBackend.sweep() reclaims the chunks a crash left unreferenced, and nothing else", async () => {
  await withDisk(async ({ dataDir, backend, ops, raw }) => {
    await ops.kvPut("kept", new Uint8Array(300_000).fill(1));
    await ops.cacheSet("cached", "z".repeat(300_000), 60);
    // What a SIGKILL leaves between the chunk commits of a large value and its head's commit.
    await writeChunks(raw, "kv", "kept", new Uint8Array(500_000).fill(2));
    await writeChunks(raw, "cache", "never", new Uint8Array(100_000).fill(3));
    assert.equal((await rawKeys(raw, ["chunk-pending"])).length, 2);
    // The backend's own sweep leaves them alone during the grace period (a minute)...
    assert.deepEqual(await backend.sweep(), { generations: 0, chunks: 0 });
    // ...which another backend with no grace does not wait for.
    const sweeper = await openDiskBackend({
      dataDir,
      limits: DEFAULT_LIMITS,
      chunkGraceMs: 0,
      sweepIntervalMs: 0,
    });
    try {
      assert.deepEqual(await sweeper.sweep(), { generations: 2, chunks: 8 + 2 });
    } finally {
      await sweeper.close();
    }
    assert.deepEqual(await rawKeys(raw, ["chunk-pending"]), []);
    assert.equal((await rawKeys(raw, ["chunk", "kv"])).length, 5);
    assert.equal((await rawKeys(raw, ["chunk", "cache"])).length, 5);
    assert.deepEqual(await ops.kvGet("kept"), new Uint8Array(300_000).fill(1));
    assert.equal(await ops.cacheGet("cached"), "z".repeat(300_000));
  });
});

Deno.test("DiskBackend sweeps in the background, and never the chunks it is writing", async () => {
  await withDisk(
    async ({ ops, raw }) => {
      await writeChunks(raw, "kv", "orphan", new Uint8Array(100_000).fill(2));
      // Large writes while the sweep runs every 10 ms with no grace: none is disturbed.
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => ops.kvPut(`big${i}`, new Uint8Array(400_000).fill(i))),
      );
      for (let i = 0; i < 10; i++) {
        assert.deepEqual(await ops.kvGet(`big${i}`), new Uint8Array(400_000).fill(i));
      }
      await sleep(50);
      assert.deepEqual(await rawKeys(raw, ["chunk-pending"]), []);
      assert.equal((await rawKeys(raw, ["chunk", "kv"])).length, 10 * 7);
    },
    DEFAULT_LIMITS,
    { chunkGraceMs: 0, sweepIntervalMs: 10 },
  );
});

Deno.test("a large write whose chunks another process's sweep reclaimed is refused, not stored", async () => {
  await withDisk(async ({ dataDir, raw, ops }) => {
    // This "process" writes the chunks, then stalls past the grace period before its head.
    const committer = new GroupCommitter(raw);
    const heads = new KeyedBatcher(committer, headModel(new PointReader(raw), committer, "kv"));
    const chunks = await writeChunks(raw, "kv", "slow", new Uint8Array(100_000).fill(4));
    const sweeper = await openDiskBackend({
      dataDir,
      limits: DEFAULT_LIMITS,
      chunkGraceMs: 0,
      sweepIntervalMs: 0,
    });
    try {
      assert.equal((await sweeper.sweep()).generations, 1);
    } finally {
      await sweeper.close();
    }
    const head = { gen: chunks.gen, chunks: chunks.chunks, size: chunks.size };
    await assert.rejects(heads.run("slow", { type: "put", head, chunks }), UnavailableError);
    await heads.drain();
    await assert.rejects(ops.kvGet("slow"), NotFoundError);
    assert.deepEqual(await rawKeys(raw, ["chunk"]), []);
  });
});

// The data API v2 on disk: what the conformance suite cannot see (Deno KV's commit limits, the
// raw entries, several processes on one file).

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Asserts that a promise rejects with ValueTooLargeError whose message matches `pattern`. */
async function refusedTooLarge(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: Error) => {
    assert.ok(error instanceof ValueTooLargeError, `${error.name}: ${error.message}`);
    assert.match(error.message, pattern);
    assert.match(error.message, /nothing was changed/);
    return true;
  });
}

Deno.test("DiskBackend refuses an atomic batch that cannot fit one Deno KV commit, naming the limit and leaving nothing behind", async () => {
  await withDisk(async ({ backend, ops, raw }) => {
    // 101 counters: one check each, and a commit holds 100 checks.
    await refusedTooLarge(
      ops.batch(
        Array.from(
          { length: 101 },
          (_, i) => ({ op: "counterIncrement" as const, args: [`c${i}`, 1] as const }),
        ),
        { atomic: true },
      ),
      /101 checks .* one Deno KV commit holds 100/,
    );
    assert.deepEqual((await ops.counterList({ prefix: "c" })).keys, []);
    // A large value (to be written as chunks first), then a set delete of 1200 items: 1200
    // deletes, and a commit holds 1000 mutations. Known before any chunk is written.
    const items = Array.from({ length: 1200 }, (_, i) => `item-${i}`);
    await Promise.all(items.map((item) => ops.setAdd("big-set", item)));
    await ops.kvPut("kept", "old");
    const commits = backend.commitStats.commits;
    await refusedTooLarge(
      ops.batch([
        { op: "kvPut", args: ["large", new Uint8Array(MiB).fill(1)] },
        { op: "kvPut", args: ["kept", "new"] },
        { op: "setDelete", args: ["big-set"] },
      ], { atomic: true }),
      /120\d writes .* one Deno KV commit holds 1000/,
    );
    assert.equal(backend.commitStats.commits, commits, "nothing was written");
    assert.deepEqual(await rawKeys(raw, ["chunk"]), []);
    assert.deepEqual(await rawKeys(raw, ["chunk-pending"]), []);
    await assert.rejects(ops.kvGet("large"), NotFoundError);
    assert.equal(text(await ops.kvGet("kept")), "old");
    assert.equal((await ops.setGet("big-set")).length, 1200);
    // 700 items of 1000 bytes: about 1.4 MB in one commit, which holds 800 KiB.
    await refusedTooLarge(
      ops.batch(
        Array.from({ length: 700 }, (_, i) => ({
          op: "setAdd" as const,
          args: ["wide", `${i}`.padEnd(1000, ".")] as const,
        })),
        { atomic: true },
      ),
      /KiB of keys and values .* one Deno KV commit holds 800 KiB/,
    );
    // 150 items of a set with a 500-byte name: the written keys add up to more than 80 KiB.
    const long = "s".repeat(500);
    await refusedTooLarge(
      ops.batch(
        Array.from(
          { length: 150 },
          (_, i) => ({ op: "setAdd" as const, args: [long, `${i}`] as const }),
        ),
        { atomic: true },
      ),
      /KiB of written keys, and one Deno KV commit holds 80 KiB/,
    );
    assert.deepEqual(await ops.setGet("wide"), []);
    assert.deepEqual(await ops.setGet(long), []);
    assert.deepEqual(await rawKeys(raw, ["chunk"]), []);
  });
});

Deno.test("DiskBackend writes the large and many mid-size values of an atomic batch as chunks first, and deletes the chunks they replace", async () => {
  await withDisk(async ({ ops, raw }) => {
    // 20 values of 60 KiB: 1.2 MB, more than one commit holds inline.
    const value = (i: number) => new Uint8Array(60 * 1024).fill(i);
    await ops.batch(
      Array.from(
        { length: 20 },
        (_, i) => ({ op: "kvPut" as const, args: [`mid${i}`, value(i)] as const }),
      ),
      { atomic: true },
    );
    for (let i = 0; i < 20; i++) assert.deepEqual(await ops.kvGet(`mid${i}`), value(i));
    assert.ok((await rawKeys(raw, ["chunk", "kv"])).length >= 8, "the largest were chunked");
    assert.deepEqual(await rawKeys(raw, ["chunk-pending"]), []);
    // Replacing and deleting chunked values deletes their chunks, as single writes do.
    const big = new Uint8Array(3 * MiB).map((_, i) => i % 251);
    await ops.kvPut("big", big);
    await ops.cacheSet("cached", "c".repeat(200_000), 60);
    await ops.batch([
      { op: "kvPut", args: ["big", "small now"] },
      { op: "cacheDelete", args: ["cached"] },
      ...Array.from(
        { length: 20 },
        (_, i) => ({ op: "kvDelete" as const, args: [`mid${i}`] as const }),
      ),
    ], { atomic: true });
    assert.equal(text(await ops.kvGet("big")), "small now");
    await assert.rejects(ops.cacheGet("cached"), NotFoundError);
    assert.deepEqual(await rawKeys(raw, ["chunk"]), []);
    assert.deepEqual(await rawKeys(raw, ["chunk-pending"]), []);
  }, { ...DEFAULT_LIMITS, maxValueBytes: 4 * MiB });
});

Deno.test("DiskBackend deletes a set too large for one commit in several, items and guard", async () => {
  await withDisk(async ({ backend, ops, raw }) => {
    const items = Array.from({ length: 2500 }, (_, i) => `item-${i}`);
    await Promise.all(items.map((item) => ops.setAdd("large", item)));
    await ops.setAdd("other", "stays");
    const commits = backend.commitStats.commits;
    await ops.setDelete("large");
    assert.ok(backend.commitStats.commits - commits >= 3, "three commits at least");
    assert.deepEqual(await ops.setGet("large"), []);
    assert.deepEqual(await rawKeys(raw, ["set", "large"]), []);
    assert.equal((await raw.get(["set-guard", "large"])).versionstamp, null);
    assert.deepEqual((await ops.setList({})).keys, ["other"]);
    await assert.rejects(ops.setDelete("large"), NotFoundError);
  });
});

Deno.test("DiskBackend lists no set for the empty guard an older file may hold, nor a bad cursor", async () => {
  await withDisk(async ({ ops, raw }) => {
    await raw.set(["set-guard", "emptied"], 0); // as sets emptied before guards were deleted
    await ops.setAdd("full", "x");
    assert.deepEqual((await ops.setList({})).keys, ["full"]);
    await assert.rejects(ops.setDelete("emptied"), NotFoundError);
    assert.deepEqual(await ops.setAdd("emptied", "again"), ["again"]);
    assert.deepEqual((await ops.setList({})).keys, ["emptied", "full"]);
    // A cursor of another prefix's listing is not one of this listing's.
    await Promise.all(["a1", "a2", "b1", "b2"].map((key) => ops.kvPut(key, "v")));
    const { cursor } = await ops.kvList({ prefix: "a", limit: 1 });
    assert.ok(cursor !== undefined);
    assert.deepEqual(await ops.kvList({ prefix: "a", cursor }), { keys: ["a2"] });
    await assert.rejects(ops.kvList({ prefix: "b", cursor }), InvalidArgumentError);
  });
});

Deno.test("DiskBackend keeps counters and sets exact under atomic batches and single writes of the same keys", async () => {
  await withDisk(async ({ ops }) => {
    const singles: Promise<unknown>[] = [];
    const batches: Promise<unknown>[] = [];
    for (let i = 0; i < 100; i++) {
      singles.push(ops.counterIncrement("a", 1), ops.setAdd("s", `single-${i}`));
      if (i % 2 === 0) {
        batches.push(ops.batch([
          { op: "counterIncrement", args: ["a", 1] },
          { op: "counterIncrement", args: ["b", 1] },
          { op: "setAdd", args: ["s", `batch-${i}`] },
          { op: "counterGet", args: ["a"] },
        ], { atomic: true }));
      }
    }
    await Promise.all([...singles, ...batches]);
    assert.equal(await ops.counterGet("a"), 150n);
    assert.equal(await ops.counterGet("b"), 50n);
    assert.equal((await ops.setGet("s")).length, 150);
    // The single writes' remembered states follow what the batches wrote.
    assert.equal(await ops.counterIncrement("a", 1), 151n);
    assert.equal((await ops.setAdd("s", "last")).length, 151);
    await ops.batch([{ op: "counterDelete", args: ["a"] }, { op: "setDelete", args: ["s"] }], {
      atomic: true,
    });
    assert.equal(await ops.counterIncrement("a", 5), 5n);
    assert.deepEqual(await ops.setAdd("s", "new"), ["new"]);
  });
});

Deno.test("conditional writes and atomic batches from another process on one file stay exact", async () => {
  await withDisk(async ({ dataDir, ops }) => {
    // Both processes run compare-and-set loops on one KV key, atomic transfers between two
    // counters, and versioned atomic transfers between two KV balances, at the same time.
    const child = `
      import { DEFAULT_LIMITS, checked } from "${new URL("../backends/mod.ts", import.meta.url)}";
      import { openDiskBackend } from "${new URL("../backends/disk.ts", import.meta.url)}";
      import { balances, casLoops, transfers } from "${new URL(
      "./_disk_contention.ts",
      import.meta.url,
    )}";
      const ops = checked(await openDiskBackend({ dataDir: ${
      JSON.stringify(dataDir)
    }, limits: DEFAULT_LIMITS }), DEFAULT_LIMITS);
      const [conflicts] = await Promise.all([casLoops(ops, 16, 10), transfers(ops, 100), balances(ops, 8, 5)]);
      await ops.close();
      console.log(JSON.stringify({ conflicts }));
    `;
    await ops.kvPut("cas", "0");
    await ops.kvPut("a", "1000");
    await ops.kvPut("b", "0");
    const config = new URL("../deno.json", import.meta.url).pathname;
    const process = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", config, "--unstable-kv", child],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const output = process.output();
    const [conflicts] = await Promise.all([
      casLoops(ops, 16, 10),
      transfers(ops, 100),
      balances(ops, 8, 5),
    ]);
    const { success, stdout } = await output;
    assert.ok(success, "the child process failed");
    const theirs = JSON.parse(text(stdout).trim().split("\n").at(-1)!);
    assert.equal(text(await ops.kvGet("cas")), String(2 * 16 * 10), "no update lost");
    assert.ok(conflicts + theirs.conflicts > 0, "the loops did contend");
    assert.equal(await ops.counterGet("from"), -200n);
    assert.equal(await ops.counterGet("to"), 200n);
    assert.equal(text(await ops.kvGet("a")), String(1000 - 2 * 8 * 5));
    assert.equal(text(await ops.kvGet("b")), String(2 * 8 * 5));
  });
});

Deno.test("DiskBackend deletes the chunks of an atomic batch that fails after writing them", async () => {
  await withDisk(async ({ ops, raw }) => {
    // Each batch puts a large value and a small one over a version that a single put, started
    // with it, replaces while the batch writes its chunks: most batches fail after writing them.
    let failed = 0;
    for (let round = 0; round < 10; round++) {
      await ops.kvPut("b", `b${round}`);
      const { version } = await ops.kvGetEntry("b");
      const large = new Uint8Array(MiB).fill(round);
      const [batch] = await Promise.allSettled([
        ops.batch([
          { op: "kvPut", args: ["a", large] },
          { op: "kvPut", args: ["b", "from the batch", { ifMatch: version }] },
        ], { atomic: true }),
        ops.kvPut("b", "single"),
      ]);
      if (batch.status === "rejected") {
        assert.ok(batch.reason instanceof PreconditionFailedError, String(batch.reason));
        failed++;
      } else assert.deepEqual(await ops.kvGet("a"), large);
    }
    assert.ok(failed > 0, "no batch failed after writing its chunks");
    assert.deepEqual(await rawKeys(raw, ["chunk-pending"]), []);
    const head = (await raw.get<{ gen?: string }>(["kv", "a"])).value;
    const gens = new Set((await rawKeys(raw, ["chunk"])).map((key) => key[3]));
    assert.deepEqual([...gens], head?.gen === undefined ? [] : [head.gen]);
  });
});

Deno.test("DiskBackend applies the operations of one key in call order, as memory does (keepsCallOrder)", async () => {
  // One pseudo-random sequence of every single operation on three keys of each service, all
  // called without waiting, and again as one in-order batch: every outcome is the memory
  // backend's (which applies each call when it is made), but the versions.
  let seed = 42;
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const big = (i: number) => new Uint8Array(100_000 + i).fill(i % 256);
  const sequence: BatchOperation[] = [];
  for (let i = 0; i < 400; i++) {
    const k = `k${random(3)}`;
    const choices: BatchOperation[] = [
      { op: "counterIncrement", args: [k, random(5) - 1] },
      { op: "counterGet", args: [k] },
      { op: "counterDelete", args: [k] },
      { op: "flagSet", args: [k, random(2) === 0] },
      { op: "flagGet", args: [k] },
      { op: "flagDelete", args: [k] },
      { op: "kvPut", args: [k, `v${i}`] },
      { op: "kvPut", args: [k, big(i)] },
      { op: "kvPut", args: [k, `new${i}`, { ifNoneMatch: "*" }] },
      { op: "kvPut", args: [k, big(i), { ifMatch: "*" }] },
      { op: "kvGet", args: [k] },
      { op: "kvDelete", args: [k] },
      { op: "cacheSet", args: [k, random(4) === 0 ? "c".repeat(40_000 + i) : `c${i}`, 60] },
      { op: "cacheGet", args: [k] },
      { op: "cacheDelete", args: [k] },
      { op: "setAdd", args: [k, `i${random(4)}`] },
      { op: "setRemove", args: [k, `i${random(4)}`] },
      { op: "setGet", args: [k] },
      { op: "setDelete", args: [k] },
    ];
    sequence.push(choices[random(choices.length)]);
  }
  const call = (ops: Operations, { op, args }: BatchOperation) =>
    (ops[op] as (...args: unknown[]) => Promise<unknown>)(...args);
  /** An outcome in short: large values by their length and first unit. */
  const summary = (outcome: { value: unknown } | { error: string }): string =>
    JSON.stringify(
      outcome,
      (_, value) =>
        value instanceof Uint8Array
          ? `${value.length} bytes of ${value[0]}`
          : typeof value === "bigint"
          ? `${value}n`
          : typeof value === "string" && value.length > 20
          ? `${value.length} units of ${value[0]}`
          : value,
    );
  const outcome = (promise: Promise<unknown>) =>
    promise.then((value) => summary({ value }), (error) => summary({ error: error.name }));
  const assertSame = (outcomes: string[], expected: string[], how: string) => {
    const at = outcomes.findIndex((outcome, i) => outcome !== expected[i]);
    const { op, args } = sequence[at] ?? {};
    assert.equal(outcomes[at], expected[at], `${how}: call ${at}, ${op} ${args?.[0]}`);
  };
  const memory = checked(new MemoryBackend(), DEFAULT_LIMITS);
  const expected: string[] = [];
  for (const operation of sequence) expected.push(await outcome(call(memory, operation)));
  await memory.close();
  await withDisk(async ({ ops }) => {
    const atOnce = await Promise.all(sequence.map((operation) => outcome(call(ops, operation))));
    assertSame(atOnce, expected, "called at once");
  });
  await withDisk(async ({ ops }) => {
    const batched = (await ops.batch(sequence)).map((result) =>
      summary(result.ok ? { value: result.value } : { error: result.error.name })
    );
    assertSame(batched, expected, "in one batch");
  });
});
