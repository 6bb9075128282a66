/**
 * The `purple` command serving gRPC: the two-server default form shares one backend between
 * HTTP and gRPC, `purple grpc` serves gRPC alone, SIGTERM stops it with exit code 0.
 */

import assert from "node:assert/strict";
import { GrpcClient } from "@purple/client/grpc";
import { goawayAbortRetried, type Program, ROOT, start } from "./_process.ts";
import { purpleArgs } from "./_purple.ts";

/** Starts `purple` with `args`: the tests' one spawner, running `mod.ts`. */
function spawnPurple(args: string[]): Program {
  return start(Deno.execPath(), purpleArgs(args), { cwd: ROOT, name: "purple" });
}

Deno.test("purple: 100 increments over HTTP and 100 over gRPC, concurrently, read 200 on both", async () => {
  const purple = spawnPurple(["--backend", "memory", "--http-port", "0", "--grpc-port", "0"]);
  let client: GrpcClient | undefined;
  try {
    const [, http] = await purple.line(/^Starting up the HTTP server on port (\d+)$/);
    const [, grpc] = await purple.line(/^Starting up the gRPC server on port (\d+)$/);
    client = new GrpcClient(`127.0.0.1:${grpc}`);
    const url = `http://127.0.0.1:${http}/counters/shared`;
    const overHttp = Array.from({ length: 100 }, async () => {
      const response = await fetch(`${url}?increment=1`, { method: "PUT" });
      assert.equal(response.status, 200);
      await response.body?.cancel();
    });
    const overGrpc = Array.from({ length: 100 }, () => client!.counterIncrement("shared", 1));
    await Promise.all([...overHttp, ...overGrpc]);
    const response = await fetch(url);
    assert.deepEqual(await response.json(), { counter: "shared", value: 200 });
    assert.equal(await client.counterGet("shared"), 200n);
    // A value written over HTTP is read over gRPC at once, and back.
    await (await fetch(`http://127.0.0.1:${http}/flags/beta?value=true`, { method: "PUT" }))
      .body?.cancel();
    assert.equal(await client.flagGet("beta"), true);
    await client.setAdd("team", "ada");
    const set = await fetch(`http://127.0.0.1:${http}/sets/team`);
    assert.deepEqual(await set.json(), { set: "team", items: ["ada"] });
    await client.close();
    client = undefined;
    assert.equal(await purple.stop(), 0);
  } finally {
    await client?.close();
    try {
      purple.child.kill("SIGKILL");
    } catch { /* already stopped */ }
    await purple.child.status;
  }
});

Deno.test("purple grpc --port 0 serves gRPC alone and exits 0 on SIGTERM", async () => {
  const purple = spawnPurple(["grpc", "--backend", "memory", "--port", "0"]);
  let client: GrpcClient | undefined;
  try {
    const [, port] = await purple.line(/^Starting up the gRPC server on port (\d+)$/);
    client = new GrpcClient(`127.0.0.1:${port}`);
    assert.equal(await client.counterIncrement("k", 9007199254740993n), 9007199254740993n);
    await client.kvPut("k", new Uint8Array([0, 1, 255]));
    assert.deepEqual(await client.kvGet("k"), new Uint8Array([0, 1, 255]));
    await client.close();
    client = undefined;
    assert.equal(await purple.stop(), 0);
    await assert.rejects(purple.line(/^Starting up the HTTP server/));
  } finally {
    await client?.close();
    try {
      purple.child.kill("SIGKILL");
    } catch { /* already stopped */ }
    await purple.child.status;
  }
});

/**
 * The client side of the burst test, in its own process: Deno 2.9's node:http2 client can abort
 * its whole process on the server's GOAWAY with streams in flight (an nghttp2 assertion,
 * denoland/deno#36788), which must not take the test runner down with it. It makes 300 calls,
 * prints "go", sends 50 more at once and prints the outcome of each as JSON.
 */
const BURST_CLIENT = `
  import { GrpcClient } from "@purple/client/grpc";
  const client = new GrpcClient(Deno.args[0]);
  for (let i = 0; i < 300; i++) await client.counterIncrement("before", 1);
  const batch = Array.from({ length: 50 }, () =>
    client.counterIncrement("during", 1).then(() => "ok", (error) => error.name));
  console.log("go");
  console.log(JSON.stringify(await Promise.all(batch)));
  await client.close();
`;

Deno.test("purple: SIGTERM amid a burst of gRPC calls exits 0; each call succeeds or is unavailable", async () => {
  for (let attempt = 1;; attempt++) {
    const purple = spawnPurple(["grpc", "--backend", "memory", "--port", "0"]);
    try {
      const port = (await purple.line(/^Starting up the gRPC server on port (\d+)$/))[1];
      const config = new URL("../deno.json", import.meta.url).pathname;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["eval", "--config", config, BURST_CLIENT, `127.0.0.1:${port}`],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderrText = new Response(child.stderr).text();
      // SIGTERM once the batch is being sent: "go" is printed right after the 50 calls start.
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("go\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      purple.child.kill("SIGTERM");
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      const childCode = (await child.status).code;
      const errors = await stderrText;
      if (goawayAbortRetried(childCode, errors, attempt)) continue;
      assert.equal(childCode, 0, `the client process failed: ${errors}`);
      const outcomes = new Set(JSON.parse(text.split("\n")[1]) as string[]);
      outcomes.delete("ok");
      outcomes.delete("UnavailableError");
      assert.deepEqual([...outcomes], []);
      const { code } = await purple.child.status;
      assert.equal(code, 0);
      return;
    } finally {
      try {
        purple.child.kill("SIGKILL");
      } catch { /* already stopped */ }
      await purple.child.status;
    }
  }
});
