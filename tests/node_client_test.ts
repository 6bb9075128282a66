/**
 * @purple/client in Node, as a Node user installs it: the npm package `deno task build:npm`
 * builds (plain JavaScript, `.d.ts` files, @purple/protocol inside, grpc-js and protobuf-es as
 * dependencies), packed, installed with npm into a temporary project; tsc type-checks a
 * TypeScript user of it, and `node --test` runs every operation through HttpClient and
 * GrpcClient against a `purple` process started here, with the typed errors checked by
 * `instanceof`; then the Node examples (examples/node/, and the README's) run on Node, and the
 * HttpClient one on Bun (npm's `bun` package, installed here into a temporary directory).
 */

import assert from "node:assert/strict";
import { OPERATION_NAMES } from "@purple/protocol";
import { type Program, ROOT, run, start } from "./_process.ts";
import { readConfig } from "./_publish.ts";
import { buildNpm } from "../tools/build_npm.ts";

/** The TypeScript that type-checks the user (5.x, as the build uses). */
const TYPESCRIPT = "typescript@5.9.3";

/** Bun, from npm (its binary ships in the platform's package, @oven/bun-<os>-<arch>). */
const BUN = "bun@1.4.5";

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

/** Every file under `dir`, relative to it. */
async function* walk(dir: string, sub = ""): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(`${dir}/${sub}`)) {
    const path = sub === "" ? entry.name : `${sub}/${entry.name}`;
    if (entry.isDirectory) yield* walk(dir, path);
    else yield path;
  }
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

