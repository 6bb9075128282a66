// Purple killed with SIGKILL while clients write to the disk backend as fast as they can, every
// kind of write at once (so that they share group commits): counter increments, KV puts (small,
// and large values in chunks) and deletes, set adds (of one set, many in one commit), cache sets
// (small and large) and flag sets. After a restart, every write a client saw acknowledged is
// there (counters hold at least every acknowledged increment, and at most those plus the ones
// whose answer the kill cut off; a cut-off write is whole or absent), and the database opens
// cleanly. Atomic batches run meanwhile too (a KV put, large one time in three, a set add and a
// counter increment each): after the restart each is there whole or not at all (the counter
// counts exactly the set's items, each item's KV value is there whole, and no value is there
// without its item). Several rounds on one data directory: each round's restart is the next
// round's victim. At the end, the chunks the kills left unreferenced (large values cut off
// between their chunks and their head) are reclaimed by the sweep, and nothing else is.

import assert from "node:assert/strict";
import { HttpClient, type Operations } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import { NotFoundError } from "@purple/client/errors";
import { DEFAULT_LIMITS } from "../backends/mod.ts";
import { DISK_FILE_NAME, openDiskBackend } from "../backends/disk.ts";
import { type Purple, startPurple } from "./_purple.ts";
import { grpcTest, sleep } from "./_hardening.ts";

const ROUNDS = Number(Deno.env.get("PURPLE_KILL_ROUNDS") ?? "3");
const WORKERS = 8; // per protocol
/** Workers that write only large values (in chunks), so that kills cut some of them off. */
const LARGE_WORKERS = 2; // per protocol
/** Workers that run atomic batches only. */
const ATOMIC_WORKERS = 2; // per protocol
const encoder = new TextEncoder();

/** The size of the value written at `key`: 512 KiB for a large worker, 300 KiB one time in 3
 * for an atomic worker, else 100 KiB (chunked on disk) one time in 8, else 100 bytes. */
function sizeOf(key: string, i: number): number {
  if (key.includes("-L")) return 512 * 1024;
  if (key.includes("-T")) return i % 3 === 2 ? 300 * 1024 : 100;
  return i % 8 === 7 ? 100 * 1024 : 100;
}

/** The value written at `key`: its own name repeated. */
function valueOf(key: string, i: number): Uint8Array {
  const size = sizeOf(key, i);
  const unit = encoder.encode(`${key};`);
  const value = new Uint8Array(size);
  for (let at = 0; at < size; at += unit.length) value.set(unit.subarray(0, size - at), at);
  return value;
}

