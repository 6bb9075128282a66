/**
 * Test harness for the three JSR packages: `deno publish --dry-run` and the files it would
 * upload.
 *
 * @module
 */

import { ROOT, run } from "./_process.ts";

/** The three packages: where their `deno.json` is, relative to the repository root. */
export const PACKAGES = {
  "@purple/server": ".",
  "@purple/client": "client",
  "@purple/protocol": "protocol",
} as const;

/** What `deno publish --dry-run` said about one package. */
export interface DryRun {
  /** The exit code. */
  code: number;
  /** Everything it printed, without colours. */
  output: string;
  /** The package name and version it would publish, such as `@purple/server@0.1.0`. */
  published: string | undefined;
  /** The files it would upload, relative to the repository root, sorted. */
  files: string[];
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** Runs `deno publish --dry-run --allow-dirty` in a package's directory. */
export async function publishDryRun(dir: string): Promise<DryRun> {
  const { code, stdout, stderr } = await run(
    Deno.execPath(),
    ["publish", "--dry-run", "--allow-dirty"],
    { cwd: `${ROOT}/${dir}`, env: { NO_COLOR: "1" } },
  );
  const output = (stdout + stderr).replace(ANSI, "");
  const published = /Simulating publish of (\S+) with files:/.exec(output)?.[1];
  const files = [...output.matchAll(/^\s+file:\/\/(\/\S+) \([0-9.]+K?B\)$/gm)]
    .map(([, path]) => path.slice(ROOT.length + 1))
    .sort();
  return { code, output, published, files };
}

/** A package's `deno.json`. */
export interface PackageConfig {
  name: string;
  version: string;
  license: string;
  exports: Record<string, string>;
  imports?: Record<string, string>;
}

/** Reads a package's `deno.json`. */
export async function readConfig(dir: string): Promise<PackageConfig> {
  return JSON.parse(await Deno.readTextFile(`${ROOT}/${dir}/deno.json`));
}
