// `purple export` and `purple import`: every entry of every kind round-trips byte for byte
// across every pair of backends (memory, disk, Redis, each as source and target), through the
// file format; importing twice gives the same state; the format's lines are checked; and the
// real command (its exit codes, messages, --skip-bad, the progress line on a terminal only, a
// file from one disk directory imported into another from stdin, the docs' example).
//
// The big round trip holds PURPLE_EXPORT_TEST_ENTRIES entries (default 100,000, plus the odd
// keys, large values and two sets at the item limit) and runs one chain of transfers that
// covers every pair once: memory → disk → redis → memory → memory → redis → redis → disk →
// disk → memory (the three Redis are the original layout, the prefixed layout in another
// database of the same Redis, and a second Redis with a key prefix).

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import {
  type CheckedOperations,
  checkEntry,
  DEFAULT_LIMITS,
  openBackend,
  RestoreError,
  type StoredEntry,
} from "../backends/mod.ts";
import {
  endLine,
  entryLine,
  FormatError,
  headerLine,
  maxLineBytes,
  parseHeader,
  parseLine,
} from "../server/_export_format.ts";
import { HELP, parseCli, UsageError } from "../server/config.ts";
import { type Setting, type SettingName, SETTINGS } from "../server/_settings.ts";
import { REDIS_MISSING, type RedisServer, startRedis } from "./_redis.ts";
import { CLUSTER_MISSING, startRedisCluster } from "./_redis_cluster.ts";
import { purpleArgs, runPurple } from "./_purple.ts";
import { ROOT, start } from "./_process.ts";
import {
  assertSameEntries,
  dataset,
  everyByte,
  type Snapshot,
  snapshot,
  snapshotOf,
} from "./_export_data.ts";

const ENTRIES = Number(Deno.env.get("PURPLE_EXPORT_TEST_ENTRIES") ?? 100_000);
const decoder = new TextDecoder();

/** Writes entries in batches of 1000, as an import does. */
async function restoreAll(ops: CheckedOperations, entries: Iterable<StoredEntry>): Promise<void> {
  let batch: StoredEntry[] = [];
  for (const entry of entries) {
    batch.push(entry);
    if (batch.length === 1000) {
      await ops.restore(batch);
      batch = [];
    }
  }
  await ops.restore(batch);
}

/** Exports a backend as the lines of a file, and what it holds. */
async function exportLines(ops: CheckedOperations): Promise<{ lines: string[]; held: Snapshot }> {
  const lines: string[] = [];
  const entries: StoredEntry[] = [];
  for await (const page of ops.exportEntries()) {
    assert.deepEqual(page.unreadable, []);
    for (const entry of page.entries) lines.push(entryLine(entry));
    entries.push(...page.entries);
  }
  return { lines, held: snapshotOf(entries) };
}

/** Imports lines of a file (without header and end) into a backend, as `purple import` does. */
async function importLines(ops: CheckedOperations, lines: string[]): Promise<void> {
  await restoreAll(
    ops,
    (function* () {
      for (const text of lines) {
        const line = parseLine(text);
        assert.ok("entry" in line);
        yield checkEntry(line.entry, DEFAULT_LIMITS);
      }
    })(),
  );
}

/** A place to hold data: a backend to open fresh, named for messages. */
interface Store {
  name: string;
  ops: CheckedOperations;
}

const cleanups: Array<() => Promise<void>> = [];

async function tempDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "purple-export-" });
  cleanups.push(() => Deno.remove(dir, { recursive: true }));
  return dir;
}

