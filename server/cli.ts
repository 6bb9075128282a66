/**
 * The `purple` command: resolves flags and environment variables ({@linkcode parseCli}, pure,
 * from `config.ts`), then prints the help or the version, serves one backend over HTTP, gRPC
 * or both until SIGINT or SIGTERM ({@linkcode main}, through `serve.ts`; with `--workers N`,
 * through the supervisor of `_workers.ts`), or exports or imports its entries (`purple export`,
 * `purple import`, through `_export.ts`).
 *
 * @example Reading a configuration without starting anything
 * ```ts
 * import { parseCli } from "@purple/server";
 *
 * const command = parseCli(["http", "--backend", "memory"], { PORT: "3000" });
 * if (command.action === "serve") console.log(command.config.http); // 3000
 * ```
 *
 * @module
 */

import { type CliCommand, HELP, parseCli, UsageError, VERSION } from "./config.ts";
import { fail, serve } from "./serve.ts";
import { serveWorker, supervise, WORKER_VARIABLE } from "./_workers.ts";

/**
 * Runs the `purple` command: prints help or the version, or serves until SIGINT or SIGTERM.
 * A bad flag, an unknown backend, a Redis that cannot be reached or a port that cannot be
 * bound prints one line (`purple: <reason>`) on stderr and returns 2; any other error is a
 * bug and is thrown.
 *
 * @param args The arguments after the program name (`Deno.args`).
 * @returns The exit code: 0 after `--help`, `--version`, a graceful stop or a complete export
 * or import; 1 when an export or import stops on an error; 2 for a usage or start-up failure.
 *
 * @example
 * ```ts
 * import { main } from "@purple/server";
 *
 * console.log(await main(["--version"])); // 0, after printing "purple 0.1.0"
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const worker = Deno.env.get(WORKER_VARIABLE);
  if (worker !== undefined) return await serveWorker(worker);
  let command: CliCommand;
  try {
    command = parseCli(args, Deno.env.toObject());
  } catch (error) {
    if (error instanceof UsageError) return fail(error.message);
    throw error;
  }
  if (command.action === "help") {
    console.log(HELP);
    return 0;
  }
  if (command.action === "version") {
    console.log(`purple ${VERSION}`);
    return 0;
  }
  if (command.action === "export" || command.action === "import") {
    const { runExport, runImport } = await import("./_export.ts");
    return command.action === "export"
      ? await runExport(command.config)
      : await runImport(command.config);
  }
  if (command.config.workers !== undefined) return await supervise(command.config);
  return await serve(command.config);
}
