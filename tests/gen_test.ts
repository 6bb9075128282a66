// The generated wire format is not stale: `deno task gen` run again on proto/ gives exactly the
// committed protocol/gen/ (the same files, byte for byte). proto/purple.proto is the only source;
// a change to it without `deno task gen` fails here.

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { ROOT, run } from "./_process.ts";

/** Every file under `dir`, relative to it, sorted. */
async function files(dir: string, sub = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(`${dir}/${sub}`)) {
    const path = sub === "" ? entry.name : `${sub}/${entry.name}`;
    if (entry.isDirectory) found.push(...await files(dir, path));
    else found.push(path);
  }
  return found.sort();
}

Deno.test("protocol/gen is what deno task gen makes of proto/ (run it after changing a proto)", async () => {
  const out = await Deno.makeTempDir({ prefix: "purple-gen-" });
  try {
    // The gen task's own command, with the output under `out` instead of the repository.
    const [command, ...args] = denoJson.tasks.gen.split(" ");
    assert.equal(command, "deno");
    const generated = await run(Deno.execPath(), [...args, "--output", out], { cwd: ROOT });
    assert.equal(generated.code, 0, generated.stdout + generated.stderr);
    const fresh = `${out}/protocol/gen`;
    const committed = `${ROOT}/protocol/gen`;
    assert.deepEqual(await files(committed), await files(fresh), "the same files");
    for (const file of await files(fresh)) {
      assert.equal(
        await Deno.readTextFile(`${committed}/${file}`),
        await Deno.readTextFile(`${fresh}/${file}`),
        `protocol/gen/${file} is stale: run deno task gen`,
      );
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
