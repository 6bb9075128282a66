// Purple killed with SIGKILL while clients write to the disk backend as fast as they can: after
// a restart, every write a client saw acknowledged is there (counters hold at least every
// acknowledged increment, and at most those plus the ones whose answer the kill cut off; every
// acknowledged KV value is there, byte for byte), and the database opens cleanly. Several
// rounds on one data directory: each round's restart is the next round's victim.

import assert from "node:assert/strict";
import { HttpClient, type Operations } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import { NotFoundError } from "@purple/client/errors";
import { DISK_FILE_NAME } from "../backends/disk.ts";
import { type Purple, startPurple } from "./_purple.ts";
import { grpcTest, sleep } from "./_hardening.ts";

const ROUNDS = Number(Deno.env.get("PURPLE_KILL_ROUNDS") ?? "3");
const WORKERS = 8; // per protocol
const encoder = new TextEncoder();

/** The value written at `key`: its own name repeated, 100 KiB (chunked on disk) one time in 16. */
function valueOf(key: string, i: number): Uint8Array {
  const size = i % 16 === 15 ? 100 * 1024 : 100;
  const unit = encoder.encode(`${key};`);
  const value = new Uint8Array(size);
  for (let at = 0; at < size; at += unit.length) value.set(unit.subarray(0, size - at), at);
  return value;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** What the writers saw in one round. */
interface Ledger {
  counter: string;
  /** Increments answered with success. */
  acked: number;
  /** Increments sent and never answered (the kill cut them off): applied or not. */
  unknown: number;
  /** KV keys whose put was answered with success, and each one's index. */
  puts: Map<string, number>;
  /** KV keys whose put was cut off. */
  unknownPuts: Map<string, number>;
  /** Errors that ended before the kill: there must be none. */
  early: string[];
}

async function writeUntilKilled(purple: Purple, round: number, killAfterMs: number) {
  const ledger: Ledger = {
    counter: `kills-${round}`,
    acked: 0,
    unknown: 0,
    puts: new Map(),
    unknownPuts: new Map(),
    early: [],
  };
  const clients: Operations[] = [];
  for (let w = 0; w < WORKERS; w++) {
    clients.push(new HttpClient(`http://127.0.0.1:${purple.httpPort}`, { timeoutMs: 5000 }));
    clients.push(new GrpcClient(`127.0.0.1:${purple.grpcPort}`, { timeoutMs: 5000 }));
  }
  let killedAt = Infinity;
  const workers = clients.map(async (client, w) => {
    for (let i = 0;; i++) {
      const key = `r${round}-w${w}-${i}`;
      const increment = i % 2 === 0;
      try {
        if (increment) {
          await client.counterIncrement(ledger.counter, 1);
          ledger.acked++;
        } else {
          await client.kvPut(key, valueOf(key, i));
          ledger.puts.set(key, i);
        }
      } catch (error) {
        if (increment) ledger.unknown++;
        else ledger.unknownPuts.set(key, i);
        if (performance.now() < killedAt) {
          ledger.early.push(`${(error as Error).name}: ${(error as Error).message}`);
        }
        return;
      }
    }
  });
  await sleep(killAfterMs);
  killedAt = performance.now();
  purple.child.kill("SIGKILL");
  const status = await purple.child.status;
  assert.equal(status.signal, "SIGKILL");
  await Promise.all(workers);
  await Promise.all(clients.map((client) => (client as HttpClient).close()));
  return ledger;
}

async function verify(purple: Purple, ledgers: Ledger[]) {
  const client = new HttpClient(`http://127.0.0.1:${purple.httpPort}`);
  let found = 0;
  let unknownFound = 0;
  try {
    for (const ledger of ledgers) {
      const value = await client.counterGet(ledger.counter);
      assert.ok(
        value >= BigInt(ledger.acked) && value <= BigInt(ledger.acked + ledger.unknown),
        `${ledger.counter} is ${value}: acknowledged ${ledger.acked}, cut off ${ledger.unknown}`,
      );
      found += ledger.acked;
      unknownFound += Number(value) - ledger.acked;
      const keys = [...ledger.puts];
      for (let at = 0; at < keys.length; at += 32) {
        await Promise.all(
          keys.slice(at, at + 32).map(async ([key, i]) => {
            const stored = await client.kvGet(key);
            assert.ok(sameBytes(stored, valueOf(key, i)), `${key} holds its acknowledged value`);
            found++;
          }),
        );
      }
      for (const [key, i] of ledger.unknownPuts) {
        try {
          assert.ok(
            sameBytes(await client.kvGet(key), valueOf(key, i)),
            `${key} is whole or absent`,
          );
          unknownFound++;
        } catch (error) {
          if (!(error instanceof NotFoundError)) throw error;
        }
      }
    }
  } finally {
    await client.close();
  }
  return { found, unknownFound };
}

grpcTest(
  "every write acknowledged before a SIGKILL is there after the restart (disk)",
  async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "purple_sigkill_" });
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
        const { found, unknownFound } = await verify(purple, ledgers);
        const acked = ledger.acked + ledger.puts.size;
        const cutOff = ledger.unknown + ledger.unknownPuts.size;
        lines.push(
          `round ${round}: killed after ${killAfterMs} ms with ${acked} writes acknowledged ` +
            `(${ledger.acked} increments, ${ledger.puts.size} KV puts) and ${cutOff} cut off; ` +
            `restarted in ${restartMs.toFixed(0)} ms; ${found} acknowledged writes of all rounds ` +
            `found, ${unknownFound} cut-off ones applied`,
        );
      }
      const { code } = await purple.stop();
      assert.equal(code, 0);
      // The database opens cleanly without Purple too, and every entry reads.
      const kv = await Deno.openKv(`${dataDir}/${DISK_FILE_NAME}`);
      let entries = 0;
      // Chunks of a large value whose head the kill never wrote are unreachable: counted, as the
      // space a cut-off write can leave behind (nothing ever reads them).
      const heads = new Map<string, string>();
      const chunks = new Map<string, number>();
      try {
        for await (const entry of kv.list({ prefix: [] })) {
          entries++;
          const [service, key, chunkKey, gen] = entry.key;
          const value = entry.value as { gen?: string } | null;
          if (service === "kv" && typeof value?.gen === "string") heads.set(String(key), value.gen);
          if (service === "chunk" && key === "kv") {
            const id = `${String(chunkKey)} ${String(gen)}`;
            chunks.set(id, (chunks.get(id) ?? 0) + 1);
          }
        }
      } finally {
        kv.close();
      }
      const orphans = [...chunks].filter(([id]) =>
        heads.get(id.split(" ")[0]) !== id.split(" ")[1]
      );
      const acked = ledgers.reduce((sum, l) => sum + l.acked + l.puts.size, 0);
      lines.push(
        `${ROUNDS} kills, ${acked} acknowledged writes, all found; ${entries} entries read back, ` +
          `of which ${
            orphans.reduce((n, [, count]) => n + count, 0)
          } chunks of ${orphans.length} ` +
          "cut-off large values that nothing references",
      );
      console.log(lines.join("\n"));
    } finally {
      await purple.stop("SIGKILL");
      await Deno.remove(dataDir, { recursive: true });
    }
  },
);
