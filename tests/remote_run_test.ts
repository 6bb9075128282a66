/**
 * `deno run -A jsr:@purple/server`, as a remote user types it: no `--unstable-kv`, no config
 * file of ours. JSR is out of reach here, so the test plays its part: it takes the files that
 * `deno publish --dry-run` lists for every package, rewrites their bare specifiers to full ones
 * as `deno publish` does (`hono` to `npm:hono@^4.12.0`, `@purple/protocol/errors` to the protocol
 * package's file), serves them over HTTP on 127.0.0.1, and runs the entry from that URL with
 * `deno run -A --no-config`.
 */

import assert from "node:assert/strict";
import { ROOT, run, start } from "./_process.ts";
import { type PackageConfig, PACKAGES, publishDryRun, readConfig } from "./_publish.ts";
import { RELAUNCHED_VARIABLE } from "../server/_relaunch.ts";

const RELAUNCH_LINE = "purple: the disk backend needs Deno KV, which takes --unstable-kv: " +
  "running again with it (add --unstable-kv to skip this step)";

/** Rewrites the specifiers of one module as `deno publish` does, through `resolve`. */
function unfurl(
  source: string,
  file: string,
  resolve: (specifier: string) => string | undefined,
): string {
  const rewrite = (specifier: string) => {
    if (/^(\.{1,2}\/|node:|npm:|jsr:|https?:)/.test(specifier)) return specifier;
    const resolved = resolve(specifier);
    if (resolved === undefined) throw new Error(`${file}: no mapping for '${specifier}'`);
    return resolved;
  };
  // Line by line, leaving comments (JSDoc examples import "@purple/server") alone.
  return source.split("\n").map((line) =>
    /^\s*(\*|\/\/|\/\*)/.test(line) ? line : line.replace(
      /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)"([^"]+)"/g,
      (_, head, specifier) => `${head}"${rewrite(specifier)}"`,
    )
  ).join("\n");
}

/** Maps a bare specifier through an import map's exact and npm-prefix entries. */
function throughImports(imports: Record<string, string>, specifier: string): string | undefined {
  if (imports[specifier] !== undefined) return imports[specifier];
  for (const [key, value] of Object.entries(imports)) {
    if (specifier.startsWith(`${key}/`) && value.startsWith("npm:")) {
      return `${value}${specifier.slice(key.length)}`;
    }
  }
  return undefined;
}

/** Where each package is laid out under the site. */
const SITE_DIRS: Record<string, string> = {
  "@purple/server": "server",
  "@purple/client": "client",
  "@purple/protocol": "protocol",
};

