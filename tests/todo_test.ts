/**
 * The TODO example (examples/todo/): the original README's curl session against the example
 * and a `purple` process, then the example's error answers.
 */

import assert from "node:assert/strict";
import { HttpClient } from "@purple/client";
import { openBackend } from "../backends/mod.ts";
import { todoHandler } from "../examples/todo/todo.ts";
import { ROOT, run, start } from "./_process.ts";

const TODO_MAIN = `${ROOT}/examples/todo/main.ts`;

/**
 * The curl session of the example's section in docs/examples.md: method, query and the answer
 * given after `#`. The original printed {"todos":["shopping","running"]}; Purple returns sets
 * sorted.
 */
async function documentedSession(): Promise<
  Array<[method: string, query: string, answer: string]>
> {
  const examples = await Deno.readTextFile(`${ROOT}/docs/examples.md`);
  const start = examples.indexOf("\n## A TODO API on Purple's sets\n");
  assert.ok(start >= 0, "docs/examples.md has the example's section");
  const end = examples.indexOf("\n## ", start + 1);
  const section = examples.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^curl (?:-X(\w+) )?"?\$TODOS([^"\s]*)"?\s+# (\{.*\})$/gm)]
    .map(([, method, query, answer]) => [method ?? "GET", query, answer]);
}

Deno.test("the TODO example answers the original README's curl session, over a purple process", async () => {
  const purple = start(Deno.execPath(), [
    "run",
    "-A",
    "--unstable-kv",
    `${ROOT}/mod.ts`,
    "http",
    "--backend",
    "memory",
    "--port",
    "0",
  ]);
  let todo;
  try {
    const [, purplePort] = await purple.line(/^Starting up the HTTP server on port (\d+)$/);
    // The permissions docker-compose.yml gives the example.
    todo = start(Deno.execPath(), ["run", "--allow-net", "--allow-env", TODO_MAIN], {
      env: { PURPLE_URL: `http://127.0.0.1:${purplePort}`, TODO_PORT: "0" },
    });
    const [, todos] = await todo.line(/^TODO app listening on (http:\/\/127\.0\.0\.1:\d+\/todos),/);

    // export TODOS=http://localhost:3000/todos, then each curl of the original README, as
    // docs/examples.md gives them with their answers.
    const session = await documentedSession();
    assert.deepEqual(session.map(([method, query]) => `${method} ${query}`), [
      "POST ?todo=shopping",
      "POST ?todo=running",
      "GET ",
      "DELETE ?todo=running",
    ]);
    for (const [method, query, answer] of session) {
      const response = await fetch(`${todos}${query}`, { method });
      assert.equal(response.status, 200, `${method} ${query}`);
      assert.equal(response.headers.get("content-type"), "application/json");
      assert.equal(await response.text(), answer, `${method} ${query}`);
    }

    // The todos live in Purple's set "todos".
    const sets = await fetch(`http://127.0.0.1:${purplePort}/sets/todos`);
    assert.deepEqual(await sets.json(), { set: "todos", items: ["shopping"] });

    assert.equal(await todo.stop(), 0);
    assert.ok(todo.lines.includes("Received SIGTERM: stopping"), todo.lines.join("\n"));
  } finally {
    await todo?.stop();
    assert.equal(await purple.stop(), 0);
  }
});

Deno.test("the TODO example refuses a missing todo, other methods and other paths", async () => {
  const ops = await openBackend({ kind: "memory" });
  const handle = todoHandler(ops);
  try {
    for (const method of ["POST", "DELETE"]) {
      for (const query of ["", "?todo="]) {
        const response = await handle(new Request(`http://x/todos${query}`, { method }));
        assert.equal(response.status, 400);
        assert.deepEqual(await response.json(), { error: "No todo specified: add ?todo=..." });
      }
    }
    const put = await handle(new Request("http://x/todos?todo=a", { method: "PUT" }));
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET, POST, DELETE");
    assert.match((await put.json()).error, /PUT not allowed/);
    const other = await handle(new Request("http://x/todo"));
    assert.equal(other.status, 404);
    assert.deepEqual(await other.json(), { error: "No route for /todo" });
    assert.deepEqual(await ops.setGet("todos"), []);
  } finally {
    await ops.close();
  }
});

Deno.test("the TODO example answers 400 for a todo Purple refuses, 503 when Purple is down", async () => {
  const ops = await openBackend({ kind: "memory" });
  try {
    const tooLong = await todoHandler(ops)(
      new Request(`http://x/todos?todo=${"x".repeat(1025)}`, { method: "POST" }),
    );
    assert.equal(tooLong.status, 400);
    assert.match((await tooLong.json()).error, /1024/);
  } finally {
    await ops.close();
  }

  // A port that was just free: nothing listens there.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const down = await todoHandler(new HttpClient(`http://127.0.0.1:${port}`))(
    new Request("http://x/todos"),
  );
  assert.equal(down.status, 503);
  assert.match((await down.json()).error, /^Purple is unavailable: /);
});

Deno.test("the TODO example says in one line that a port is bad, and exits with 2", async () => {
  const { code, stdout, stderr } = await run(Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-env",
    TODO_MAIN,
  ], { env: { TODO_PORT: "http" } });
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.equal(
    stderr,
    "todo: Bad port: expected a number from 0 to 65535, found 'http'\n",
  );
});
