/**
 * The three JSR packages, @purple/server (the repository root), @purple/client (client/) and
 * @purple/protocol (protocol/, what both share): `deno publish --dry-run` passes, they upload what
 * they should and nothing else, the client holds no server code and its main entry no
 * dependency, and their docs pass `deno doc --lint`.
 */

import assert from "node:assert/strict";
import { ROOT, run } from "./_process.ts";
import { PACKAGES, publishDryRun, readConfig } from "./_publish.ts";

/** What neither package may upload. */
const NEVER = [
  /(^|\/)tests?\//,
  /_test\.ts$/,
  /(^|\/)testdata\//,
  /^data\//,
  /^node_modules\//,
  /^\.tmp\//,
  /^bench\//,
  /^examples\//,
  /^deploy\//,
  /^bin\//,
  /^\.ci\//,
  /^Dockerfile$/,
  /^docker-compose\.yml$/,
  /^\.dockerignore$/,
  /^Procfile$/,
  /^heroku\.yml$/,
  /^purple$/,
  /^dist\//,
];

function forbidden(files: string[]): string[] {
  return files.filter((file) => NEVER.some((pattern) => pattern.test(file)));
}

Deno.test("every package has its name, the same version, a license and exports", async () => {
  const server = await readConfig(PACKAGES["@purple/server"]);
  assert.match(server.version, /^\d+\.\d+\.\d+$/);
  for (const [name, dir] of Object.entries(PACKAGES)) {
    const config = await readConfig(dir);
    assert.equal(config.name, name);
    assert.equal(config.version, server.version, name);
    assert.equal(config.license, "MIT", name);
    assert.equal(config.exports["."], "./mod.ts", name);
  }
});

