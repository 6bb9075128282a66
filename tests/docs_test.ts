/**
 * The README and docs/ hold together: every relative link of README.md and docs/*.md reaches a
 * file or directory of the repository, every `#anchor` into a Markdown page a heading of it (as
 * GitHub makes anchors), and every page of docs/ is in the README's table of contents.
 */

import assert from "node:assert/strict";
import { dirname, join, normalize } from "node:path";
import { OPERATION_NAMES } from "@purple/protocol";
import { ROOT } from "./_process.ts";

/** README.md and every Markdown page of docs/, relative to the root. */
async function pages(): Promise<string[]> {
  const found = ["README.md"];
  for await (const entry of Deno.readDir(`${ROOT}/docs`)) {
    if (entry.isFile && entry.name.endsWith(".md")) found.push(`docs/${entry.name}`);
  }
  return found.sort();
}

/** A page's text without its fenced code blocks and inline code, where links are not links. */
function prose(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "").replace(/`[^`\n]*`/g, "");
}

/** The anchors GitHub gives a page's headings (`## The \`purple\` command`: `the-purple-command`). */
function anchors(text: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  const headings = text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "")
    .matchAll(/^#{1,6} (.+)$/gm);
  for (const [, heading] of headings) {
    const slug = heading.trim().toLowerCase()
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1") // a link in a heading: its text
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    found.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return found;
}

/** The targets of a page's inline links and images, `[text](target)`, but web addresses. */
function relativeLinks(text: string): string[] {
  return [...prose(text).matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?: "[^"]*")?\)/g)]
    .map(([, target]) => target)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

const PAGES = await pages();

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("docs: every relative link of the README and docs/ reaches a file, every #anchor a heading", async () => {
  const problems: string[] = [];
  let checked = 0;
  for (const page of PAGES) {
    const text = await Deno.readTextFile(`${ROOT}/${page}`);
    for (const link of relativeLinks(text)) {
      checked++;
      const [path, anchor] = link.split("#", 2);
      const target = path === "" ? page : normalize(join(dirname(page), decodeURI(path)));
      if (target.startsWith("..") || !await exists(`${ROOT}/${target}`)) {
        problems.push(`${page}: (${link}) names ${target}, which does not exist`);
        continue;
      }
      if (anchor === undefined || !target.endsWith(".md")) continue;
      if (!anchors(await Deno.readTextFile(`${ROOT}/${target}`)).has(anchor)) {
        problems.push(`${page}: (${link}) names #${anchor}, not a heading of ${target}`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked > 100, `only ${checked} links found: is the link pattern still right?`);
});

Deno.test("docs: every page of docs/ is in the README's table of contents", async () => {
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const start = readme.indexOf("\n## Documentation\n");
  assert.ok(start >= 0, "the README has its '## Documentation' section");
  const listed = new Set(relativeLinks(readme.slice(start)).map((link) => link.split("#")[0]));
  const missing = PAGES.filter((page) => page !== "README.md" && !listed.has(page));
  assert.deepEqual(missing, [], "add a row for each to the README's table");
});

Deno.test("docs: the anchors are GitHub's", () => {
  const text = [
    "# The `purple` command",
    "## Stopping: Ctrl+C from every start command",
    "```sh",
    "# a comment, not a heading",
    "```",
    "## The GOAWAY guard (Deno 2.9)",
    "## Examples",
    "### Examples",
  ].join("\n");
  assert.deepEqual([...anchors(text)], [
    "the-purple-command",
    "stopping-ctrlc-from-every-start-command",
    "the-goaway-guard-deno-29",
    "examples",
    "examples-1",
  ]);
});

Deno.test("docs: operations.md names every operation of the table", async () => {
  const page = await Deno.readTextFile(join(ROOT, "docs/operations.md"));
  for (const name of OPERATION_NAMES) {
    assert.match(page, new RegExp(`\`${name}[(\`]`), `docs/operations.md: ${name}`);
  }
});
