/**
 * `deno task compile`: a single `purple` executable. The test runs the task's `deno compile`
 * (into a temporary directory) and then the executable: start, one request, SIGTERM, exit 0.
 *
 * `deno compile` downloads the Deno runtime it embeds (denort) from dl.deno.land. Where that
 * host cannot be reached, the executable test is skipped with one loud line; any other
 * failure of `deno compile` fails the test. The task's permissions are checked either way, by
 * `deno run` with the same flags.
 */

import assert from "node:assert/strict";
import { ROOT, run, start } from "./_process.ts";

const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
const TASK: string = config.tasks.compile;
const WORDS = TASK.split(/\s+/);

/** The task's flags for the runtime (permissions and unstable features), for `deno run`. */
const RUNTIME_FLAGS = WORDS.filter((word) => /^--(allow|unstable)-/.test(word));

/** `deno compile` failing only because the denort download could not connect. */
const DENORT_UNREACHABLE =
  /Setting up base binary\.[\s\S]*error sending request for url \((https:\/\/dl\.deno\.land\/release\/v[^/]+\/denort-[^)]+)\): client error \(Connect\)/;

const dir = await Deno.makeTempDir({ prefix: "purple-compile-" });
const binary = `${dir}/purple`;
const compiled = await run(
  Deno.execPath(),
  WORDS.slice(1).map((word, index, words) => words[index - 1] === "--output" ? binary : word),
  { env: { NO_COLOR: "1" } },
);
const unreachable = compiled.code === 0 ? null : DENORT_UNREACHABLE.exec(compiled.stderr);
if (unreachable) {
  console.error(
    `\n!!! SKIPPING THE COMPILED purple TEST: deno compile cannot download the Deno runtime ` +
      `from ${unreachable[1]} (no connection to dl.deno.land from here) !!!\n`,
  );
  await Deno.remove(dir, { recursive: true });
}

Deno.test("deno task compile builds ./purple from mod.ts with --unstable-kv", () => {
  assert.deepEqual(WORDS.slice(0, 2), ["deno", "compile"]);
  assert.equal(WORDS.at(-1), "mod.ts");
  assert.equal(WORDS[WORDS.indexOf("--output") + 1], "purple");
  assert.ok(RUNTIME_FLAGS.includes("--unstable-kv"));
});

Deno.test("./purple is ignored by git", async () => {
  const ignored = await run("git", ["check-ignore", "-q", "purple"]);
  assert.equal(ignored.code, 0);
});

Deno.test("the compile task's permissions serve the disk backend over HTTP and gRPC", async () => {
  const data = await Deno.makeTempDir({ prefix: "purple-compile-data-" });
  const purple = start(Deno.execPath(), [
    "run",
    ...RUNTIME_FLAGS,
    `${ROOT}/mod.ts`,
    "--data-dir",
    data,
    "--http-port",
    "0",
    "--grpc-port",
    "0",
  ]);
  try {
    const [, port] = await purple.line(/^Starting up the HTTP server on port (\d+)$/);
    await purple.line(/^Starting up the gRPC server on port \d+$/);
    const answer = await fetch(`http://127.0.0.1:${port}/flags/compiled?value=true`, {
      method: "PUT",
    });
    assert.equal(answer.status, 204);
    assert.equal(await purple.stop(), 0);
  } finally {
    await purple.stop();
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test({
  name: "the compiled purple starts, answers, and exits with 0 on SIGTERM",
  ignore: unreachable !== null,
  async fn() {
    try {
      assert.equal(compiled.code, 0, `deno compile failed:\n${compiled.stderr}`);
      const purple = start(binary, [
        "--data-dir",
        `${dir}/data`,
        "--http-port",
        "0",
        "--grpc-port",
        "0",
      ], { cwd: dir });
      try {
        const [, port] = await purple.line(/^Starting up the HTTP server on port (\d+)$/);
        await purple.line(/^Starting up the gRPC server on port \d+$/);
        const answer = await fetch(`http://127.0.0.1:${port}/counters/compiled?increment=2`, {
          method: "PUT",
        });
        assert.deepEqual(await answer.json(), { counter: "compiled", value: 2 });
        assert.equal(await purple.stop("SIGTERM"), 0);
        assert.ok(purple.lines.includes("Stopped"), purple.lines.join("\n"));
      } finally {
        await purple.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