Deno.test({
  name: "@purple/client, built by deno task build:npm, works in Node (HttpClient and GrpcClient)",
  ignore: NODE_MISSING !== undefined,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "purple-node-" });
    let purple: Program | undefined;
    try {
      const pkg = `${dir}/package`;
      let tarball = "";
      if (
        !await t.step(
          "build: deno task build:npm makes plain JavaScript, .d.ts files and a tarball",
          async () => {
            tarball = await buildNpm(pkg, dir);
            const manifest = JSON.parse(await Deno.readTextFile(`${pkg}/package.json`));
            assert.equal(manifest.version, (await readConfig("client")).version);
            assert.deepEqual(Object.keys(manifest.dependencies).sort(), [
              "@bufbuild/protobuf",
              "@grpc/grpc-js",
            ]);
            // Every export points at files that exist; no TypeScript source is left.
            for (const target of Object.values(manifest.exports as Record<string, object>)) {
              for (const file of Object.values(target)) await Deno.stat(`${pkg}/${file}`);
            }
            for await (const entry of walk(pkg)) {
              assert.ok(!/(?<!\.d)\.ts$/.test(entry), `${entry} is TypeScript`);
              if (!entry.endsWith(".js")) continue;
              const code = await Deno.readTextFile(`${pkg}/${entry}`);
              assert.ok(
                !/^(import|export)\b.*from "@purple\//m.test(code),
                `${entry} imports @purple`,
              );
            }
            // One copy of the error classes: the client's errors entry re-exports protocol's.
            const errors = await Deno.readTextFile(`${pkg}/errors.js`);
            assert.match(errors, /from "\.\/protocol\/errors\.js"/);
            assert.ok(!/class \w+Error/.test(errors));
          },
        )
      ) return; // A later step would only fail for the same reason.

      const app = `${dir}/app`;
      if (
        !await t.step("install: npm pack, then npm install in a Node project", async () => {
          await Deno.mkdir(app);
          await Deno.writeTextFile(
            `${app}/package.json`,
            JSON.stringify({ name: "purple-node-user", private: true, type: "module" }),
          );
          // As the README says: npm install /path/to/purple/dist/purple-client-<version>.tgz.
          const readme = await Deno.readTextFile(`${ROOT}/README.md`);
          const name = tarball.slice(tarball.lastIndexOf("/") + 1);
          assert.match(readme, new RegExp(`^npm install /path/to/purple/dist/${name} `, "m"));
          await npm(["install", tarball], app);
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
            await Deno.mkdir(`${dir}/tools`);
            await npm(["install", "--prefix", `${dir}/tools`, TYPESCRIPT], dir);
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
            PURPLE_OPERATIONS: OPERATION_NAMES.join(","),
          },
        });
        const summary = (name: string) =>
          Number(new RegExp(`^# ${name} (\\d+)$`, "m").exec(node.stdout)?.[1]);
        assert.equal(node.code, 0, node.stdout + node.stderr);
        assert.equal(summary("fail"), 0, node.stdout);
        assert.ok(summary("pass") > 0 && summary("pass") === summary("tests"), node.stdout);
        // Each client's last test checks that every operation of the table was called.
        for (const client of ["HttpClient", "GrpcClient"]) {
          assert.match(node.stdout, new RegExp(`ok \\d+ - ${client}: every operation was called`));
        }
        assert.equal(await purple.stop(), 0);
      });

      /** Starts a fresh purple serving both protocols; returns where. */
      const fresh = async () => {
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
        ]);
        const [, http] = await purple.line(/^Starting up the HTTP server on port (\d+)$/);
        const [, grpc] = await purple.line(/^Starting up the gRPC server on port (\d+)$/);
        return { PURPLE_URL: `http://127.0.0.1:${http}`, PURPLE_GRPC: `127.0.0.1:${grpc}` };
      };
      const HTTP_EXAMPLE_OUTPUT = [
        "[ 'shopping' ]",
        "2n",
        "hello",
        "a miss: Cannot find cache key 'never-set': not found",
      ];
      for (const file of ["http_client.mjs", "grpc_client.mjs"]) {
        await Deno.copyFile(`${ROOT}/examples/node/${file}`, `${app}/${file}`);
      }

      await t.step(
        "examples/node: the Node examples, both clients, print what they say",
        async () => {
          const env = await fresh();
          const http = await run("node", ["http_client.mjs"], { cwd: app, env });
          assert.equal(http.code, 0, http.stderr);
          assert.deepEqual(http.stdout.trim().split("\n"), HTTP_EXAMPLE_OUTPUT);
          const grpc = await run("node", ["grpc_client.mjs"], { cwd: app, env });
          assert.equal(grpc.code, 0, grpc.stderr);
          assert.deepEqual(grpc.stdout.trim().split("\n"), [
            "[ 'shopping' ]",
            "5n",
            "true",
            "a miss: Cannot find kv key 'never-put': not found",
          ]);
          assert.equal(await purple!.stop(), 0);
        },
      );

      await t.step("the README's Node example, on Node, prints what it says", async () => {
        const readme = await Deno.readTextFile(`${ROOT}/README.md`);
        const [example] = readme.split("\n```js\n").slice(1).map((block) =>
          block.split("\n```")[0]
        );
        assert.ok(example?.startsWith("// node example.mjs\n"), "the README has its Node example");
        const env = await fresh();
        await Deno.writeTextFile(
          `${app}/example.mjs`,
          example.replace('"http://localhost:8080"', JSON.stringify(env.PURPLE_URL)),
        );
        const node = await run("node", ["example.mjs"], { cwd: app, env });
        assert.equal(node.code, 0, node.stderr);
        assert.deepEqual(node.stdout.trim().split("\n"), [
          "2n",
          "a miss: Cannot find cache key 'never-set': not found",
        ]);
        assert.equal(await purple!.stop(), 0);
      });

      await t.step("bun: examples/node/http_client.mjs under Bun (npm's bun package)", async () => {
        await npm(["install", "--prefix", `${dir}/bun`, BUN], dir);
        // The binary comes in the platform's package; bun's postinstall only links it.
        let bun: string | undefined;
        for await (const entry of Deno.readDir(`${dir}/bun/node_modules/@oven`)) {
          if (entry.name.startsWith(`bun-${Deno.build.os}-`)) {
            bun = `${dir}/bun/node_modules/@oven/${entry.name}/bin/bun`;
          }
        }
        assert.ok(bun, "the bun package installed no binary for this platform");
        const env = await fresh();
        const http = await run(bun, ["http_client.mjs"], { cwd: app, env });
        assert.equal(http.code, 0, http.stderr);
        // Bun prints values as Node does, but for arrays: ["shopping"].
        assert.deepEqual(
          http.stdout.trim().split("\n").map((line) =>
            line.replace('[ "shopping" ]', "[ 'shopping' ]")
          ),
          HTTP_EXAMPLE_OUTPUT,
        );
        assert.equal(await purple!.stop(), 0);
      });
    } finally {
      await purple?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