Deno.test({
  name:
    `export and import: ${ENTRIES} entries of every kind round-trip byte for byte across every pair of backends`,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const servers: RedisServer[] = [];
    const redis = REDIS_MISSING === undefined;
    if (redis) servers.push(await startRedis(), await startRedis());
    const open = {
      memory: async (): Promise<Store> => ({
        name: "memory",
        ops: await openBackend({ kind: "memory" }),
      }),
      disk: async (): Promise<Store> => {
        const dataDir = await tempDir();
        return { name: "disk", ops: await openBackend({ kind: "disk", dataDir }) };
      },
      redis: (() => {
        let made = 0;
        // The original layout; the prefixed layout in database 5 of the same Redis; another
        // Redis with a key prefix.
        const places = [
          { name: "redis (databases layout)", url: () => servers[0].url, options: {} },
          {
            name: "redis (prefixed layout, database 5)",
            url: () => `${servers[0].url}/5`,
            options: { redisLayout: "prefixed" as const },
          },
          {
            name: "another redis (databases layout, prefix 'p:')",
            url: () => servers[1].url,
            options: { redisPrefix: "p:" },
          },
        ];
        return async (): Promise<Store> => {
          const place = places[made++];
          const ops = await openBackend({ kind: "redis", redisUrl: place.url(), ...place.options });
          return { name: place.name, ops };
        };
      })(),
    };
    type Kind = keyof typeof open;
    // Every ordered pair once: M→D→R→M→M→R→R→D→D→M (without Redis: M→D→D→M→M).
    const chain: Kind[] = redis
      ? ["memory", "disk", "redis", "memory", "memory", "redis", "redis", "disk", "disk", "memory"]
      : ["memory", "disk", "disk", "memory", "memory"];
    if (!redis) console.error(`!!! Redis pairs skipped: ${REDIS_MISSING} !!!`);
    const stores: Store[] = [];
    try {
      const first = await open.memory();
      stores.push(first);
      const started = performance.now();
      await restoreAll(first.ops, dataset({ entries: ENTRIES }));
      let { lines, held } = await exportLines(first.ops);
      assertSameEntries(
        held,
        snapshotOf(dataset({ entries: ENTRIES })),
        performance.now() - started,
      );
      assert.ok(held.size > ENTRIES, `${held.size} entries`);
      for (const kind of chain.slice(1)) {
        const source = stores.at(-1)!;
        const target = await open[kind]();
        stores.push(target);
        await t.step(`${source.name} → ${target.name}`, async () => {
          const begun = performance.now();
          await importLines(target.ops, lines);
          const imported = performance.now();
          const next = await exportLines(target.ops);
          const exported = performance.now();
          // A TTL of the file counts from the import.
          assertSameEntries(next.held, held, exported - begun);
          console.log(
            `    ${lines.length} entries: import ${((imported - begun) / 1000).toFixed(1)} s, ` +
              `export ${((exported - imported) / 1000).toFixed(1)} s`,
          );
          ({ lines, held } = next);
        });
        // Done with the source (the first memory backend stays the reference).
        if (stores.length > 2) await source.ops.close();
      }
    } finally {
      for (const store of stores) await store.ops.close().catch(() => {});
      for (const server of servers) await server.stop();
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Restoring twice, replacing, the checks: on each backend.

/** Opens each backend fresh, runs `fn` on it, closes it. */
async function onEachBackend(
  t: Deno.TestContext,
  fn: (ops: CheckedOperations) => Promise<void>,
): Promise<void> {
  const redis = REDIS_MISSING === undefined ? await startRedis() : undefined;
  try {
    const kinds = [
      () => openBackend({ kind: "memory" }),
      async () => openBackend({ kind: "disk", dataDir: await tempDir() }),
      ...(redis ? [() => openBackend({ kind: "redis", redisUrl: redis.url })] : []),
    ];
    for (const [i, openOne] of kinds.entries()) {
      await t.step(["memory", "disk", "redis"][i], async () => {
        const ops = await openOne();
        try {
          await fn(ops);
        } finally {
          await ops.close();
        }
      });
    }
  } finally {
    await redis?.stop();
  }
}

Deno.test({
  name: "restore() twice gives the same state: a counter set, a set replaced, a TTL as given",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) =>
    onEachBackend(t, async (ops) => {
      // What the target holds before: the import replaces it, it does not add to it.
      await ops.counterIncrement("hits", 5);
      await ops.setAdd("team", "zed");
      await ops.setAdd("team", "ann");
      await ops.cacheSet("session", "old", 1000);
      await ops.kvPut("doc", everyByte(200_000, 1)); // chunked on disk: replaced, not leaked
      await ops.flagSet("beta", true);
      const entries: StoredEntry[] = [
        { service: "counters", key: "hits", value: 7n },
        { service: "sets", key: "team", value: ["ann", "bob"] },
        { service: "cache", key: "session", value: "new", ttlMs: 30_000 },
        { service: "kv", key: "doc", value: everyByte(300, 2) },
        { service: "flags", key: "beta", value: false },
        { service: "cache", key: "forever", value: "∞", ttlMs: null },
        // A key twice in one restore: the last one wins, as written in order.
        { service: "counters", key: "twice", value: 1n },
        { service: "counters", key: "twice", value: 2n },
      ];
      const expected = snapshotOf(entries.filter((_, i) => i !== 6));
      for (let round = 0; round < 2; round++) {
        const started = performance.now();
        await ops.restore(entries);
        assertSameEntries(await snapshot(ops), expected, performance.now() - started);
      }
      assert.equal(await ops.counterGet("hits"), 7n);
      assert.deepEqual(await ops.setGet("team"), ["ann", "bob"]);
      assert.equal(await ops.cacheGet("session"), "new");
      assert.equal(await ops.cacheGet("forever"), "∞");
      assert.deepEqual(await ops.kvGet("doc"), everyByte(300, 2));
      assert.equal(await ops.flagGet("beta"), false);
      // What the operations do next starts from the restored state.
      assert.equal(await ops.counterIncrement("hits", 1), 8n);
      assert.deepEqual(await ops.setAdd("team", "cy"), ["ann", "bob", "cy"]);
      // A large value replaces a small one, and the other way round.
      await ops.restore([{ service: "kv", key: "doc", value: everyByte(150_000, 3) }]);
      assert.deepEqual(await ops.kvGet("doc"), everyByte(150_000, 3));
      await ops.restore([{ service: "kv", key: "doc", value: everyByte(10, 4) }]);
      assert.deepEqual(await ops.kvGet("doc"), everyByte(10, 4));
    }),
});

Deno.test({
  name: "exportEntries() leaves out cache entries that have expired, and gives the TTL left",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) =>
    onEachBackend(t, async (ops) => {
      await ops.restore([
        { service: "cache", key: "brief", value: "gone soon", ttlMs: 20 },
        { service: "cache", key: "large brief", value: "ж".repeat(40_000), ttlMs: 20 },
        { service: "cache", key: "lasting", value: "here", ttlMs: 60_000 },
      ]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const held = await snapshot(ops);
      assert.deepEqual([...held.keys()], ["cache lasting"]);
      const ttl = held.get("cache lasting")!.ttlMs!;
      assert.ok(ttl <= 60_000 && ttl > 58_000, `${ttl}`);
    }),
});

Deno.test({
  name: "restore() checks every entry against the limits first, naming the entry",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) =>
    onEachBackend(t, async (ops) => {
      const refused: Array<[StoredEntry, RegExp]> = [
        [
          { service: "kv", key: "k".repeat(513), value: new Uint8Array([1]) },
          /^Bad key: 513 bytes/,
        ],
        [{ service: "kv", key: "k", value: new Uint8Array(0) }, /^Bad KV value: it is empty/],
        [
          { service: "kv", key: "k", value: new Uint8Array(DEFAULT_LIMITS.maxValueBytes + 1) },
          /^Bad KV value: 1048577 bytes, the limit is 1048576/,
        ],
        [
          { service: "cache", key: "c", value: "v", ttlMs: 0 },
          /^Bad TTL: expected a whole number of milliseconds/,
        ],
        [
          { service: "counters", key: "n", value: 2n ** 63n },
          /^Bad counter value: expected an integer within int64/,
        ],
        [
          {
            service: "sets",
            key: "s",
            value: Array.from({ length: DEFAULT_LIMITS.maxSetItems + 1 }, (_, i) => `${i}`),
          },
          /^Bad set 's': 10001 items, the limit is 10000/,
        ],
        [
          { service: "sets", key: "s", value: ["a", "a"] },
          /^Bad set 's': the item 'a' is there twice/,
        ],
        [{ service: "sets", key: "s", value: [] }, /^Bad set 's': expected a non-empty list/],
        [{ service: "flags", key: "\ud800", value: true }, /^Bad key: not well-formed Unicode/],
      ];
      for (const [entry, message] of refused) {
        const good: StoredEntry = { service: "flags", key: "good", value: true };
        await assert.rejects(ops.restore([good, entry]), (error: unknown) => {
          assert.ok(error instanceof RestoreError, String(error));
          assert.equal(error.index, 1);
          assert.match(error.cause.message, message);
          return true;
        });
      }
      // The checks come first: nothing of a refused batch was written.
      assert.deepEqual(await snapshot(ops), new Map());
    }),
});

Deno.test({
  name: "exportEntries() pages hold at most pageEntries entries and about pageBytes bytes",
  fn: async () => {
    const ops = await openBackend({ kind: "memory" });
    await ops.restore([
      ...Array.from(
        { length: 25 },
        (_, i) => ({ service: "flags", key: `f${i}`, value: true }) as const,
      ),
      { service: "kv", key: "big1", value: new Uint8Array(5000) },
      { service: "kv", key: "big2", value: new Uint8Array(5000) },
    ]);
    const sizes: number[] = [];
    for await (const page of ops.exportEntries({ pageEntries: 10, pageBytes: 4000 })) {
      sizes.push(page.entries.length);
    }
    assert.deepEqual(sizes, [10, 10, 5, 1, 1]);
    await ops.close();
  },
});

// ---------------------------------------------------------------------------------------------
// The format's lines.

Deno.test("entryLine() writes each service as docs/export.md says, and parseLine() reads it back", () => {
  const samples: Array<[StoredEntry, string]> = [
    [
      { service: "cache", key: "greeting", value: "hi", ttlMs: 59000 },
      `{"service":"cache","key":"greeting","value":"hi","ttlMs":59000}`,
    ],
    [
      { service: "cache", key: "forever", value: "x", ttlMs: null },
      `{"service":"cache","key":"forever","value":"x","ttlMs":null}`,
    ],
    [
      { service: "counters", key: "min", value: -(2n ** 63n) },
      `{"service":"counters","key":"min","value":"-9223372036854775808"}`,
    ],
    [
      { service: "flags", key: "beta", value: true },
      `{"service":"flags","key":"beta","value":true}`,
    ],
    [
      { service: "kv", key: "doc\u0000🎉", value: new Uint8Array([0, 255, 104, 105]) },
      `{"service":"kv","key":"doc\\u0000🎉","value":"AP9oaQ=="}`,
    ],
    [
      { service: "sets", key: "team", value: ["ann", "bob"] },
      `{"service":"sets","key":"team","value":["ann","bob"]}`,
    ],
  ];
  for (const [entry, line] of samples) {
    assert.equal(entryLine(entry), line);
    assert.deepEqual(parseLine(line), { entry });
  }
  assert.deepEqual(parseLine(endLine(6)), { end: 6 });
  assert.equal(endLine(6), `{"end":"purple-export","entries":6}`);
  // Fields a reader does not know are ignored.
  assert.deepEqual(parseLine(`{"service":"flags","key":"a","value":false,"note":1}`), {
    entry: { service: "flags", key: "a", value: false },
  });
  const header = headerLine({
    exportedAt: "2025-01-02T03:04:05.000Z",
    backend: "disk",
    source: "x",
    purple: "0.1.0",
  });
  assert.equal(
    header,
    `{"format":"purple-export","version":1,"exportedAt":"2025-01-02T03:04:05.000Z","backend":"disk","source":"x","purple":"0.1.0"}`,
  );
  assert.equal(parseHeader(header).version, 1);
});

Deno.test("parseLine() refuses what is not an entry, saying what is wrong", () => {
  const bad: Array<[string, RegExp]> = [
    ["nope", /^not JSON/],
    ["[1]", /^not a JSON object/],
    [
      `{"service":"queues","key":"a","value":1}`,
      /^"service" must be one of cache, counters, flags, kv, sets, found "queues"/,
    ],
    [`{"service":"kv","key":1,"value":"AA=="}`, /^"key" must be a string, found 1/],
    [`{"service":"kv","key":"a","value":"!!"}`, /^"value" must be the bytes in base64, found "!!"/],
    [`{"service":"kv","key":"a","value":"AAA"}`, /^"value" must be the bytes in base64/],
    [`{"service":"counters","key":"a","value":42}`, /^"value" must be a string of decimal digits/],
    [
      `{"service":"counters","key":"a","value":"042"}`,
      /^"value" must be a string of decimal digits/,
    ],
    [`{"service":"flags","key":"a","value":"true"}`, /^"value" must be true or false/],
    [
      `{"service":"cache","key":"a","value":"v"}`,
      /^"ttlMs" must be a number of milliseconds, or null, found none/,
    ],
    [`{"service":"sets","key":"a","value":["x",1]}`, /^"value" must be a list of strings/],
    [`{"end":"other","entries":1}`, /^"end" must be "purple-export"/],
    [`{"end":"purple-export","entries":-1}`, /^"entries" must be a whole number/],
  ];
  for (const [line, message] of bad) {
    assert.throws(() => parseLine(line), (error: Error) => {
      assert.ok(error instanceof FormatError);
      assert.match(error.message, message);
      return true;
    }, line);
  }
  assert.throws(
    () => parseHeader(`{"format":"purple-export","version":2}`),
    /format version 2, and this Purple reads version 1 only/,
  );
  assert.throws(
    () => parseHeader(`{"service":"kv"}`),
    /does not start with the header of a Purple export/,
  );
});

Deno.test("maxLineBytes() fits the longest line of an entry within the limits", () => {
  const limits = {
    ...DEFAULT_LIMITS,
    maxValueBytes: 100,
    maxSetItems: 3,
    maxItemBytes: 10,
    maxKeyBytes: 8,
  };
  const longest = [
    entryLine({
      service: "cache",
      key: "\u0001".repeat(8),
      value: "\u0001".repeat(100),
      ttlMs: 2147483647000,
    }),
    entryLine({ service: "kv", key: "\u0001".repeat(8), value: new Uint8Array(100) }),
    entryLine({
      service: "sets",
      key: "\u0001".repeat(8),
      value: ["\u0001".repeat(10), "\u0002".repeat(10), "\u0003".repeat(10)],
    }),
  ];
  for (const line of longest) {
    assert.ok(new TextEncoder().encode(line).length <= maxLineBytes(limits));
  }
});

// ---------------------------------------------------------------------------------------------
// The command line.

Deno.test("parseCli() reads export and import: the backend's flags, --output, --skip-bad, FILE", () => {
  const exported = parseCli(["export", "--data-dir", "/d", "--output", "b.jsonl"], {});
  assert.equal(exported.action, "export");
  if (exported.action === "export") {
    assert.equal(exported.config.output, "b.jsonl");
    assert.equal(exported.config.dataDir, "/d");
    assert.equal(exported.config.skipBad, false);
  }
  const imported = parseCli(["import", "b.jsonl", "--backend", "redis"], {
    PURPLE_SKIP_BAD: "true",
  });
  assert.equal(imported.action, "import");
  if (imported.action === "import") {
    assert.equal(imported.config.input, "b.jsonl");
    assert.equal(imported.config.backend, "redis");
    assert.equal(imported.config.skipBad, true);
  }
  assert.match(
    HELP,
    /^ {2}purple export \[flags\] +write every entry of the backend as JSON Lines/m,
  );
  assert.match(HELP, /^ {2}purple import \[FILE\] +read such a file/m);
  assert.match(HELP, /docs\/export\.md/);
  const stdin = parseCli(["import"], {});
  assert.ok(stdin.action === "import" && stdin.config.input === undefined);
  // A server's variable in the environment is not in the way (a platform may set PORT).
  assert.equal(parseCli(["export"], { PORT: "80", PURPLE_AUTH_TOKEN: "x" }).action, "export");
  const refused: Array<[string[], RegExp]> = [
    [
      ["export", "--port", "80"],
      /^Bad --port: it is a flag of the servers; 'purple export' reads and writes the backend directly$/,
    ],
    [["import", "--tls-cert", "c.pem"], /^Bad --tls-cert: it is a flag of the servers/],
    [
      ["import", "--output", "x"],
      /^Bad --output: it is a flag of 'purple export'; 'purple import' reads FILE, or stdin$/,
    ],
    [
      ["http", "--skip-bad"],
      /^Bad --skip-bad: it is a flag of 'purple export' and 'purple import'$/,
    ],
    [["--output", "x"], /^Bad --output: it is a flag of 'purple export' and 'purple import'$/],
    [["export", "file"], /^Unexpected argument 'file'$/],
    [["import", "a", "b"], /^Unexpected argument 'b'$/],
    [["backup"], /^Unknown command 'backup': expected 'http', 'grpc', 'export', 'import' or none$/],
  ];
  for (const [args, message] of refused) {
    assert.throws(() => parseCli(args, {}), (error: Error) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, message);
      return true;
    }, args.join(" "));
  }
});

