// The README's and the docs' examples, as written. Every curl example of the README's first steps,
// of docs/http.md's, docs/data-api.md's and docs/watch.md's examples, run with curl against a fresh
// `purple` on a free port (one per document and backend), must answer exactly as written
// (`# → status body`; a watch's `curl -N`, what it prints); the Deno examples of the README and
// docs/clients.md type-check, run against a fresh `purple` and print what they say (the README's
// with the permissions it names); the README opens with the commands CI and the Ctrl+C test run;
// its backend move runs in tests/export_import_test.ts; and docs/cli.md's table must list every
// flag of `purple --help` with the same variable.

import assert from "node:assert/strict";
import { OPERATIONS, WIRE_OPERATION_NAMES } from "@purple/protocol";
import { settingsTableRows } from "../server/config.ts";
import { startPurple } from "./_purple.ts";
import { ROOT } from "./_process.ts";

const read = (path: string) => Deno.readTextFile(`${ROOT}/${path}`);
const README = await read("README.md");
const HTTP = await read("docs/http.md");
const DATA_API = await read("docs/data-api.md");
const WATCH = await read("docs/watch.md");
const CLI = await read("docs/cli.md");

/** The text of a `## title` section, up to the next `## ` heading. */
function section(title: string, text = README): string {
  const start = text.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `the document has a '## ${title}' section`);
  const end = text.indexOf("\n## ", start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

interface Example {
  command: string;
  /** The status; absent for a `curl -N` stream, whose whole output is `body`. */
  status?: number;
  body: string;
}

/**
 * The `curl ...` lines of a section's sh blocks, each with the `# → ...` line after it; or, for a
 * `curl -N` (a watch's event stream, cut by `--max-time`), the `#` lines after it: what it prints.
 */
function examples(text: string): Example[] {
  const found: Example[] = [];
  const blocks = text.split("```sh\n").slice(1).map((block) => block.split("```")[0]);
  for (const block of blocks) {
    const lines = block.split("\n");
    lines.forEach((line, i) => {
      if (!line.startsWith("curl ")) return;
      if (line.startsWith("curl -N ")) {
        const printed: string[] = [];
        for (let j = i + 1; lines[j]?.startsWith("#"); j++) printed.push(lines[j].slice(2));
        assert.ok(printed.length > 0, `the document gives what this prints: ${line}`);
        found.push({ command: line, body: printed.join("\n") });
        return;
      }
      const answer = /^# → (\d{3})(?: (.*))?$/.exec(lines[i + 1] ?? "");
      assert.ok(answer, `the document gives the answer of: ${line}`);
      found.push({ command: line, status: Number(answer[1]), body: answer[2] ?? "" });
    });
  }
  return found;
}

/** The documents whose examples run, each against a purple of its own. */
const DOCUMENTS = [
  { name: "README", examples: examples(section("Try it")) },
  { name: "docs/http.md", examples: examples(section("Examples", HTTP)) },
  { name: "docs/data-api.md", examples: examples(section("Examples", DATA_API)) },
  { name: "docs/watch.md", examples: examples(section("Examples", WATCH)) },
];

Deno.test("the README and docs/http.md, data-api.md, watch.md have a curl example of every route", () => {
  const all = DOCUMENTS.flatMap((document) => document.examples);
  const routes = new Set(all.map(({ command }) => {
    const method = /-X (\w+)/.exec(command)?.[1] ?? "GET";
    const path = /localhost:8080(\/[a-z]*)/.exec(command)![1];
    return `${method} ${path}`;
  }));
  // Every route of the operation table, by method and first segment, and /ping.
  const table = WIRE_OPERATION_NAMES.map((name) => {
    const { method, path } = OPERATIONS[name].http;
    return `${method} /${path.split("/")[1]}`;
  });
  for (const route of new Set(["GET /ping", ...table])) {
    assert.ok(routes.has(route), `an example of ${route}`);
  }
});

const curl = await new Deno.Command("curl", { args: ["--version"] }).output().catch(() => null);
if (curl === null) console.error("!!! SKIPPING the docs' curl examples: curl is not on PATH !!!");

for (const { name, examples: EXAMPLES } of DOCUMENTS) {
  for (const backend of ["memory", "disk"]) {
    Deno.test({
      name: `every curl example of ${name} answers as written (${backend} backend)`,
      ignore: curl === null,
      async fn(t) {
        const dataDir = await Deno.makeTempDir({ prefix: "purple_readme_" });
        const purple = await startPurple([
          "http",
          "--port",
          "0",
          "--backend",
          backend,
          "--data-dir",
          dataDir,
        ]);
        try {
          for (const example of EXAMPLES) {
            await t.step(example.command, async () => {
              const command = example.command.replaceAll(
                "localhost:8080",
                `127.0.0.1:${purple.httpPort}`,
              );
              if (example.status === undefined) {
                // A stream, ended by its --max-time (curl's exit code 28; 0 after `& ...; wait`):
                // all it printed.
                const { code, stdout } = await new Deno.Command("sh", {
                  args: ["-c", command],
                  stderr: "null",
                }).output();
                assert.ok(
                  code === 28 || (code === 0 && command.endsWith("; wait")),
                  `exit ${code}`,
                );
                const lines = new TextDecoder().decode(stdout).split("\n")
                  .filter((line) => line !== ": heartbeat");
                assert.equal(lines.join("\n").trimEnd(), example.body.trimEnd());
                return;
              }
              const { success, stdout, stderr } = await new Deno.Command("sh", {
                args: ["-c", `${command} --silent --show-error --write-out '\\n%{http_code}'`],
              }).output();
              assert.ok(success, new TextDecoder().decode(stderr));
              const output = new TextDecoder().decode(stdout);
              const cut = output.lastIndexOf("\n");
              assert.equal(Number(output.slice(cut + 1)), example.status, output);
              assert.equal(output.slice(0, cut), example.body);
            });
          }
        } finally {
          const { code } = await purple.stop();
          assert.equal(code, 0);
          await Deno.remove(dataDir, { recursive: true });
        }
      },
    });
  }
}

Deno.test("docs/cli.md's table is the settings table: every flag, variable, default, meaning", () => {
  const cells = (row: string) => row.split("|").slice(1, -1).map((cell) => cell.trim());
  const rows = section("Flags and variables", CLI).split("\n")
    .filter((line) => /^\| `-/.test(line))
    .map(cells);
  assert.deepEqual(rows, settingsTableRows().map(cells));
});

/** The fenced blocks of a language in a text, each without its fences. */
function blocks(language: string, text: string): string[] {
  return text.split(`\n\`\`\`${language}\n`).slice(1).map((block) => block.split("\n```")[0]);
}

Deno.test("the README opens with the two commands: the one CI runs and one the Ctrl+C test types", async () => {
  assert.equal(
    blocks("sh", README)[0],
    [
      "# Run Purple (disk backend, HTTP on 8080 and gRPC on 8081)",
      "npx -y deno@2 task start",
      "# Run the whole test suite (format, lint, type-check, every test)",
      "npx -y deno@2 task test",
    ].join("\n"),
  );
  const ci = await read(".ci/run");
  assert.match(ci, /^npx -y deno@2 task test 2>&1 \| tee "\$log"/m, "CI runs the test command");
  const ctrlC = await read("tests/ctrl_c_test.ts");
  assert.match(ctrlC, /argv: \["npx", "-y", "deno@2", "task", "start", \.\.\.ARGS\]/);
  const deno = JSON.parse(await read("deno.json"));
  assert.equal(deno.tasks.start, "deno run -A --unstable-kv mod.ts");
  assert.match(deno.tasks.test, /^deno task check && deno test /);
});

/** Runs a TypeScript example with `deno run` and the given flags, from a file inside the checkout. */
async function runExample(
  example: string,
  flags: string[],
  purple: { httpPort?: number; grpcPort?: number },
): Promise<{ code: number; stdout: string; stderr: string }> {
  await Deno.mkdir(`${ROOT}/.tmp`, { recursive: true });
  // Inside the checkout, where the workspace resolves @purple/client.
  const file = await Deno.makeTempFile({ dir: `${ROOT}/.tmp`, prefix: "example_", suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      file,
      example
        .replaceAll("http://localhost:8080", `http://127.0.0.1:${purple.httpPort}`)
        .replaceAll('"localhost:8081"', `"127.0.0.1:${purple.grpcPort}"`),
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, file],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
    }).output();
    const decoder = new TextDecoder();
    return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
  } finally {
    await Deno.remove(file);
  }
}

