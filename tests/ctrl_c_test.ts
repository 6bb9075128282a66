/**
 * Ctrl+C, typed into a real pseudo-terminal, on every documented way to start Purple: a request
 * in flight is answered, Purple says `Stopped`, and the command exits 0. The terminal sends SIGINT
 * to its whole foreground process group, and the launchers in it (`deno task`, `npx`) forward it
 * once more to their child: Purple must take those copies for the one Ctrl+C they are, not for a
 * second signal ("exit now"). `tests/testdata/pty_run.py` plays the terminal and the shell (python3
 * and its pty module).
 */

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { type Program, ROOT, start } from "./_process.ts";
import { finishUpload, startUpload } from "./_upload_in_flight.ts";

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const ARGS = ["http", "--backend", "memory", "--port", "0"];
const DENO = Deno.execPath();

/**
 * The start commands of the README and docs/, each as a terminal user types it (the last test
 * checks that the docs give no other).
 */
const COMMANDS: Array<{ name: string; argv: string[]; exits: number[] }> = [
  { name: "deno task start", argv: [DENO, "task", "start", ...ARGS], exits: [0] },
  {
    name: "deno run -A --unstable-kv mod.ts",
    argv: [DENO, "run", "-A", "--unstable-kv", "mod.ts", ...ARGS],
    exits: [0],
  },
  { name: "deno run -A mod.ts", argv: [DENO, "run", "-A", "mod.ts", ...ARGS], exits: [0] },
  { name: "bin/purple", argv: ["bin/purple", ...ARGS], exits: [0] },
  // npx's own status after a Ctrl+C is 130 (its `deno` shim dies of the SIGINT and npm passes
  // that on), whatever Purple's: the test reads Purple's end in its own lines.
  {
    name: "npx -y deno@2 task start",
    argv: ["npx", "-y", "deno@2", "task", "start", ...ARGS],
    exits: [0, 130],
  },
];

async function missing(command: string): Promise<string | undefined> {
  try {
    const { success } = await new Deno.Command(command, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success ? undefined : `\`${command} --version\` failed`;
  } catch {
    return `${command} is not on PATH`;
  }
}

const PYTHON_MISSING = await missing("python3");
const NPX_MISSING = await missing("npx");
for (const problem of [PYTHON_MISSING, NPX_MISSING]) {
  if (problem === undefined) continue;
  const ci = Deno.env.get("CI") === "true";
  console.error(`\n!!! ${ci ? "FAILING" : "SKIPPING"} CTRL+C TESTS: ${problem} !!!\n`);
  if (ci) Deno.test(`the Ctrl+C tests can run (CI=true): ${problem}`, () => assert.fail(problem));
}

/** A command running in a pseudo-terminal, with its terminal's keyboard. */
interface Terminal {
  program: Program;
  type(line: "ctrl-c" | "quit"): Promise<void>;
  close(): Promise<void>;
}

function openTerminal(argv: string[]): Terminal {
  const program = start("python3", [`${ROOT}/tests/testdata/pty_run.py`, ...argv], {
    cwd: ROOT,
    // bin/purple runs the `deno` on PATH: this one.
    env: { NO_COLOR: "1", PATH: `${dirname(DENO)}:${Deno.env.get("PATH") ?? ""}` },
    name: argv.join(" "),
    stdin: "piped",
  });
  const keyboard = program.child.stdin.getWriter();
  const type = (line: string) => keyboard.write(encoder.encode(`${line}\n`));
  return {
    program,
    type,
    close: async () => {
      await type("quit").catch(() => {});
      await keyboard.close().catch(() => {});
      await program.stop("SIGTERM", 2_000);
    },
  };
}

/** A PUT whose headers and first half of the body are sent, and a moment for it to reach its handler. */
async function uploadInFlight(port: number): Promise<Deno.Conn> {
  const conn = await startUpload(port, "typed");
  await sleep(200);
  return conn;
}

for (const { name, argv, exits } of COMMANDS) {
  Deno.test({
    name: `Ctrl+C on '${name}' in a terminal: the upload in flight is answered, exit 0`,
    ignore: PYTHON_MISSING !== undefined || (argv[0] === "npx" && NPX_MISSING !== undefined),
    async fn() {
      const terminal = openTerminal(argv);
      let conn: Deno.Conn | undefined;
      try {
        const { program } = terminal;
        const [, port] = await program.line(/^Starting up the HTTP server on port (\d+)$/, {
          timeoutMs: 60_000,
        });
        conn = await uploadInFlight(Number(port));
        await terminal.type("ctrl-c");
        await program.line(/Received SIGINT: finishing requests in flight/);
        await sleep(300); // Past every copy of the SIGINT.
        assert.match(await finishUpload(conn), /^HTTP\/1\.1 204 /, program.output());
        const [, code] = await program.line(/^exit (\d+)$/);
        await program.line(/^Stopped$/);
        assert.ok(exits.includes(Number(code)), `exit ${code}:\n${program.output()}`);
        assert.ok(!program.lines.some((line) => line.includes("again")), program.output());
      } finally {
        conn?.close();
        await terminal.close();
      }
    },
  });
}

Deno.test({
  name: "Ctrl+C pressed again after a second, during the drain, exits at once with 1",
  ignore: PYTHON_MISSING !== undefined,
  async fn() {
    const terminal = openTerminal([DENO, "task", "start", ...ARGS]);
    let conn: Deno.Conn | undefined;
    try {
      const { program } = terminal;
      const [, port] = await program.line(/^Starting up the HTTP server on port (\d+)$/, {
        timeoutMs: 60_000,
      });
      conn = await uploadInFlight(Number(port));
      await terminal.type("ctrl-c");
      await program.line(/Received SIGINT: finishing requests in flight/);
      await sleep(1_200); // Longer than SAME_CTRL_C_MS: a second Ctrl+C.
      await terminal.type("ctrl-c");
      await program.line(/Received SIGINT again: exiting without waiting$/);
      const [, code] = await program.line(/^exit (\d+)$/);
      assert.equal(Number(code), 1, program.output());
    } finally {
      conn?.close();
      await terminal.close();
    }
  },
});

Deno.test("every start command of the README and docs/ is one that Ctrl+C is tested on here", async () => {
  const pages = ["README.md"];
  for await (const entry of Deno.readDir(`${ROOT}/docs`)) {
    if (entry.name.endsWith(".md")) pages.push(`docs/${entry.name}`);
  }
  // A command starting Purple from a checkout, in a shell block or in inline code.
  const LAUNCHER =
    /(?:^|`)((?:npx -y deno@2 task start|deno task start|deno run [^`\n]*mod\.ts|bin\/purple)[^`\n]*)/gm;
  const found = new Set<string>();
  for (const page of pages.sort()) {
    const text = await Deno.readTextFile(`${ROOT}/${page}`);
    for (const [, line] of text.matchAll(LAUNCHER)) {
      const command = line.replace(/\s+#.*$/, "").trim();
      const typed = COMMANDS.find(({ name }) => command === name || command.startsWith(`${name} `));
      assert.ok(typed, `${page}: '${command}' starts Purple in a way no Ctrl+C test types`);
      found.add(typed.name);
    }
  }
  assert.ok(found.has("npx -y deno@2 task start"), "the README's first command is found");
});
