// The group committer of the disk backend (backends/_disk_commits.ts): units that arrive
// together share commits, and one unit's failed check or error fails that unit alone.

import assert from "node:assert/strict";
import { GroupCommitter, type Unit, UnitBuilder } from "../backends/_disk_commits.ts";

async function withKv(fn: (kv: Deno.Kv, path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "purple_commits_" });
  const path = `${dir}/commits.sqlite3`;
  const kv = await Deno.openKv(path);
  try {
    await fn(kv, path);
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const set = (key: Deno.KvKey, value: unknown): Unit => new UnitBuilder().set(key, value).build();

Deno.test("GroupCommitter commits 500 units submitted together in a few commits, all durable", async () => {
  await withKv(async (kv, path) => {
    const committer = new GroupCommitter(kv);
    const outcomes = await Promise.all(
      Array.from({ length: 500 }, (_, i) => committer.submit(set(["n", i], i))),
    );
    assert.ok(outcomes.every((outcome) => outcome.ok && outcome.versionstamp !== null));
    // 500 single-mutation units without checks: one commit holds up to 1000 mutations.
    assert.equal(committer.stats.commits, 1);
    assert.equal(new Set(outcomes.map((o) => o.ok && o.versionstamp)).size, 1, "one commit");
    // Another handle on the file (a restart) reads every one.
    const other = await Deno.openKv(path);
    try {
      const values = [];
      for await (const entry of other.list<number>({ prefix: ["n"] })) values.push(entry.value);
      assert.equal(values.length, 500);
    } finally {
      other.close();
    }
  });
});

Deno.test("GroupCommitter splits units by Deno KV's limits: 100 checks, 1000 mutations, 800 KiB", async () => {
  await withKv(async (kv) => {
    const committer = new GroupCommitter(kv);
    // 150 units with a check each: 100 checks at most a commit.
    await Promise.all(
      Array.from(
        { length: 150 },
        (_, i) =>
          committer.submit(new UnitBuilder().check(["c", i], null).set(["c", i], i).build()),
      ),
    );
    assert.equal(committer.stats.commits, 2);
    // 30 units of 60 KiB each: 13 fit in 800 KiB.
    const big = new Uint8Array(60 * 1024);
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, (_, i) => committer.submit(set(["big", i], big))),
    );
    assert.ok(outcomes.every((outcome) => outcome.ok));
    assert.equal(committer.stats.commits, 2 + 3);
  });
});

Deno.test("GroupCommitter fails only the unit whose check fails, and commits the rest of its group", async () => {
  await withKv(async (kv) => {
    await kv.set(["taken"], "someone");
    const committer = new GroupCommitter(kv);
    const units = Array.from({ length: 20 }, (_, i) =>
      // Unit 7 expects ["taken"] to be absent: its check fails.
      new UnitBuilder().check(i === 7 ? ["taken"] : ["free", i], null).set(["free", i], i)
        .build());
    const outcomes = await Promise.all(units.map((unit) => committer.submit(unit)));
    assert.deepEqual(outcomes.map((outcome) => outcome.ok), units.map((_, i) => i !== 7));
    assert.equal((await kv.get(["free", 7])).value, null);
    assert.equal((await kv.get(["free", 8])).value, 8);
    assert.equal(committer.stats.refused, 1);
    assert.equal(committer.stats.commits, 2, "the failed group, then the others in one commit");
  });
});

Deno.test("GroupCommitter answers a unit's error to that unit alone", async () => {
  await withKv(async (kv) => {
    const committer = new GroupCommitter(kv);
    const tooLarge = new Uint8Array(70 * 1024); // Deno KV refuses values over 64 KiB.
    const settled = await Promise.allSettled([
      committer.submit(set(["a"], 1)),
      committer.submit(set(["b"], tooLarge)),
      committer.submit(set(["c"], 3)),
    ]);
    assert.deepEqual(settled.map((s) => s.status), ["fulfilled", "rejected", "fulfilled"]);
    assert.match(String((settled[1] as PromiseRejectedResult).reason), /too large/i);
    assert.equal((await kv.get(["a"])).value, 1);
    assert.equal((await kv.get(["c"])).value, 3);
  });
});

Deno.test("GroupCommitter puts a unit that checks a key an earlier unit writes into the next commit", async () => {
  await withKv(async (kv) => {
    const committer = new GroupCommitter(kv);
    const first = committer.submit(set(["k"], "first"));
    // Planned as if ["k"] were absent: it must see the first unit's write, and fail.
    const second = committer.submit(new UnitBuilder().check(["k"], null).set(["k"], "x").build());
    assert.equal((await first).ok, true);
    assert.equal((await second).ok, false);
    assert.equal((await kv.get(["k"])).value, "first");
    assert.equal(committer.stats.commits, 2);
  });
});

Deno.test("GroupCommitter validates units that write nothing by reading, without a commit", async () => {
  await withKv(async (kv) => {
    const entry = await kv.set(["guard"], 1);
    const committer = new GroupCommitter(kv);
    const outcomes = await Promise.all([
      committer.submit(new UnitBuilder().check(["guard"], entry.versionstamp).build()),
      committer.submit(new UnitBuilder().check(["guard"], null).build()),
    ]);
    assert.deepEqual(outcomes, [{ ok: true, versionstamp: null }, { ok: false }]);
    assert.equal(committer.stats.commits, 0);
    assert.equal(committer.stats.reads, 1);
  });
});

Deno.test("GroupCommitter writes expiring entries with the time left until their expiry", async () => {
  await withKv(async (kv) => {
    const committer = new GroupCommitter(kv);
    const unit = new UnitBuilder().set(["soon"], "x", Date.now() + 60_000).build();
    assert.equal((await committer.submit(unit)).ok, true);
    assert.equal((await kv.get(["soon"])).value, "x");
  });
});