/** What an example's `console.log(...); // shown` lines say they print, spaces left out. */
function shown(example: string): string[] {
  return [...example.matchAll(/^console\.log\(.*\); \/\/ (.*)$/gm)]
    .map(([, out]) => out.replaceAll(" ", ""));
}

/** Whether `expected` appear in `lines` in that order (other lines between them allowed). */
function inOrder(lines: string[], expected: string[]): boolean {
  let next = 0;
  for (const line of lines) if (line === expected[next]) next++;
  return next === expected.length;
}

Deno.test("the Deno examples of the README and docs/clients.md run and print what they say", async (t) => {
  const purple = await startPurple(["--backend", "memory", "--http-port", "0", "--grpc-port", "0"]);
  try {
    await t.step(
      "the README's, with the permissions it names (and not without --allow-env)",
      async () => {
        const [example] = blocks("ts", README);
        const [command] = example.split("\n");
        assert.equal(command, "// deno run --allow-net --allow-env example.ts");
        const expected = shown(example);
        assert.equal(expected.length, 2);
        const { code, stdout, stderr } = await runExample(
          example,
          ["--check", "--allow-net", "--allow-env"],
          purple,
        );
        assert.equal(code, 0, stderr);
        const printed = stdout.trim().split("\n").map((line) => line.replaceAll(" ", ""));
        assert.deepEqual(printed, expected);
        // As the README says: GrpcClient needs --allow-env in Deno, for grpc-js.
        const netOnly = await runExample(example, ["--allow-net"], purple);
        assert.notEqual(netOnly.code, 0);
        assert.match(netOnly.stderr, /env access to "GRPC_NODE_VERBOSITY"/);
      },
    );
    const CLIENTS = await read("docs/clients.md");
    const programs = blocks("ts", CLIENTS).filter((block) => block.startsWith("import "));
    assert.equal(programs.length, 2, "docs/clients.md's HttpClient and GrpcClient examples");
    for (const example of programs) {
      await t.step(`docs/clients.md: ${/^import \{ (\w+)/.exec(example)![1]}`, async () => {
        const { code, stdout, stderr } = await runExample(
          example,
          ["--check", "--allow-net", "--allow-env"],
          purple,
        );
        assert.equal(code, 0, stderr);
        const printed = stdout.trim().split("\n").map((line) => line.replaceAll(" ", ""));
        assert.ok(inOrder(printed, [...shown(example), "notcached"]), stdout);
      });
    }
  } finally {
    assert.equal((await purple.stop()).code, 0);
  }
});