/** The cache value written at `key`: its own name repeated. */
function cacheValueOf(key: string, i: number): string {
  return `${key};`.repeat(Math.ceil(sizeOf(key, i) / (key.length + 1)));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** The kinds of write, in the order each worker cycles through them. */
const KINDS = ["increment", "kv-put", "set-add", "cache-set", "flag-set", "kv-delete"] as const;
type Kind = typeof KINDS[number];

/** What the writers saw in one round. */
interface Ledger {
  round: number;
  counter: string;
  set: string;
  /** Increments answered with success, and cut off (applied or not). */
  acked: number;
  unknown: number;
  /** Writes answered with success: KV and cache keys with their index, set items, flags. */
  puts: Map<string, number>;
  deletes: Set<string>;
  items: Set<string>;
  caches: Map<string, number>;
  flags: Map<string, boolean>;
  /** The one write of each worker that the kill cut off. */
  cutOff: { kind: Kind; key: string; i: number }[];
  /** Acknowledged writes by kind (found: each checked after every restart). */
  counts: Record<Kind, number>;
  /** The KV keys (with their index) of the atomic batches acknowledged, and of those cut off;
   * each batch also adds its key to `set` and 1 to `atomicCounter`. */
  atomic: Map<string, number>;
  atomicCutOff: Map<string, number>;
  atomicSet: string;
  atomicCounter: string;
  /** Errors that ended before the kill: there must be none. */
  early: string[];
}

async function writeUntilKilled(purple: Purple, round: number, killAfterMs: number) {
  const ledger: Ledger = {
    round,
    counter: `kills-${round}`,
    set: `kills-${round}`,
    acked: 0,
    unknown: 0,
    puts: new Map(),
    deletes: new Set(),
    items: new Set(),
    caches: new Map(),
    flags: new Map(),
    cutOff: [],
    counts: Object.fromEntries(KINDS.map((kind) => [kind, 0])) as Record<Kind, number>,
    early: [],
    atomic: new Map(),
    atomicCutOff: new Map(),
    atomicSet: `atomic-${round}`,
    atomicCounter: `atomic-${round}`,
  };
  const clients: Operations[] = [];
  for (let w = 0; w < WORKERS; w++) {
    clients.push(new HttpClient(`http://127.0.0.1:${purple.httpPort}`, { timeoutMs: 5000 }));
    clients.push(new GrpcClient(`127.0.0.1:${purple.grpcPort}`, { timeoutMs: 5000 }));
  }
  let killedAt = Infinity;
  const large = clients.slice(0, 2 * LARGE_WORKERS).map(async (client, w) => {
    for (let i = 0;; i++) {
      const kind = i % 2 === 0 ? "kv-put" : "cache-set";
      const key = `r${round}-L${w}-${i}`;
      try {
        if (kind === "kv-put") await client.kvPut(key, valueOf(key, i));
        else await client.cacheSet(key, cacheValueOf(key, i), 3600);
      } catch (error) {
        ledger.cutOff.push({ kind, key, i });
        if (performance.now() < killedAt) {
          ledger.early.push(`${kind}: ${(error as Error).name}: ${(error as Error).message}`);
        }
        return;
      }
      ledger.counts[kind]++;
      if (kind === "kv-put") ledger.puts.set(key, i);
      else ledger.caches.set(key, i);
    }
  });
  const atomic = clients.slice(0, 2 * ATOMIC_WORKERS).map(async (client, w) => {
    for (let i = 0;; i++) {
      const key = `r${round}-T${w}-${i}`;
      try {
        await client.batch([
          { op: "kvPut", args: [key, valueOf(key, i)] },
          { op: "setAdd", args: [ledger.atomicSet, key] },
          { op: "counterIncrement", args: [ledger.atomicCounter, 1] },
        ], { atomic: true });
      } catch (error) {
        ledger.atomicCutOff.set(key, i);
        if (performance.now() < killedAt) {
          ledger.early.push(`atomic: ${(error as Error).name}: ${(error as Error).message}`);
        }
        return;
      }
      ledger.atomic.set(key, i);
    }
  });
  const workers = clients.map(async (client, w) => {
    const flag = `r${round}-w${w}`;
    for (let i = 0;; i++) {
      const kind = KINDS[i % KINDS.length];
      const key = `r${round}-w${w}-${i}`;
      // A delete takes the KV key this worker put earlier in this cycle.
      const doomedAt = i - KINDS.indexOf("kv-delete") + KINDS.indexOf("kv-put");
      const doomed = `r${round}-w${w}-${doomedAt}`;
      try {
        if (kind === "increment") await client.counterIncrement(ledger.counter, 1);
        else if (kind === "kv-put") await client.kvPut(key, valueOf(key, i));
        else if (kind === "set-add") await client.setAdd(ledger.set, key);
        else if (kind === "cache-set") await client.cacheSet(key, cacheValueOf(key, i), 3600);
        else if (kind === "flag-set") await client.flagSet(flag, i % 2 === 0);
        else if (ledger.puts.has(doomed)) await client.kvDelete(doomed);
        else continue;
      } catch (error) {
        if (kind === "increment") ledger.unknown++;
        if (kind === "kv-delete") {
          ledger.puts.delete(doomed); // Whole or absent now.
          ledger.cutOff.push({ kind, key: doomed, i: doomedAt });
        } else ledger.cutOff.push({ kind, key: kind === "flag-set" ? flag : key, i });
        if (performance.now() < killedAt) {
          ledger.early.push(`${kind}: ${(error as Error).name}: ${(error as Error).message}`);
        }
        return;
      }
      ledger.counts[kind]++;
      if (kind === "increment") ledger.acked++;
      else if (kind === "kv-put") ledger.puts.set(key, i);
      else if (kind === "set-add") ledger.items.add(key);
      else if (kind === "cache-set") ledger.caches.set(key, i);
      else if (kind === "flag-set") ledger.flags.set(flag, i % 2 === 0);
      else {
        ledger.puts.delete(doomed);
        ledger.deletes.add(doomed);
      }
    }
  });
  await sleep(killAfterMs);
  killedAt = performance.now();
  purple.child.kill("SIGKILL");
  const status = await purple.child.status;
  assert.equal(status.signal, "SIGKILL");
  await Promise.all([...workers, ...large, ...atomic]);
  await Promise.all(clients.map((client) => (client as HttpClient).close()));
  return ledger;
}

/** Reads `key` with `read`, or `undefined` when it is not there. */
async function maybe<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/** Runs `check` on the entries 32 at a time. */
async function inParallel<T>(entries: T[], check: (entry: T) => Promise<void>): Promise<void> {
  for (let at = 0; at < entries.length; at += 32) {
    await Promise.all(entries.slice(at, at + 32).map(check));
  }
}

async function verify(purple: Purple, ledgers: Ledger[]) {
  const client = new HttpClient(`http://127.0.0.1:${purple.httpPort}`);
  let found = 0;
  let cutOffApplied = 0;
  try {
    for (const ledger of ledgers) {
      const value = await client.counterGet(ledger.counter);
      assert.ok(
        value >= BigInt(ledger.acked) && value <= BigInt(ledger.acked + ledger.unknown),
        `${ledger.counter} is ${value}: acknowledged ${ledger.acked}, cut off ${ledger.unknown}`,
      );
      found += ledger.acked;
      cutOffApplied += Number(value) - ledger.acked;
      await inParallel([...ledger.puts], async ([key, i]) => {
        const stored = await client.kvGet(key);
        assert.ok(sameBytes(stored, valueOf(key, i)), `${key} holds its acknowledged value`);
        found++;
      });
      await inParallel([...ledger.deletes], async (key) => {
        await assert.rejects(client.kvGet(key), NotFoundError, `${key} was deleted`);
        found++;
      });
      const items = new Set(await client.setGet(ledger.set));
      for (const item of ledger.items) assert.ok(items.has(item), `${item} is in ${ledger.set}`);
      found += ledger.items.size;
      await inParallel([...ledger.caches], async ([key, i]) => {
        assert.equal(await client.cacheGet(key), cacheValueOf(key, i), `${key} is cached`);
        found++;
      });
      const cutOffFlags = new Map(
        ledger.cutOff.filter((cut) => cut.kind === "flag-set").map((
          cut,
        ) => [cut.key, cut.i % 2 === 0]),
      );
      for (const [flag, expected] of ledger.flags) {
        const stored = await client.flagGet(flag);
        assert.ok(
          stored === expected || stored === cutOffFlags.get(flag),
          `flag ${flag} is ${stored}: acknowledged ${expected}`,
        );
        found++;
      }
      // Each atomic batch is there whole or not at all.
      const batched = new Set(await client.setGet(ledger.atomicSet));
      assert.equal(
        await client.counterGet(ledger.atomicCounter),
        BigInt(batched.size),
        `${ledger.atomicCounter} counts the items of ${ledger.atomicSet}`,
      );
      for (const key of ledger.atomic.keys()) assert.ok(batched.has(key), `${key} acknowledged`);
      await inParallel([...ledger.atomic, ...ledger.atomicCutOff], async ([key, i]) => {
        const stored = await maybe(() => client.kvGet(key));
        assert.equal(stored !== undefined, batched.has(key), `${key}: all or nothing`);
        assert.ok(stored === undefined || sameBytes(stored, valueOf(key, i)), `${key} whole`);
        if (ledger.atomic.has(key)) found++;
        else if (stored !== undefined) cutOffApplied++;
      });
      for (const key of batched) {
        assert.ok(ledger.atomic.has(key) || ledger.atomicCutOff.has(key), `${key} was written`);
      }
      // A cut-off write is whole or absent (a cut-off delete: the value or nothing).
      for (const { kind, key, i } of ledger.cutOff) {
        if (kind === "kv-put") {
          const stored = await maybe(() => client.kvGet(key));
          assert.ok(stored === undefined || sameBytes(stored, valueOf(key, i)), `${key} whole`);
          if (stored !== undefined) cutOffApplied++;
        } else if (kind === "kv-delete") {
          const stored = await maybe(() => client.kvGet(key));
          assert.ok(stored === undefined || sameBytes(stored, valueOf(key, i)), `${key} whole`);
          if (stored === undefined) cutOffApplied++;
        } else if (kind === "cache-set") {
          const stored = await maybe(() => client.cacheGet(key));
          assert.ok(stored === undefined || stored === cacheValueOf(key, i), `${key} whole`);
          if (stored !== undefined) cutOffApplied++;
        } else if (kind === "set-add" && items.has(key)) cutOffApplied++;
      }
    }
  } finally {
    await client.close();
  }
  return { found, cutOffApplied };
}

/** The chunks in the file that no head points at, by generation, and the pending markers. */
async function orphans(
  path: string,
): Promise<{ chunks: number; generations: number; markers: number }> {
  const kv = await Deno.openKv(path);
  const heads = new Set<string>();
  const chunks = new Map<string, number>();
  let markers = 0;
  try {
    for await (const entry of kv.list({ prefix: [] })) {
      const [service, key, chunkKey, gen] = entry.key;
      const value = entry.value as { gen?: string } | null;
      if ((service === "kv" || service === "cache") && typeof value?.gen === "string") {
        heads.add(`${service} ${String(key)} ${value.gen}`);
      }
      if (service === "chunk") {
        const id = `${String(key)} ${String(chunkKey)} ${String(gen)}`;
        chunks.set(id, (chunks.get(id) ?? 0) + 1);
      }
      if (service === "chunk-pending") markers++;
    }
  } finally {
    kv.close();
  }
  const lost = [...chunks].filter(([id]) => !heads.has(id));
  return {
    chunks: lost.reduce((sum, [, count]) => sum + count, 0),
    generations: lost.length,
    markers,
  };
}

grpcTest(
  "every write of every kind acknowledged before a SIGKILL is there after the restart (disk)",
  async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "purple_sigkill_" });
    const path = `${dataDir}/${DISK_FILE_NAME}`;
    const args = [
      "--backend",
      "disk",
      "--data-dir",
      dataDir,
      "--http-port",
      "0",
      "--grpc-port",
      "0",
    ];
    const ledgers: Ledger[] = [];
    const lines: string[] = [];
    let purple = await startPurple(args);
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        const killAfterMs = 400 + Math.floor(Math.random() * 800);
        const ledger = await writeUntilKilled(purple, round, killAfterMs);
        assert.deepEqual(ledger.early, [], "no write failed before the kill");
        ledgers.push(ledger);
        const restartAt = performance.now();
        purple = await startPurple(args);
        const restartMs = performance.now() - restartAt;
        const { found, cutOffApplied } = await verify(purple, ledgers);
        const acked = Object.values(ledger.counts).reduce((sum, n) => sum + n, 0);
        lines.push(
          `round ${round}: killed after ${killAfterMs} ms with ${acked} writes acknowledged (${
            KINDS.map((kind) => `${ledger.counts[kind]} ${kind}`).join(", ")
          }) and ${ledger.cutOff.length} cut off, ${ledger.atomic.size} atomic batches ` +
            `acknowledged and ${ledger.atomicCutOff.size} cut off; restarted in ${
              restartMs.toFixed(0)
            } ms; ` +
            `${found} acknowledged writes of all rounds found, ${cutOffApplied} cut-off ones applied`,
        );
      }
      const { code } = await purple.stop();
      assert.equal(code, 0);
      // The database opens cleanly without Purple too, and every entry reads.
      const left = await orphans(path);
      // The sweep (here without its grace period: no other process writes) reclaims the chunks
      // of the large values the kills cut off, and only those.
      const backend = await openDiskBackend({
        dataDir,
        limits: DEFAULT_LIMITS,
        chunkGraceMs: 0,
        sweepIntervalMs: 0,
      });
      const swept = await backend.sweep().finally(() => backend.close());
      assert.deepEqual(await orphans(path), { chunks: 0, generations: 0, markers: 0 });
      assert.equal(swept.generations, left.generations);
      purple = await startPurple(args);
      await verify(purple, ledgers);
      const acked = ledgers.reduce(
        (sum, l) => sum + Object.values(l.counts).reduce((a, b) => a + b, 0),
        0,
      );
      const batches = ledgers.reduce((sum, l) => sum + l.atomic.size, 0);
      lines.push(
        `${ROUNDS} kills, ${acked} acknowledged writes and ${batches} atomic batches, all ` +
          `found; the kills left ${left.chunks} ` +
          `chunks of ${left.generations} cut-off large values unreferenced (${left.markers} ` +
          `pending markers): the sweep reclaimed ${swept.generations} generations, ` +
          `${swept.chunks} chunks, and the acknowledged writes were all still there after it`,
      );
      console.log(lines.join("\n"));
    } finally {
      await purple.stop("SIGKILL");
      await Deno.remove(dataDir, { recursive: true });
    }
  },
);
