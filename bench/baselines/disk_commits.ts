/**
 * The disk ceiling of the bench: how fast one Deno KV file on this machine commits, with no
 * server in front. One writer commits sets of 1 KiB values, `--batch` distinct keys a commit,
 * awaiting each commit before the next (every commit is one SQLite transaction and one fsync),
 * for `--seconds`; it prints one line, `BENCH_JSON {...}`, with the entries written per second
 * and the commit latencies.
 *
 * ```sh
 * deno run -A --unstable-kv bench/baselines/disk_commits.ts --batch 1 --seconds 5
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: { batch: { type: "string" }, seconds: { type: "string" } },
});
const batch = Number(values.batch ?? "1");
const seconds = Number(values.seconds ?? "5");
const dir = await Deno.makeTempDir({ prefix: "purple-bench-disk-ceiling-" });
const kv = await Deno.openKv(`${dir}/ceiling.sqlite3`);
const value = new TextEncoder().encode("purple-bench-kv-".repeat(64));
const latencies: number[] = [];
let entries = 0;
try {
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    const op = kv.atomic();
    // 10,000 keys in turn: the file stays small, every commit overwrites existing rows.
    for (let i = 0; i < batch; i++) op.set(["kv", `key-${(entries + i) % 10_000}`], value);
    const at = performance.now();
    await op.commit();
    latencies.push(performance.now() - at);
    entries += batch;
  }
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  console.log(`BENCH_JSON ${
    JSON.stringify({
      rps: entries / elapsed,
      commits: latencies.length / elapsed,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
    })
  }`);
} finally {
  kv.close();
  await Deno.remove(dir, { recursive: true });
}
