/**
 * Makes `deno run -A jsr:@purple/server` work without `--unstable-kv`. The default backend, disk,
 * is Deno KV, which Deno hides behind that flag, and a JSR package's `deno.json` settings do not
 * reach the people who run it. So when the disk backend is asked for and `Deno.openKv` is
 * missing, Purple runs itself once more with `--unstable-kv`: the same Deno, module, arguments,
 * environment and permissions. It forwards SIGINT and SIGTERM to that process and exits with its
 * exit code.
 *
 * Purple only restarts when it can do so without widening anything: net, env, read, write and
 * run must be granted in full (as `-A` does), and exactly the permissions granted in full are
 * passed on. Other Deno flags (`--cert`, `--v8-flags`, ...) cannot be seen from inside and are
 * not passed on: to use them, add `--unstable-kv` yourself. When Purple cannot restart (fewer
 * permissions, a compiled binary, or the second process itself), `main()` says in one line to
 * add `--unstable-kv`. (Killed with SIGKILL, this first process cannot stop the second one.)
 *
 * @module
 */

import { parseCli } from "./config.ts";

/** Set in the second process, so that it never starts a third. */
export const RELAUNCHED_VARIABLE = "PURPLE_RELAUNCHED_WITH_KV";

/** Permissions passed on when granted in full; the first five are needed to restart. */
const PERMISSIONS = ["net", "env", "read", "write", "run", "sys", "ffi", "import"] as const;
const NEEDED = 5;

function granted(name: string): boolean {
  try {
    return Deno.permissions.querySync({ name } as Deno.PermissionDescriptor).state === "granted";
  } catch {
    return false; // A permission this Deno does not know.
  }
}

/** The `--allow-*` flags of the permissions granted in full, or undefined if one needed is not. */
function permissionFlags(): string[] | undefined {
  const flags: string[] = [];
  for (const [index, name] of PERMISSIONS.entries()) {
    if (granted(name)) flags.push(`--allow-${name}`);
    else if (index < NEEDED) return undefined;
  }
  return flags;
}

/**
 * Whether this command line serves, exports or imports the disk backend (a bad one is left to
 * `main()`).
 */
function wantsDisk(args: string[]): boolean {
  try {
    const command = parseCli(args, Deno.env.toObject());
    // With --workers, this process only supervises: its workers are run with --unstable-kv.
    if (command.action === "serve") {
      return command.config.backend === "disk" && command.config.workers === undefined;
    }
    return (command.action === "export" || command.action === "import") &&
      command.config.backend === "disk";
  } catch {
    return false;
  }
}

/**
 * Runs Purple again with `--unstable-kv` when it serves the disk backend and Deno KV is
 * missing, and when that can be done with the same permissions (see the module doc).
 *
 * @param args The arguments after the program name (`Deno.args`).
 * @returns The exit code of the second process, or `undefined` when Purple did not restart
 * (then call `main()`, which serves, or says in one line what to add).
 */
export async function relaunchWithKv(args: string[]): Promise<number | undefined> {
  if (typeof Deno.openKv === "function") return undefined;
  if ((Deno.build as { standalone?: boolean }).standalone === true) return undefined;
  const flags = permissionFlags();
  if (flags === undefined) return undefined;
  if (Deno.env.get(RELAUNCHED_VARIABLE) !== undefined || !wantsDisk(args)) return undefined;

  console.error(
    "purple: the disk backend needs Deno KV, which takes --unstable-kv: running again with it " +
      "(add --unstable-kv to skip this step)",
  );
  // A session of its own, so that Ctrl+C in a terminal reaches it once (forwarded from here),
  // not twice (a second signal means "stop without waiting").
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, "--unstable-kv", Deno.mainModule, ...args],
    env: { [RELAUNCHED_VARIABLE]: "1" },
    stdin: "inherit", // `purple import` reads stdin
    stdout: "inherit",
    stderr: "inherit",
    detached: true,
  }).spawn();
  const listeners: Array<[Deno.Signal, () => void]> = [];
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const forward = () => {
      try {
        child.kill(signal);
      } catch {
        // Already gone: its status is about to resolve.
      }
    };
    try {
      Deno.addSignalListener(signal, forward);
      listeners.push([signal, forward]);
    } catch {
      // Windows cannot listen for SIGTERM.
    }
  }
  const status = await child.status;
  for (const [signal, forward] of listeners) Deno.removeSignalListener(signal, forward);
  return status.code;
}