// A flag export and import do not use is refused, never silently ignored: each setting of the
// table is either one they use (listed here) or refused by both.
Deno.test("export and import refuse every flag they do not use, from the settings table", () => {
  const used = new Set<SettingName>([
    "backend",
    "dataDir",
    "redisUrl",
    "redisLayout",
    "redisPrefix",
    "redisCluster",
    "redisWaitReplicas",
    "redisWaitTimeoutMs",
    "redisInsecureTls",
    "maxKeyBytes",
    "maxValueBytes",
    "maxItemBytes",
    "maxSetItems",
    "backendTimeoutMs",
    "output",
    "skipBad",
  ]);
  for (
    const [name, setting] of Object.entries(SETTINGS) as Array<[SettingName, Setting<unknown>]>
  ) {
    if (used.has(name)) continue;
    const flag = [`--${setting.flag}`, ...(setting.kind === "switch" ? [] : ["1"])];
    for (const mode of ["export", "import"]) {
      assert.throws(() => parseCli([mode, ...flag], {}), (error: Error) => {
        assert.ok(error instanceof UsageError, `${mode} ${flag.join(" ")}: ${error}`);
        assert.match(error.message, new RegExp(`^Bad --${setting.flag}: it is a flag of `));
        return true;
      }, `${mode} ${flag.join(" ")}`);
    }
  }
});