/** Lays out every package, as published, under `site/` and serves it; returns the base URL. */
async function servePackages(site: string): Promise<{ base: string; close(): Promise<void> }> {
  const server$ = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    try {
      const body = await Deno.readFile(`${site}${path}`);
      const type = path.endsWith(".json")
        ? "application/json"
        : path.endsWith(".ts")
        ? "application/typescript"
        : "text/plain";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const base = `http://127.0.0.1:${server$.addr.port}`;
  try {
    await layOut(site, base);
  } catch (error) {
    await server$.shutdown();
    throw error;
  }
  return { base, close: () => server$.shutdown() };
}

/** Writes the files of every package under `site`, their specifiers unfurled against `base`. */
async function layOut(site: string, base: string): Promise<void> {
  const configs: Record<string, PackageConfig> = {};
  for (const [name, dir] of Object.entries(PACKAGES)) configs[name] = await readConfig(dir);
  /** A module of one of the packages (`@purple/protocol/errors`), by its export. */
  const packageFile = (specifier: string) => {
    const name = Object.keys(PACKAGES).find((name) =>
      specifier === name || specifier.startsWith(`${name}/`)
    );
    if (name === undefined) return undefined;
    const path = configs[name].exports[`.${specifier.slice(name.length)}`];
    return path === undefined ? undefined : `${base}/${SITE_DIRS[name]}/${path.slice(2)}`;
  };
  for (const [name, dir] of Object.entries(PACKAGES)) {
    const { code, output, files } = await publishDryRun(dir);
    assert.equal(code, 0, output);
    for (const file of files) {
      const inPackage = dir === "." ? file : file.slice(dir.length + 1);
      const target = `${site}/${SITE_DIRS[name]}/${inPackage}`;
      await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
      if (!file.endsWith(".ts")) {
        await Deno.copyFile(`${ROOT}/${file}`, target);
        continue;
      }
      const resolve = (specifier: string) =>
        specifier.startsWith("@purple/")
          ? packageFile(specifier)
          : throughImports(configs[name].imports ?? {}, specifier);
      await Deno.writeTextFile(
        target,
        unfurl(await Deno.readTextFile(`${ROOT}/${file}`), file, resolve),
      );
    }
  }
}

/** Drops what Deno cached of the modules this test served (sources and their transpiled form). */
async function forgetServed(base: string): Promise<void> {
  const { stdout } = await run(Deno.execPath(), ["info", "--json"]);
  const { modulesCache, typescriptCache } = JSON.parse(stdout);
  const host = new URL(base).host.replace(":", "_PORT");
  for (const cache of [modulesCache, typescriptCache]) {
    await Deno.remove(`${cache}/http/${host}`, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name: "deno run -A (no --unstable-kv, no config) of the published entry serves the disk backend",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "purple-remote-" });
    await Deno.mkdir(`${dir}/cwd`);
    const site = await servePackages(`${dir}/site`).catch(async (error) => {
      await Deno.remove(dir, { recursive: true });
      throw error;
    });
    const entry = `${site.base}/server/mod.ts`;
    const dataDir = `${dir}/data`;
    const purple = (deno: string[], args: string[], env: Record<string, string> = {}) =>
      start(Deno.execPath(), ["run", ...deno, "--no-config", entry, ...args], {
        cwd: `${dir}/cwd`,
        env: { NO_COLOR: "1", ...env },
      });
    const serveArgs = ["--data-dir", dataDir, "--http-port", "0", "--grpc-port", "0"];
    try {
      await t.step(
        "it restarts itself once with --unstable-kv, serves, and stops on SIGTERM",
        async () => {
          const first = purple(["-A"], serveArgs);
          await first.line(/^Starting up the gRPC server on port \d+$/);
          const [, port] = await first.line(/^Starting up the HTTP server on port (\d+)$/);
          const put = await fetch(`http://127.0.0.1:${port}/counters/remote?increment=5`, {
            method: "PUT",
          });
          assert.deepEqual(await put.json(), { counter: "remote", value: 5 });
          await Deno.stat(`${dataDir}/purple.sqlite3`);
          assert.equal(await first.stop("SIGTERM"), 0);
          assert.equal(first.lines.filter((line) => line === RELAUNCH_LINE).length, 1);
          assert.ok(first.lines.includes("Stopped"), first.lines.join("\n"));
        },
      );

      await t.step("the data is on disk, and Ctrl+C (SIGINT) stops it too", async () => {
        const again = purple(["-A"], serveArgs);
        const [, port] = await again.line(/^Starting up the HTTP server on port (\d+)$/);
        const get = await fetch(`http://127.0.0.1:${port}/counters/remote`);
        assert.deepEqual(await get.json(), { counter: "remote", value: 5 });
        await again.line(/^Starting up the gRPC server on port \d+$/);
        assert.equal(await again.stop("SIGINT"), 0);
        assert.ok(again.lines.includes("Stopped"), again.lines.join("\n"));
        assert.ok(!again.lines.some((line) => /again: exiting without waiting/.test(line)));
      });

      await t.step(
        "export and import restart themselves too; the import still reads stdin",
        async () => {
          const command = (args: string[]) =>
            [Deno.execPath(), "run", "-A", "--no-config", entry, ...args]
              .map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(" ");
          const copy = `${dir}/copy`;
          const piped = await new Deno.Command("sh", {
            args: [
              "-c",
              `${command(["export", "--data-dir", dataDir])} | ${
                command(["import", "--data-dir", copy])
              }`,
            ],
            cwd: `${dir}/cwd`,
            env: { NO_COLOR: "1" },
          }).output();
          const stderr = new TextDecoder().decode(piped.stderr);
          assert.equal(piped.code, 0, stderr);
          assert.equal(
            stderr.split("\n").filter((line) => line === RELAUNCH_LINE).length,
            2,
            stderr,
          );
          assert.match(stderr, /^Imported 1 entry \(/m);
          const kv = await Deno.openKv(`${copy}/purple.sqlite3`);
          assert.equal((await kv.get(["counter", "remote"])).value, 5n);
          kv.close();
        },
      );

      await t.step("the memory backend starts at once, without restarting", async () => {
        const memory = purple(["-A"], [
          "--backend",
          "memory",
          "--http-port",
          "0",
          "--grpc-port",
          "0",
        ]);
        await memory.line(/^Starting up the gRPC server on port \d+$/);
        assert.equal(await memory.stop(), 0);
        assert.ok(!memory.lines.includes(RELAUNCH_LINE));
      });

      await t.step("with narrower permissions it says in one line what to add", async () => {
        const host = new URL(site.base).host;
        const narrow = purple(
          ["--allow-net", "--allow-env", "--allow-read", "--allow-write", `--allow-import=${host}`],
          serveArgs,
        );
        assert.equal(await narrow.exit(), 2);
        const said = narrow.lines.filter((line) => line.startsWith("purple:"));
        assert.deepEqual(said, [
          "purple: Cannot open the disk backend: Deno KV is unavailable; run Deno with --unstable-kv",
        ]);
      });

      await t.step("the restarted process never restarts again", async () => {
        const guarded = purple(["-A"], serveArgs, { [RELAUNCHED_VARIABLE]: "1" });
        assert.equal(await guarded.exit(), 2);
        assert.ok(!guarded.lines.includes(RELAUNCH_LINE));
        assert.ok(
          guarded.lines.includes(
            "purple: Cannot open the disk backend: Deno KV is unavailable; run Deno with --unstable-kv",
          ),
          guarded.lines.join("\n"),
        );
      });
    } finally {
      await site.close();
      await forgetServed(site.base);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
