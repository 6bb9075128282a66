/**
 * @purple/client in Node, as a Node user receives it (`npx jsr add @purple/client`): JSR serves
 * npm a package of plain JavaScript, `.d.ts` files and a package.json whose dependencies are
 * bare npm names. The test builds that package from the files `deno publish --dry-run` lists
 * (TypeScript, pinned, from the npm registry, into a temporary directory), packs it, installs
 * it with npm into a temporary project, type-checks a TypeScript user of it with tsc, and runs
 * `node --test` on every operation through HttpClient and GrpcClient, against a `purple`
 * process started here, with the typed errors checked by `instanceof`.
 */

import assert from "node:assert/strict";
import { type Program, ROOT, run, start } from "./_process.ts";
import { publishDryRun, readConfig } from "./_publish.ts";

/** The TypeScript that builds the package (5.x: its API has transpileDeclaration). */
const TYPESCRIPT = "typescript@5.9.3";

/** The tests every_operation.mjs registers for each client. */
const TESTS_PER_CLIENT = 11;

const NODE_MISSING = await Promise.all(
  ["node", "npm"].map((tool) =>
    new Deno.Command(tool, { args: ["--version"], stdout: "null", stderr: "null" }).output()
      .then(
        ({ success }) => success ? undefined : `\`${tool} --version\` failed`,
        () => `${tool} is not on PATH`,
      )
  ),
).then((problems) => problems.find((problem) => problem !== undefined));
if (NODE_MISSING !== undefined) {
  const ci = Deno.env.get("CI") === "true";
  console.error(
    `\n!!! ${ci ? "FAILING" : "SKIPPING"} THE NODE TEST OF @purple/client: ${NODE_MISSING} !!!\n`,
  );
  if (ci) Deno.test("node and npm are installed (CI=true)", () => assert.fail(NODE_MISSING));
}

/** Runs npm quietly, failing the test with its output when it fails. */
async function npm(args: string[], cwd: string): Promise<string> {
  const { code, stdout, stderr } = await run("npm", [
    ...args,
    "--no-audit",
    "--no-fund",
    "--ignore-scripts",
    "--loglevel=error",
  ], { cwd, env: { npm_config_update_notifier: "false" } });
  assert.equal(code, 0, `npm ${args.join(" ")} failed:\n${stdout}\n${stderr}`);
  return stdout;
}

/** The package.json JSR would write: JavaScript and types per export, npm dependencies. */
async function packageJson(): Promise<Record<string, unknown>> {
  const config = await readConfig("client");
  const exports: Record<string, { types: string; default: string }> = {};
  for (const [name, path] of Object.entries(config.exports)) {
    const base = path.replace(/\.ts$/, "");
    exports[name] = { types: `${base}.d.ts`, default: `${base}.js` };
  }
  const dependencies: Record<string, string> = {};
  for (const [name, target] of Object.entries(config.imports ?? {})) {
    const match = /^npm:(@?[^@]+)@(.+)$/.exec(target);
    assert.ok(match, `${name} maps to '${target}', which is not an npm package`);
    dependencies[match[1]] = match[2];
  }
  return {
    name: config.name,
    version: config.version,
    license: config.license,
    type: "module",
    exports,
    dependencies,
  };
}