/** Runs purple with `stdin` fed from a file (or nothing), returns its exit code and output. */
async function purple(
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  if (options.stdin === undefined) return await runPurple(args, options.env);
  const child = new Deno.Command(Deno.execPath(), {
    args: purpleArgs(args),
    cwd: ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const file = await Deno.open(options.stdin);
  await file.readable.pipeTo(child.stdin);
  const { code, stdout, stderr } = await child.output();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** `N entries (cache N, counters N, flags N, kv N, sets N)`, as the summaries say. */
function summaryCounts(entries: StoredEntry[]): string {
  const by = (service: string) =>
    entries.filter((entry) => entry.service === service).length.toLocaleString("en-US");
  return `${entries.length.toLocaleString("en-US")} entries \\(cache ${by("cache")}, counters ${
    by("counters")
  }, flags ${by("flags")}, kv ${by("kv")}, sets ${by("sets")}\\)`;
}

/** What a disk directory holds. */
async function diskSnapshot(dataDir: string): Promise<Snapshot> {
  const ops = await openBackend({ kind: "disk", dataDir });
  try {
    return await snapshot(ops);
  } finally {
    await ops.close();
  }
}

/** A file of a header, the lines given, and (unless `end: false`) a right end line. */
async function exportFile(lines: string[], options: { end?: boolean; header?: string } = {}) {
  const path = `${await tempDir()}/export.jsonl`;
  const header = options.header ??
    headerLine({
      exportedAt: new Date().toISOString(),
      backend: "disk",
      source: "a test",
      purple: "0.1.0",
    });
  const all = [header, ...lines, ...(options.end === false ? [] : [endLine(lines.length)])];
  await Deno.writeTextFile(path, all.join("\n") + "\n");
  return path;
}

const flag = (key: string) => entryLine({ service: "flags", key, value: true });

Deno.test({
  name:
    "purple export writes a disk directory to a file, purple import reads it from stdin into another",
  sanitizeResources: false,
  fn: async () => {
    const from = await tempDir();
    const to = await tempDir();
    const entries = [...dataset({ entries: 2000, largeValues: 2 })];
    const ops = await openBackend({ kind: "disk", dataDir: from });
    const started = performance.now();
    await restoreAll(ops, entries);
    await ops.close();
    const file = `${await tempDir()}/backup.jsonl`;
    const exported = await purple(["export", "--data-dir", from, "--output", file]);
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(exported.stdout, "");
    // One summary line, no progress line (stderr is no terminal).
    const counts = summaryCounts(entries);
    assert.match(
      exported.stderr,
      new RegExp(
        `^Exported ${counts} from the disk backend in \\S+ to '\\S+backup.jsonl' in [\\d.]+ s: [\\d,]+ entries/s, [\\d.]+ MB\n$`,
      ),
    );
    const text = await Deno.readTextFile(file);
    const lines = text.split("\n");
    assert.equal(lines.at(-1), "", "the file ends with a newline");
    assert.equal(JSON.parse(lines[0]).format, "purple-export");
    assert.equal(JSON.parse(lines[0]).backend, "disk");
    assert.equal(lines.at(-2), endLine(entries.length));
    const imported = await purple(["import", "--data-dir", to], { stdin: file });
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(
      imported.stderr,
      new RegExp(`^Imported ${counts} from stdin into the disk backend in `),
    );
    assertSameEntries(await diskSnapshot(to), snapshotOf(entries), performance.now() - started);
    // Twice: the same state.
    const again = await purple(["import", "--data-dir", to, file]);
    assert.equal(again.code, 0, again.stderr);
    assertSameEntries(await diskSnapshot(to), snapshotOf(entries), performance.now() - started);
  },
});

Deno.test({
  name:
    "purple import stops at a malformed line or a refused entry: its line and reason, exit 1, the lines before it imported",
  sanitizeResources: false,
  fn: async () => {
    const cases: Array<[string, string[], RegExp]> = [
      [
        "malformed",
        [flag("a"), flag("b"), "{oops", flag("c")],
        /^purple: Cannot import line 4 of '\S+': not JSON \(.*\); the 2 entries before it were imported\n$/,
      ],
      [
        "refused by the limits",
        [
          flag("a"),
          flag("b"),
          entryLine({ service: "kv", key: "k", value: new Uint8Array(2000) }),
          flag("c"),
        ],
        /^purple: Cannot import line 4 of '\S+': Bad KV value: 2000 bytes, the limit is 1000; the 2 entries before it were imported\n$/,
      ],
      [
        "a bad key",
        [flag("a"), flag("b"), flag("k".repeat(600)), flag("c")],
        /^purple: Cannot import line 4 of '\S+': Bad key: 600 bytes, the limit is 512; the 2 entries before it were imported\n$/,
      ],
    ];
    for (const [what, lines, message] of cases) {
      const dataDir = await tempDir();
      const file = await exportFile(lines);
      const result = await purple([
        "import",
        "--data-dir",
        dataDir,
        "--max-value-bytes",
        "1000",
        file,
      ]);
      assert.equal(result.code, 1, what);
      assert.match(result.stderr, message, what);
      const held = await diskSnapshot(dataDir);
      assert.deepEqual([...held.keys()].sort(), ["flags a", "flags b"], what);
    }
  },
});

Deno.test({
  name: "purple import --skip-bad skips and counts bad lines, naming the first five",
  sanitizeResources: false,
  fn: async () => {
    const dataDir = await tempDir();
    const lines = [flag("a"), "{oops", flag("b")];
    for (let i = 0; i < 6; i++) lines.push(flag("k".repeat(600 + i)));
    lines.push(flag("c"));
    const file = await exportFile(lines);
    const result = await purple(["import", "--data-dir", dataDir, "--skip-bad", file]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /^Imported 3 entries \(cache 0, counters 0, flags 3, kv 0, sets 0\) from '\S+' into the disk backend in \S+ in [\d.]+ s: [\d,]+ entries\/s, [\d.]+ MB; skipped 7 bad lines: line 3 \(not JSON \(.*\)\), line 5 \(Bad key: 600 bytes, the limit is 512\), line 6 \(Bad key: 601 bytes, the limit is 512\), line 7 \(.*\), line 8 \(.*\), and 2 more\n$/,
    );
    assert.deepEqual([...(await diskSnapshot(dataDir)).keys()].sort(), [
      "flags a",
      "flags b",
      "flags c",
    ]);
  },
});

Deno.test({
  name:
    "purple import refuses a file of an unknown version, a file without header, a file cut short",
  sanitizeResources: false,
  fn: async () => {
    const dataDir = await tempDir();
    const cases: Array<[string, RegExp]> = [
      [
        await exportFile([flag("a")], {
          header: `{"format":"purple-export","version":2,"exportedAt":"2030-01-01T00:00:00Z"}`,
        }),
        /^purple: Cannot import '\S+': it is a Purple export of format version 2, and this Purple reads version 1 only \(import it with the Purple that wrote it, or a newer one\)\n$/,
      ],
      [
        await exportFile([flag("a")], { header: flag("x") }),
        /^purple: Cannot import '\S+': it does not start with the header of a Purple export \({"format":"purple-export","version":1,...}\)\n$/,
      ],
      [
        await exportFile([flag("a"), flag("b")], { end: false }),
        /^purple: Cannot import '\S+': it ends at line 3 without its end line \({"end":"purple-export",...}\): it was cut short \(2 entries imported\)\n$/,
      ],
    ];
    for (const [file, message] of cases) {
      const result = await purple(["import", "--data-dir", dataDir, file]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, message);
    }
    const empty = `${await tempDir()}/empty.jsonl`;
    await Deno.writeTextFile(empty, "");
    const result = await purple(["import", "--data-dir", dataDir, empty]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /it is empty \(a Purple export starts with its header line\)/);
    const missing = await purple(["import", "--data-dir", dataDir, `${dataDir}/nothere.jsonl`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^purple: Cannot read '\S+nothere.jsonl': No such file/);
    // An export of a directory without a database (a mistyped --data-dir) creates none.
    const typo = `${dataDir}-typo`;
    const nothing = await purple(["export", "--data-dir", typo]);
    assert.equal(nothing.code, 2);
    assert.match(
      nothing.stderr,
      /^purple: Cannot export the disk backend in \S+-typo: there is no database there \('\S+purple.sqlite3' does not exist\)\n$/,
    );
    await assert.rejects(Deno.stat(typo), Deno.errors.NotFound);
  },
});

Deno.test({
  name:
    "purple import refuses an end line whose count is wrong, with or without --skip-bad: exit 1, the counts",
  sanitizeResources: false,
  fn: async () => {
    const file = await exportFile([flag("a"), flag("b"), endLine(3)], { end: false });
    for (const skipBad of [[], ["--skip-bad"]]) {
      const result = await purple(["import", "--data-dir", await tempDir(), ...skipBad, file]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /^purple: Cannot import '\S+': its end line \(line 4\) counts 3 entries, but 2 entry lines come before it: lines are missing or added \(2 entries imported\)\n$/,
      );
    }
  },
});

Deno.test({
  name:
    "purple import refuses a line after the end line (blank lines excepted); --skip-bad skips it",
  sanitizeResources: false,
  fn: async () => {
    const file = await exportFile([flag("a"), endLine(1), "", flag("b")], { end: false });
    const result = await purple(["import", "--data-dir", await tempDir(), file]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /^purple: Cannot import line 5 of '\S+': it comes after the end line \(line 3\); the 1 entry before it was imported\n$/,
    );
    const dataDir = await tempDir();
    const skipped = await purple(["import", "--data-dir", dataDir, "--skip-bad", file]);
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.match(
      skipped.stderr,
      /; skipped 1 bad line: line 5 \(it comes after the end line \(line 3\)\)\n$/,
    );
    assert.deepEqual([...(await diskSnapshot(dataDir)).keys()], ["flags a"]);
    // Blank lines after the end line are no lines.
    const blank = await exportFile([flag("a"), endLine(1), "", "  "], { end: false });
    const fine = await purple(["import", "--data-dir", await tempDir(), blank]);
    assert.equal(fine.code, 0, fine.stderr);
  },
});

Deno.test({
  name:
    "purple import refuses a line longer than any entry within the limits, without reading it whole; --skip-bad skips it",
  sanitizeResources: false,
  fn: async () => {
    const limits = ["--max-key-bytes", "10", "--max-value-bytes", "100"];
    limits.push("--max-item-bytes", "10", "--max-set-items", "10");
    const longest = maxLineBytes({
      ...DEFAULT_LIMITS,
      maxKeyBytes: 10,
      maxValueBytes: 100,
      maxItemBytes: 10,
      maxSetItems: 10,
    });
    // Longer than the limit, and than the chunks stdin or a file is read in.
    const long = entryLine({ service: "cache", key: "k", value: "x".repeat(300_000), ttlMs: 1000 });
    const file = await exportFile([flag("a"), long, flag("b")]);
    const result = await purple(["import", "--data-dir", await tempDir(), ...limits, file]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `^purple: Cannot import line 3 of '\\S+': it is longer than ${longest} bytes, more than any entry within the limits takes; the 1 entry before it was imported\n$`,
      ),
    );
    const dataDir = await tempDir();
    const skipped = await purple(["import", "--data-dir", dataDir, ...limits, "--skip-bad", file]);
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.match(
      skipped.stderr,
      new RegExp(`; skipped 1 bad line: line 3 \\(it is longer than ${longest} bytes, .*\\)\n$`),
    );
    assert.deepEqual([...(await diskSnapshot(dataDir)).keys()].sort(), ["flags a", "flags b"]);
  },
});

Deno.test({
  name:
    "purple import refuses a line that is not UTF-8 (counted as an entry line); --skip-bad skips it",
  sanitizeResources: false,
  fn: async () => {
    const file = await exportFile([flag("a"), "NOT-UTF-8", flag("b")]);
    // The placeholder becomes a flag whose key is bytes that are not UTF-8: 0xff 0xfe.
    const [before, after] = (await Deno.readTextFile(file)).split("NOT-UTF-8");
    const encode = (text: string) => [...new TextEncoder().encode(text)];
    await Deno.writeFile(
      file,
      new Uint8Array([
        ...encode(`${before}{"service":"flags","key":"`),
        0xff,
        0xfe,
        ...encode(`","value":true}${after}`),
      ]),
    );
    const result = await purple(["import", "--data-dir", await tempDir(), file]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /^purple: Cannot import line 3 of '\S+': it is not UTF-8; the 1 entry before it was imported\n$/,
    );
    const dataDir = await tempDir();
    const skipped = await purple(["import", "--data-dir", dataDir, "--skip-bad", file]);
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.match(skipped.stderr, /; skipped 1 bad line: line 3 \(it is not UTF-8\)\n$/);
    assert.deepEqual([...(await diskSnapshot(dataDir)).keys()].sort(), ["flags a", "flags b"]);
  },
});

Deno.test({
  name:
    "purple export prints a progress line only when stderr is a terminal; import refuses a terminal stdin",
  ignore: Deno.build.os !== "linux",
  sanitizeResources: false,
  fn: async () => {
    const dataDir = await tempDir();
    const ops = await openBackend({ kind: "disk", dataDir });
    const entries = [...dataset({ entries: 3000, largeValues: 0, bigSets: 0 })];
    await restoreAll(ops, entries);
    await ops.close();
    const file = `${await tempDir()}/out.jsonl`;
    // `script` runs the command on a new pseudo-terminal: stderr is a terminal there.
    const command = [
      Deno.execPath(),
      ...purpleArgs(["export", "--data-dir", dataDir, "--output", file]),
    ]
      .map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(" ");
    const onTerminal = await new Deno.Command("script", {
      args: ["-qec", command, "/dev/null"],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const terminal = decoder.decode(onTerminal.stdout);
    assert.equal(onTerminal.code, 0, terminal);
    // deno-lint-ignore no-control-regex
    assert.match(terminal, /\rExported [\d,]+ entries, [\d,]+\/s, [\d.]+ MB\x1b\[K/);
    // Erased before the summary.
    assert.match(terminal, new RegExp(`\r\x1b\\[KExported ${summaryCounts(entries)} from`));
    const piped = await purple(["export", "--data-dir", dataDir, "--output", file]);
    assert.equal(piped.code, 0);
    // An import from stdin refuses a terminal rather than wait for it in silence.
    const fromTerminal = await new Deno.Command("script", {
      args: [
        "-qec",
        [Deno.execPath(), ...purpleArgs(["import", "--backend", "memory"])].join(" "),
        "/dev/null",
      ],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    assert.equal(fromTerminal.code, 2);
    assert.match(
      decoder.decode(fromTerminal.stdout),
      /^purple: Cannot import from stdin: it is a terminal; give FILE, or pipe an export in/,
    );
    assert.ok(!piped.stderr.includes("\r") && !piped.stderr.includes("\x1b"), piped.stderr);
  },
});

Deno.test({
  name: "purple export --output leaves no file when it stops; to stdout it writes the lines",
  ignore: REDIS_MISSING !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const server = await startRedis();
    try {
      const ops = await openBackend({ kind: "redis", redisUrl: server.url });
      await ops.flagSet("beta", true);
      await ops.counterIncrement("hits", 3);
      await ops.close();
      // Something Purple cannot read, where its counters are: a hash, and a counter of text.
      const raw = new Redis({ port: server.port, host: "127.0.0.1", db: 1 });
      await raw.hset("a-hash", "field", "value");
      await raw.set("not-a-number", "abc");
      raw.disconnect();
      const file = `${await tempDir()}/out.jsonl`;
      const stopped = await purple([
        "export",
        "--backend",
        "redis",
        "--redis-url",
        server.url,
        "--output",
        file,
      ]);
      assert.equal(stopped.code, 1);
      assert.match(
        stopped.stderr,
        /^purple: Cannot export counters key '(a-hash|not-a-number)': .* \(with --skip-bad, such keys are left out and counted\)\n$/,
      );
      await assert.rejects(Deno.stat(file), Deno.errors.NotFound);
      assert.deepEqual([...Deno.readDirSync(file.replace(/\/[^/]+$/, ""))], []);
      const skipped = await purple([
        "export",
        "--backend",
        "redis",
        "--redis-url",
        server.url,
        "--skip-bad",
      ]);
      assert.equal(skipped.code, 0, skipped.stderr);
      const lines = skipped.stdout.split("\n");
      assert.deepEqual(lines.slice(1), [
        `{"service":"counters","key":"hits","value":"3"}`,
        `{"service":"flags","key":"beta","value":true}`,
        endLine(2),
        "",
      ]);
      assert.match(
        skipped.stderr,
        /; left out 2 keys: counters '(a-hash|not-a-number)' \(.*\), counters '(a-hash|not-a-number)' \(.*\)\n$/,
      );
      assert.match(skipped.stderr, /Redis holds another kind of value at this key/);
      assert.match(skipped.stderr, /the stored value 'abc' is not an int64 integer/);
    } finally {
      await server.stop();
    }
  },
});

/** Waits until `check` holds, polling every 10 ms, for at most 30 s. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what}: not within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** How many keys a Redis holds, in all its databases. */
async function redisKeys(raw: Redis): Promise<number> {
  const info = await raw.info("keyspace");
  return [...info.matchAll(/keys=(\d+)/g)].reduce((sum, [, keys]) => sum + Number(keys), 0);
}

// A signal reaches an export or import while it waits: for a Redis paused by `CLIENT PAUSE`
// (the export), or for more lines on stdin (the import). A SIGINT again 50 ms later is the same
// Ctrl+C delivered twice (`deno task` and `npx` forward the terminal's SIGINT to their child):
// it must not exit at once.
Deno.test({
  name:
    "purple export --output stopped by SIGINT (delivered twice, as a launcher does): the Stopped line, exit 1, no file; a second signal exits at once",
  ignore: REDIS_MISSING !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const server = await startRedis();
    const raw = new Redis({ port: server.port, host: "127.0.0.1" });
    try {
      const ops = await openBackend({ kind: "redis", redisUrl: server.url });
      await restoreAll(ops, dataset({ entries: 40_000, largeValues: 0, bigSets: 0 }));
      await ops.close();
      const dir = await tempDir();
      const file = `${dir}/out.jsonl`;
      /** Starts an export, and pauses the Redis once it is under way (1 MiB written). */
      const pausedExport = async () => {
        const program = start(
          Deno.execPath(),
          purpleArgs([
            "export",
            "--backend",
            "redis",
            "--redis-url",
            server.url,
            "--output",
            file,
          ]),
          { cwd: ROOT, env: { NO_COLOR: "1" }, name: "purple export" },
        );
        await until(async () => {
          const partial = [...Deno.readDirSync(dir)].find(({ name }) => name.includes(".partial-"));
          return partial !== undefined && (await Deno.stat(`${dir}/${partial.name}`)).size > 0;
        }, "the export writes its first MiB");
        // Shorter than the backend's 1000 ms timeout for a reply.
        await raw.call("CLIENT", "PAUSE", "600", "ALL");
        await new Promise((resolve) => setTimeout(resolve, 100)); // It waits for the Redis now.
        return program;
      };

      const program = await pausedExport();
      program.child.kill("SIGINT");
      await new Promise((resolve) => setTimeout(resolve, 50));
      program.child.kill("SIGINT");
      assert.equal(await program.exit(), 1, program.output());
      assert.match(
        program.output(),
        /^purple: Stopped by SIGINT: the export is not complete \([\d,]+ entries read\)$/m,
      );
      assert.ok(!program.output().includes("again"), program.output());
      assert.deepEqual([...Deno.readDirSync(dir)], [], "no file, partial or complete");

      // Two signals that are not one Ctrl+C: the second exits at once, saying so.
      const twice = await pausedExport();
      twice.child.kill("SIGTERM");
      await new Promise((resolve) => setTimeout(resolve, 50));
      twice.child.kill("SIGTERM");
      assert.equal(await twice.exit(), 1, twice.output());
      assert.match(twice.output(), /^Received SIGTERM again: exiting without waiting$/m);
    } finally {
      raw.disconnect();
      await server.stop();
    }
  },
});

/**
 * `purple import` into a Redis, from stdin written by the test: the header first, then
 * `batch(n)` writes 1000 flag lines (one batch) from the nth thousand.
 */
function importFromStdin(redisUrl: string) {
  const program = start(
    Deno.execPath(),
    purpleArgs(["import", "--backend", "redis", "--redis-url", redisUrl]),
    { cwd: ROOT, env: { NO_COLOR: "1" }, name: "purple import", stdin: "piped" },
  );
  const stdin = program.child.stdin.getWriter();
  const write = (text: string) => stdin.write(new TextEncoder().encode(text));
  const header = headerLine({
    exportedAt: new Date().toISOString(),
    backend: "memory",
    source: "a test",
    purple: "0.1.0",
  });
  const started = write(`${header}\n`);
  return {
    program,
    write,
    batch: async (n: number) => {
      await started;
      await write(Array.from({ length: 1000 }, (_, i) => `${flag(`f${n * 1000 + i}`)}\n`).join(""));
    },
    /** Ends stdin. */
    end: () => stdin.close().catch(() => {}),
    /** Ends stdin, and the import if it still runs. */
    close: async () => {
      await stdin.close().catch(() => {});
      if (!program.ended()) await program.stop("SIGKILL");
    },
  };
}

Deno.test({
  name:
    "purple import stopped by SIGINT (delivered twice, as a launcher does) finishes its batch and says how many entries it imported, exit 1",
  ignore: REDIS_MISSING !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const server = await startRedis();
    const raw = new Redis({ port: server.port, host: "127.0.0.1" });
    const running = importFromStdin(server.url);
    const { program } = running;
    try {
      // One batch: the import writes it, then waits for more lines.
      await running.batch(0);
      await until(async () => await redisKeys(raw) === 1000, "the first batch is written");
      program.child.kill("SIGINT");
      await new Promise((resolve) => setTimeout(resolve, 50));
      program.child.kill("SIGINT");
      await new Promise((resolve) => setTimeout(resolve, 100));
      // The next batch is read and written, then the import stops.
      await running.batch(1).catch(() => {});
      assert.equal(await program.exit(), 1, program.output());
      assert.match(
        program.output(),
        /^purple: Stopped by SIGINT at line 2001 of stdin: the 2,000 entries before it were imported$/m,
      );
      assert.equal(await redisKeys(raw), 2000);
    } finally {
      await running.close();
      raw.disconnect();
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "purple import stops when the backend fails a write: the line of the entry, the entries written before it, exit 1",
  ignore: REDIS_MISSING !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const server = await startRedis();
    const raw = new Redis({ port: server.port, host: "127.0.0.1" });
    const running = importFromStdin(server.url);
    const { program } = running;
    try {
      await running.batch(0);
      await until(async () => await redisKeys(raw) === 1000, "the first batch is written");
      // A Redis out of memory refuses every write (OOM) from now on.
      await raw.config("SET", "maxmemory", "1");
      await running.batch(1);
      await running.write(`${endLine(2000)}\n`);
      await running.end();
      assert.equal(await program.exit(), 1, program.output());
      assert.match(
        program.output(),
        /^purple: Cannot import line 1002 of stdin: .*Redis refused: OOM .* \(the 1,000 entries before it were imported; lines after it, up to line 2001, may be too\)$/m,
      );
    } finally {
      await raw.config("SET", "maxmemory", "0").catch(() => {});
      await running.close();
      raw.disconnect();
      await server.stop();
    }
  },
});

Deno.test({
  name: "export and import on a Redis Cluster: entries of every kind in and out, slot by slot",
  ignore: CLUSTER_MISSING !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const cluster = await startRedisCluster();
    try {
      const ops = await openBackend({ kind: "redis", redisUrl: cluster.url, redisCluster: true });
      const entries = [...dataset({ entries: 5000, largeValues: 2 })];
      const started = performance.now();
      await restoreAll(ops, entries);
      await restoreAll(ops, entries); // twice: the same state
      assertSameEntries(await snapshot(ops), snapshotOf(entries), performance.now() - started);
      await ops.close();
    } finally {
      await cluster.stop();
    }
  },
});

// ---------------------------------------------------------------------------------------------
// docs/export.md: its example runs as written.

Deno.test({
  name: "docs/export.md's example moves a disk directory into another, as written",
  sanitizeResources: false,
  fn: async () => {
    const doc = await Deno.readTextFile(`${ROOT}/docs/export.md`);
    const script = /<!-- tested -->\s*```sh\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(script, "docs/export.md has a tested sh block");
    const dir = await tempDir();
    const ops = await openBackend({ kind: "disk", dataDir: `${dir}/data` });
    const entries = [...dataset({ entries: 500, largeValues: 1, bigSets: 0 })];
    const started = performance.now();
    await restoreAll(ops, entries);
    await ops.close();
    const bin = `${dir}/bin`;
    await Deno.mkdir(bin);
    await Deno.writeTextFile(
      `${bin}/purple`,
      `#!/bin/sh\nexec '${Deno.execPath()}' run -A --unstable-kv '${ROOT}/mod.ts' "$@"\n`,
    );
    await Deno.chmod(`${bin}/purple`, 0o755);
    const result = await new Deno.Command("sh", {
      args: ["-ec", script],
      cwd: dir,
      env: { PATH: `${bin}:${Deno.env.get("PATH")}`, NO_COLOR: "1" },
    }).output();
    assert.equal(result.code, 0, decoder.decode(result.stderr));
    assertSameEntries(
      await diskSnapshot(`${dir}/data-copy`),
      snapshotOf(entries),
      performance.now() - started,
    );
    assertSameEntries(
      await diskSnapshot(`${dir}/data-via-pipe`),
      snapshotOf(entries),
      performance.now() - started,
    );
  },
});

Deno.test({
  name: "an import is seen by the backend's watchers, as any write (memory, disk, Redis)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const server = REDIS_MISSING === undefined ? await startRedis() : undefined;
    if (!server) console.error(`!!! the Redis case skipped: ${REDIS_MISSING} !!!`);
    try {
      const configs = [
        { kind: "memory" as const },
        { kind: "disk" as const, dataDir: await tempDir() },
        ...(server ? [{ kind: "redis" as const, redisUrl: server.url }] : []),
      ];
      for (const config of configs) {
        await t.step(config.kind, async () => {
          const ops = await openBackend(config);
          try {
            const changes = ops.watch({ kv: ["imported"], sets: ["team"] })[Symbol.asyncIterator]();
            const first = [(await changes.next()).value, (await changes.next()).value];
            assert.deepEqual(first.map((change) => change?.exists), [false, false]);
            // Redis reads a newly watched key again once its subscription is confirmed: let that
            // pass, so that only the import's own message can tell the watcher.
            await new Promise((resolve) => setTimeout(resolve, 500));
            await ops.restore([
              { service: "kv", key: "imported", value: new Uint8Array([1, 2, 3]) },
              { service: "sets", key: "team", value: ["ann", "bob"] },
            ]);
            const seen = new Map<string, unknown>();
            while (seen.size < 2) {
              let timer: ReturnType<typeof setTimeout> | undefined;
              const { value: change } = await Promise.race([
                changes.next(),
                new Promise<never>((_, reject) => {
                  timer = setTimeout(() => reject(new Error("no change within 5 s")), 5000);
                }),
              ]).finally(() => clearTimeout(timer));
              assert.ok(change?.exists, `${JSON.stringify(change)}`);
              seen.set(change.service, change.service === "kv" ? [...change.value] : change.items);
            }
            assert.deepEqual(Object.fromEntries(seen), { kv: [1, 2, 3], sets: ["ann", "bob"] });
            await changes.return?.();
          } finally {
            await ops.close();
          }
        });
      }
    } finally {
      await server?.stop();
    }
  },
});

// The README: its backend move (disk to Redis) runs as written, `npx -y deno@2 task start` being
// `deno run -A --unstable-kv mod.ts` (readme_test checks the start task), in a directory of its own
// (the default disk directory is data/ of the working directory).
Deno.test({
  name: "the README's move from disk to Redis runs as written",
  ignore: REDIS_MISSING !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const readme = await Deno.readTextFile(`${ROOT}/README.md`);
    const part = readme.slice(readme.indexOf("\n## Watching keys, moving data\n"));
    const script = /```sh\n(npx -y deno@2 task start export [^\n]*\n[^\n]*)\n```/.exec(part)?.[1];
    assert.ok(script, "the README's export and import commands");
    const dir = await tempDir();
    const ops = await openBackend({ kind: "disk", dataDir: `${dir}/data` });
    const entries = [...dataset({ entries: 300, largeValues: 1, bigSets: 0 })];
    const started = performance.now();
    await restoreAll(ops, entries);
    await ops.close();
    const server = await startRedis();
    try {
      const start = `'${Deno.execPath()}' run -A --unstable-kv '${ROOT}/mod.ts'`;
      const result = await new Deno.Command("sh", {
        args: [
          "-ec",
          script.replaceAll("npx -y deno@2 task start", start)
            .replaceAll("redis://localhost:6379", server.url),
        ],
        cwd: dir,
        env: { NO_COLOR: "1" },
      }).output();
      assert.equal(result.code, 0, decoder.decode(result.stderr));
      const redis = await openBackend({ kind: "redis", redisUrl: server.url });
      try {
        assertSameEntries(await snapshot(redis), snapshotOf(entries), performance.now() - started);
      } finally {
        await redis.close();
      }
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "(the temporary directories of the tests above are removed)",
  fn: async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup().catch(() => {});
  },
});
