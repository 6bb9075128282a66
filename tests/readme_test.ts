// Every curl example of the README's HTTP section, run with curl against a fresh `purple` on a free
// port, must answer exactly as the README says (`# → status body`); and the README's CLI table
// must list every flag of `purple --help` with the same variable.

import assert from "node:assert/strict";
import { HELP } from "../server/cli.ts";
import { startPurple } from "./_purple.ts";

const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));

/** The text of a `## title` section, up to the next `## ` heading. */
function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `README has a '## ${title}' section`);
  const end = README.indexOf("\n## ", start + 1);
  return README.slice(start, end < 0 ? undefined : end);
}

interface Example {
  command: string;
  status: number;
  body: string;
}

/** The `curl ...` lines of the section's sh blocks, each with the `# → ...` line after it. */
function examples(): Example[] {
  const found: Example[] = [];
  const blocks = section("HTTP").split("```sh\n").slice(1).map((block) => block.split("```")[0]);
  for (const block of blocks) {
    const lines = block.split("\n");
    lines.forEach((line, i) => {
      if (!line.startsWith("curl ")) return;
      const answer = /^# → (\d{3})(?: (.*))?$/.exec(lines[i + 1] ?? "");
      assert.ok(answer, `the README gives the answer of: ${line}`);
      found.push({ command: line, status: Number(answer[1]), body: answer[2] ?? "" });
    });
  }
  return found;
}

const EXAMPLES = examples();

Deno.test("the README's HTTP section has a curl example for every route", () => {
  const routes = new Set(EXAMPLES.map(({ command }) => {
    const method = /-X (\w+)/.exec(command)?.[1] ?? "GET";
    const path = /localhost:8080(\/[a-z]*)/.exec(command)![1];
    return `${method} ${path}`;
  }));
  for (
    const route of [
      "GET /ping",
      "GET /cache",
      "PUT /cache",
      "GET /counters",
      "PUT /counters",
      "GET /flags",
      "PUT /flags",
      "GET /kv",
      "PUT /kv",
      "DELETE /kv",
      "GET /sets",
      "PUT /sets",
      "DELETE /sets",
    ]
  ) {
    assert.ok(routes.has(route), `an example of ${route}`);
  }
});

const curl = await new Deno.Command("curl", { args: ["--version"] }).output().catch(() => null);
if (curl === null) console.error("!!! SKIPPING the README curl examples: curl is not on PATH !!!");

for (const backend of ["memory", "disk"]) {
  Deno.test({
    name: `every curl example of the README answers as written (${backend} backend)`,
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

/** The Redis backend's own flags are documented in docs/redis.md's settings table. */
const REDIS_DOC = await Deno.readTextFile(new URL("../docs/redis.md", import.meta.url));

Deno.test("the README's CLI table lists every flag of purple --help with its variable", () => {
  const table = section("The `purple` command");
  const flags = [...HELP.matchAll(/^ {2}(--[a-z-]+)[^\n[]*\[([A-Z_]+)/gm)];
  assert.ok(flags.length >= 11, `found ${flags.length} flags in HELP`);
  for (const [, flag, variable] of flags) {
    const rows = flag.startsWith("--redis-") && flag !== "--redis-url"
      ? REDIS_DOC.split("\n")
      : table.split("\n");
    const row = rows.find((line) =>
      line.startsWith(`| \`${flag} `) ||
      line.startsWith(`| \`${flag}\``)
    );
    assert.ok(row, `the README's table (docs/redis.md for --redis-*) has a row for ${flag}`);
    assert.ok(row.includes(`\`${variable}\``), `${flag} is set by ${variable}`);
  }
});