Deno.test({
  name: "@purple/client, built as JSR serves it to npm, works in Node (HttpClient and GrpcClient)",
  ignore: NODE_MISSING !== undefined,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "purple-node-" });
    let purple: Program | undefined;
    try {
      const pkg = `${dir}/package`;
      if (
        !await t.step(
          "build: plain JavaScript and .d.ts files, with TypeScript from npm",
          async () => {
            await Deno.mkdir(`${dir}/tools`);
            await npm(["install", "--prefix", `${dir}/tools`, TYPESCRIPT], dir);
            const { code, output, files } = await publishDryRun("client");
            assert.equal(code, 0, output);
            const sources = files.filter((file) => file.endsWith(".ts"))
              .map((file) => file.slice("client/".length));
            const build = await run("node", [
              `${ROOT}/tests/node/build_client.mjs`,
              `${dir}/tools/node_modules/typescript/lib/typescript.js`,
              `${ROOT}/client`,
              pkg,
              ...sources,
            ]);
            assert.equal(build.code, 0, build.stderr);
            const manifest = await packageJson();
            await Deno.writeTextFile(`${pkg}/package.json`, JSON.stringify(manifest, null, 2));
            // Every export points at files that exist; no TypeScript source is left.
            for (const target of Object.values(manifest.exports as Record<string, object>)) {
              for (const file of Object.values(target)) await Deno.stat(`${pkg}/${file}`);
            }
            for await (const entry of Deno.readDir(pkg)) {
              assert.ok(!/(?<!\.d)\.ts$/.test(entry.name), `${entry.name} is TypeScript`);
            }
          },
        )
      ) return; // A later step would only fail for the same reason.

      const app = `${dir}/app`;
      if (
        !await t.step("install: npm pack, then npm install in a Node project", async () => {
          const tarball = (await npm(["pack", pkg, "--pack-destination", dir], dir)).trim();
          await Deno.mkdir(app);
          await Deno.writeTextFile(
            `${app}/package.json`,
            JSON.stringify({
              name: "purple-node-user",
              private: true,
              type: "module",
              dependencies: { "@purple/client": `file:../${tarball}` },
            }),
          );
          await npm(["install"], app);
          const installed = JSON.parse(
            await Deno.readTextFile(`${app}/node_modules/@purple/client/package.json`),
          );
          assert.equal(installed.version, (await readConfig("client")).version);
          await Deno.stat(`${app}/node_modules/@grpc/grpc-js/package.json`);
        })
      ) return; // A later step would only fail for the same reason.

      if (
        !await t.step(
          "types: tsc type-checks a TypeScript user against the .d.ts files",
          async () => {
            await Deno.copyFile(`${ROOT}/tests/node/consumer.ts`, `${app}/consumer.ts`);
            const tsc = await run("node", [
              `${dir}/tools/node_modules/typescript/bin/tsc`,
              "--noEmit",
              "--strict",
              "--skipLibCheck",
              "--module",
              "nodenext",
              "--moduleResolution",
              "nodenext",
              "--target",
              "es2022",
              "--lib",
              "es2022,dom",
              "consumer.ts",
            ], { cwd: app });
            assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr);
          },
        )
      ) return; // A later step would only fail for the same reason.

      await t.step("run: node --test, every operation through both clients", async () => {
        const maxValueBytes = "1024";
        purple = start(Deno.execPath(), [
          "run",
          "-A",
          "--unstable-kv",
          `${ROOT}/mod.ts`,
          "--backend",
          "memory",
          "--http-port",
          "0",
          "--grpc-port",
          "0",
          "--max-value-bytes",
          maxValueBytes,
        ]);
        const [, http] = await purple.line(/^Starting up the HTTP server on port (\d+)$/);
        const [, grpc] = await purple.line(/^Starting up the gRPC server on port (\d+)$/);
        const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const down = `127.0.0.1:${listener.addr.port}`;
        listener.close();
        for (
          const file of ["every_operation.mjs", "http_client.node.mjs", "grpc_client.node.mjs"]
        ) {
          await Deno.copyFile(`${ROOT}/tests/node/${file}`, `${app}/${file}`);
        }
        const node = await run("node", [
          "--test",
          "--test-reporter=tap",
          "http_client.node.mjs",
          "grpc_client.node.mjs",
        ], {
          cwd: app,
          env: {
            PURPLE_HTTP_URL: `http://127.0.0.1:${http}`,
            PURPLE_GRPC_ADDRESS: `127.0.0.1:${grpc}`,
            PURPLE_DOWN_ADDRESS: down,
            PURPLE_MAX_VALUE_BYTES: maxValueBytes,
          },
        });
        const summary = (name: string) =>
          Number(new RegExp(`^# ${name} (\\d+)$`, "m").exec(node.stdout)?.[1]);
        assert.equal(node.code, 0, node.stdout + node.stderr);
        assert.equal(summary("fail"), 0, node.stdout);
        assert.equal(summary("pass"), 2 * TESTS_PER_CLIENT, node.stdout);
        assert.equal(await purple.stop(), 0);
      });
    } finally {
      await purple?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