Deno.test("deno publish --dry-run passes for @purple/server, without tests, data or client code", async () => {
  const { code, output, published, files } = await publishDryRun(PACKAGES["@purple/server"]);
  assert.equal(code, 0, output);
  assert.equal(published, `@purple/server@${(await readConfig(".")).version}`, output);
  assert.deepEqual(forbidden(files), []);
  assert.deepEqual(files.filter((file) => /^(client|protocol)\//.test(file)), []);
  for (const needed of ["mod.ts", "deno.json", "README.md", "server/cli.ts", "backends/disk.ts"]) {
    assert.ok(files.includes(needed), `${needed} is missing from ${files.join(", ")}`);
  }
  // Every module of the package's graph is uploaded (the gRPC and disk modules load lazily).
  for (const file of ["server/grpc.ts", "server/_relaunch.ts", "backends/redis.ts"]) {
    assert.ok(files.includes(file), `${file} is missing`);
  }
});

Deno.test("deno publish --dry-run passes for @purple/client, which holds client code only", async () => {
  const { code, output, published, files } = await publishDryRun(PACKAGES["@purple/client"]);
  assert.equal(code, 0, output);
  assert.equal(published, `@purple/client@${(await readConfig("client")).version}`, output);
  assert.deepEqual(forbidden(files), []);
  assert.deepEqual(files.filter((file) => !file.startsWith("client/")), []);
  for (const needed of ["client/deno.json", "client/mod.ts", "client/http.ts", "client/grpc.ts"]) {
    assert.ok(files.includes(needed), `${needed} is missing from ${files.join(", ")}`);
  }
});

/** The modules an entry point loads: `file:` paths relative to the root, and the others. */
async function graph(entry: string): Promise<{ local: string[]; external: string[] }> {
  const { code, stdout, stderr } = await run(Deno.execPath(), ["info", "--json", entry]);
  assert.equal(code, 0, stderr);
  const { modules } = JSON.parse(stdout) as { modules: Array<{ specifier: string }> };
  const local = modules
    .filter(({ specifier }) => specifier.startsWith(`file://${ROOT}/`))
    .map(({ specifier }) => specifier.slice(`file://${ROOT}/`.length));
  const external = modules
    .map(({ specifier }) => specifier)
    .filter((specifier) => !specifier.startsWith("file:"));
  return { local, external };
}

Deno.test("deno publish --dry-run passes for @purple/protocol, which holds protocol code only", async () => {
  const { code, output, published, files } = await publishDryRun(PACKAGES["@purple/protocol"]);
  assert.equal(code, 0, output);
  assert.equal(published, `@purple/protocol@${(await readConfig("protocol")).version}`, output);
  assert.deepEqual(forbidden(files), []);
  assert.deepEqual(files.filter((file) => !file.startsWith("protocol/")), []);
  for (const needed of ["protocol/mod.ts", "protocol/wire.ts", "protocol/gen/purple_pb.ts"]) {
    assert.ok(files.includes(needed), `${needed} is missing from ${files.join(", ")}`);
  }
});

/** The npm packages among a module graph's external specifiers. */
function npmPackages(external: string[]): string[] {
  const names = external.map((specifier) => /^npm:\/?(@?[^@]+)@/.exec(specifier)?.[1]);
  return [...new Set(names.filter((name) => name !== undefined))].sort();
}

Deno.test("@purple/client's main entry (HttpClient) has no dependency at all", async () => {
  const { local, external } = await graph("client/mod.ts");
  assert.deepEqual(external, []);
  assert.deepEqual(local.filter((file) => !/^(client|protocol)\//.test(file)), []);
  assert.deepEqual(local.filter((file) => /wire|gen\//.test(file)), [], "no wire format");
  assert.ok(local.includes("client/http.ts"));
  // Nor does the client's deno.json map anything but grpc-js, for ./grpc.
  assert.deepEqual(Object.keys((await readConfig("client")).imports ?? {}), ["@grpc/grpc-js"]);
});

Deno.test("every entry point of @purple/client loads client and protocol code only, ./grpc grpc-js", async () => {
  const { exports } = await readConfig("client");
  for (const path of Object.values(exports)) {
    const { local, external } = await graph(`client/${path.slice(2)}`);
    assert.deepEqual(local.filter((file) => !/^(client|protocol)\//.test(file)), [], path);
    assert.deepEqual(
      npmPackages(external),
      path === "./grpc.ts" ? ["@bufbuild/protobuf", "@grpc/grpc-js"] : [],
      path,
    );
  }
});

for (const [name, dir] of Object.entries(PACKAGES)) {
  Deno.test(`deno doc --lint is clean on every entry point of ${name}`, async () => {
    const { exports } = await readConfig(dir);
    const entries = Object.values(exports).map((path) => `${dir}/${path.slice(2)}`);
    const { code, stdout, stderr } = await run(Deno.execPath(), ["doc", "--lint", ...entries], {
      env: { NO_COLOR: "1" },
    });
    const errors = (stdout + stderr).split("\n").filter((line) => line.startsWith("error"));
    assert.deepEqual(errors, [], stdout + stderr);
    assert.equal(code, 0, stdout + stderr);
  });
}

Deno.test("every exported symbol of every package has a description and an @example", async () => {
  const entries: string[] = [];
  for (const dir of Object.values(PACKAGES)) {
    const { exports } = await readConfig(dir);
    entries.push(...Object.values(exports).map((path) => `${dir}/${path.slice(2)}`));
  }
  const { code, stdout, stderr } = await run(Deno.execPath(), ["doc", "--json", ...entries]);
  assert.equal(code, 0, stderr);
  interface Declaration {
    declarationKind: string;
    kind: string;
    location: { filename: string; line: number };
    jsDoc?: { doc?: string; tags?: Array<{ kind: string }> };
  }
  const { nodes } = JSON.parse(stdout) as {
    nodes: Record<string, { symbols: Array<{ name: string; declarations: Declaration[] }> }>;
  };
  const lacking = new Set<string>();
  for (const { symbols } of Object.values(nodes)) {
    for (const { name, declarations } of symbols) {
      for (const { declarationKind, kind, location, jsDoc } of declarations) {
        if (declarationKind !== "export" || kind === "reference") continue;
        const where = `${
          location.filename.slice(`file://${ROOT}/`.length)
        }:${location.line} ${name}`;
        if (!jsDoc?.doc) lacking.add(`${where}: no description`);
        if (!jsDoc?.tags?.some((tag) => tag.kind === "example")) {
          lacking.add(`${where}: no @example`);
        }
      }
    }
  }
  assert.deepEqual([...lacking].sort(), []);
});
