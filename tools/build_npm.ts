/**
 * `deno task build:npm`: the npm package of `@purple/client`, for Node and Bun (and bundlers),
 * from the same sources as the JSR package: every module of `client/` and of the
 * `@purple/protocol` it builds on, as plain ES modules with `.d.ts` files beside them
 * (TypeScript's isolated declarations, as JSR makes them). `@purple/protocol` goes inside the
 * package (`protocol/`), so that there is one copy of the error classes and `instanceof` works
 * across entry points; the package's dependencies are `@grpc/grpc-js` and `@bufbuild/protobuf`
 * (for `@purple/client/grpc`; the main entry, `HttpClient`, loads neither).
 *
 * ```sh
 * deno task build:npm            # dist/npm/ and dist/purple-client-<version>.tgz
 * npm install ./dist/purple-client-0.1.0.tgz
 * ```
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const TYPESCRIPT = "npm:typescript@5.9.3";

/** A workspace member's `deno.json`, as far as the build reads it. */
interface MemberConfig {
  name: string;
  version: string;
  license: string;
  description?: string;
  exports: Record<string, string>;
  imports?: Record<string, string>;
}

async function readConfig(dir: string): Promise<MemberConfig> {
  return JSON.parse(await Deno.readTextFile(`${ROOT}/${dir}/deno.json`));
}

/** The TypeScript modules of a member, relative to it (tests left out). */
async function sources(dir: string, sub = ""): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}/${dir}/${sub}`)) {
    const path = sub === "" ? entry.name : `${sub}/${entry.name}`;
    if (entry.isDirectory) files.push(...await sources(dir, path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) files.push(path);
  }
  return files.sort();
}

/** The npm dependencies of a member: its `npm:` imports, at their exact versions. */
function npmDependencies(config: MemberConfig): Record<string, string> {
  const dependencies: Record<string, string> = {};
  for (const [name, target] of Object.entries(config.imports ?? {})) {
    const match = /^npm:(@?[^@]+)@(.+)$/.exec(target);
    if (match === null) throw new Error(`${config.name} maps ${name} to ${target}, not npm`);
    dependencies[match[1]] = match[2];
  }
  return dependencies;
}

/**
 * Rewrites the specifiers of one built module: `./x.ts` becomes `./x.js`, and an import of
 * `@purple/protocol` (or one of its entries) the relative path of that entry in the package.
 */
function rewrite(code: string, file: string, protocol: MemberConfig, inProtocol: boolean): string {
  const depth = file.split("/").length - 1 + (inProtocol ? 1 : 0);
  const up = depth === 0 ? "./" : "../".repeat(depth);
  return code
    .replace(/((?:from|import\()\s*["'])(\.{1,2}\/[^"']+)\.ts(["'])/g, "$1$2.js$3")
    .replace(
      /((?:from|import\()\s*["'])(@purple\/protocol(?:\/[a-z-]+)?)(["'])/g,
      (_, head, specifier, tail) => {
        const entry = protocol.exports[`.${specifier.slice("@purple/protocol".length)}`];
        if (entry === undefined) throw new Error(`${file}: ${specifier} is not an entry`);
        return `${head}${up}protocol/${entry.slice(2).replace(/\.ts$/, ".js")}${tail}`;
      },
    );
}

/**
 * Builds the package into `out` and packs it (`npm pack`) into `packDestination`.
 *
 * @param out The package's directory (emptied first).
 * @param packDestination Where the tarball goes.
 * @returns The path of the tarball.
 */
export async function buildNpm(
  out = `${ROOT}/dist/npm`,
  packDestination = `${ROOT}/dist`,
): Promise<string> {
  const { default: ts } = await import(TYPESCRIPT);
  const client = await readConfig("client");
  const protocol = await readConfig("protocol");
  await Deno.remove(out, { recursive: true }).catch(() => {});
  const compilerOptions = { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 };
  const declarationOptions = { ...compilerOptions, declaration: true, isolatedDeclarations: true };
  const members = [
    { dir: "client", files: await sources("client"), inProtocol: false },
    { dir: "protocol", files: await sources("protocol"), inProtocol: true },
  ];
  for (const { dir, files, inProtocol } of members) {
    for (const file of files) {
      const text = await Deno.readTextFile(`${ROOT}/${dir}/${file}`);
      const js = ts.transpileModule(text, {
        fileName: file,
        compilerOptions,
        reportDiagnostics: true,
      });
      const dts = ts.transpileDeclaration(text, {
        fileName: file,
        compilerOptions: declarationOptions,
        reportDiagnostics: true,
      });
      const problems = [...js.diagnostics, ...dts.diagnostics];
      if (problems.length > 0) {
        const messages = problems.map((d: { messageText: unknown; start?: number }) => {
          const line = d.start === undefined
            ? ""
            : `line ${text.slice(0, d.start).split("\n").length}: `;
          return line + ts.flattenDiagnosticMessageText(d.messageText, "\n");
        });
        throw new Error(`Cannot build ${dir}/${file}:\n${messages.join("\n")}`);
      }
      const base = `${out}/${inProtocol ? "protocol/" : ""}${file.replace(/\.ts$/, "")}`;
      await Deno.mkdir(base.slice(0, base.lastIndexOf("/")), { recursive: true });
      await Deno.writeTextFile(`${base}.js`, rewrite(js.outputText, file, protocol, inProtocol));
      await Deno.writeTextFile(`${base}.d.ts`, rewrite(dts.outputText, file, protocol, inProtocol));
    }
  }
  const exports: Record<string, { types: string; default: string }> = {};
  for (const [name, path] of Object.entries(client.exports)) {
    const base = path.replace(/\.ts$/, "");
    exports[name] = { types: `${base}.d.ts`, default: `${base}.js` };
  }
  const manifest = {
    name: client.name,
    version: client.version,
    description: "The clients of Purple (HttpClient: fetch only; GrpcClient: grpc-js), for Node " +
      "and Bun; the same code as the JSR package @purple/client",
    license: client.license,
    type: "module",
    exports,
    engines: { node: ">=18" },
    dependencies: { ...npmDependencies(client), ...npmDependencies(protocol) },
  };
  await Deno.writeTextFile(`${out}/package.json`, JSON.stringify(manifest, null, 2) + "\n");
  await Deno.writeTextFile(
    `${out}/README.md`,
    `# ${client.name}\n\nThe clients of Purple for Node and Bun: \`HttpClient\` (fetch only, no ` +
      "dependency) and `GrpcClient` (`@purple/client/grpc`, grpc-js). Built from the sources of " +
      "the JSR package `@purple/client` by `deno task build:npm`; see Purple's README.\n",
  );
  const pack = await new Deno.Command("npm", {
    args: ["pack", out, "--pack-destination", packDestination, "--loglevel=error"],
    cwd: ROOT,
    stderr: "inherit",
  }).output();
  if (!pack.success) throw new Error("npm pack failed");
  return `${packDestination}/${new TextDecoder().decode(pack.stdout).trim()}`;
}

if (import.meta.main) {
  const tarball = await buildNpm();
  console.log(`Built ${tarball}`);
}