Deno.test({
  name: "the README's watch with curl -N prints the events it shows, around the write it names",
  ignore: curl === null,
  async fn() {
    const text = section("Watching keys, moving data");
    const prose = text.replaceAll(/\s+/g, " ");
    assert.ok(prose.includes('runs `curl -X PUT "localhost:8080/flags/dark-mode?value=false"`'));
    const [block] = blocks("sh", text);
    const [command, ...shownLines] = block.split("\n");
    assert.match(command, /^curl -N /);
    const expected = shownLines.map((line) => line.replace(/^# /, ""));
    const purple = await startPurple(["http", "--port", "0", "--backend", "memory"]);
    const base = `http://127.0.0.1:${purple.httpPort}`;
    const watching = new Deno.Command("sh", {
      args: ["-c", `exec ${command.replaceAll("localhost:8080", base.slice(7))} --silent`],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    try {
      // The state the README's "Try it" left: the flag set to true.
      assert.equal(
        (await fetch(`${base}/flags/dark-mode?value=true`, { method: "PUT" })).status,
        204,
      );
      const lines = watching.stdout.pipeThrough(new TextDecoderStream()).values();
      const printed: string[] = [];
      let buffered = "";
      const dataLines = () => printed.filter((line) => line.startsWith("data:")).length;
      const readUntil = async (count: number) => {
        while (dataLines() < count) {
          const { done, value } = await lines.next();
          assert.ok(!done, `curl ended early: ${printed.join("\n")}`);
          buffered += value;
          const parts = buffered.split("\n");
          buffered = parts.pop()!;
          printed.push(...parts.filter((line) => line !== "" && !line.startsWith(":")));
        }
      };
      await readUntil(1);
      const put = await fetch(`${base}/flags/dark-mode?value=false`, { method: "PUT" });
      assert.equal(put.status, 204);
      await readUntil(2);
      assert.deepEqual(printed, expected);
    } finally {
      watching.kill("SIGTERM");
      await watching.status;
      await watching.stdout.cancel().catch(() => {});
      assert.equal((await purple.stop()).code, 0);
    }
  },
});

Deno.test("the README's watch from both clients prints what its comments say", async () => {
  const purple = await startPurple(["--backend", "memory", "--http-port", "0", "--grpc-port", "0"]);
  try {
    const example = blocks("ts", section("Watching keys, moving data"))[0];
    assert.equal(example.split("\n")[0], "// deno run --allow-net --allow-env watch.ts");
    const comments = [...example.matchAll(/^await follow\(.*\); \/\/ (.*)$/gm)]
      .flatMap(([, out]) => out.split(", "));
    assert.deepEqual(comments, ["signups = 0", "signups = 1", "logins = 0", "logins = 1"]);
    // Type-checked too: a change's value is narrowed to the watched service's type.
    const { code, stdout, stderr } = await runExample(
      example,
      ["--check", "--allow-net", "--allow-env"],
      purple,
    );
    assert.equal(code, 0, stderr);
    assert.deepEqual(stdout.trim().split("\n"), comments);
  } finally {
    assert.equal((await purple.stop()).code, 0);
  }
});
