// Every curl example of the README's HTTP section and of docs/data-api.md's examples, run with curl
// against a fresh `purple` on a free port (one per document and backend), must answer exactly as
// written (`# → status body`); and the README's CLI table must list every flag of `purple --help`
// with the same variable.

import assert from "node:assert/strict";
import { settingsTableRows } from "../server/config.ts";
import { startPurple } from "./_purple.ts";

const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));
const DATA_API = await Deno.readTextFile(new URL("../docs/data-api.md", import.meta.url));

/** The text of a `## title` section, up to the next `## ` heading. */
function section(title: string, text = README): string {
  const start = text.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `the document has a '## ${title}' section`);
  const end = text.indexOf("\n## ", start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

interface Example {
  command: string;
  status: number;
  body: string;
}

/** The `curl ...` lines of a section's sh blocks, each with the `# → ...` line after it. */
function examples(text: string): Example[] {
  const found: Example[] = [];
  const blocks = text.split("```sh\n").slice(1).map((block) => block.split("```")[0]);
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

/** The documents whose examples run, each against a purple of its own. */
const DOCUMENTS = [
  { name: "README", examples: examples(section("HTTP")) },
  { name: "docs/data-api.md", examples: examples(section("Examples", DATA_API)) },
];

Deno.test("the README's HTTP section and docs/data-api.md have a curl example for every route", () => {
  const all = DOCUMENTS.flatMap((document) => document.examples);
  const routes = new Set(all.map(({ command }) => {
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
      "DELETE /cache",
      "DELETE /counters",
      "DELETE /flags",
      "POST /batch",
    ]
  ) {
    assert.ok(routes.has(route), `an example of ${route}`);
  }
});

const curl = await new Deno.Command("curl", { args: ["--version"] }).output().catch(() => null);
if (curl === null) console.error("!!! SKIPPING the README curl examples: curl is not on PATH !!!");

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

Deno.test("the README's CLI table is the settings table: every flag, variable, default, meaning", () => {
  const cells = (row: string) => row.split("|").slice(1, -1).map((cell) => cell.trim());
  const rows = section("The `purple` command").split("\n")
    .filter((line) => /^\| `-/.test(line))
    .map(cells);
  assert.deepEqual(rows, settingsTableRows().map(cells));
});
