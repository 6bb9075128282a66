/**
 * The `purple` command serving gRPC: the two-server default form shares one backend between
 * HTTP and gRPC, `purple grpc` serves gRPC alone, SIGTERM stops it with exit code 0.
 */

import assert from "node:assert/strict";
import { GrpcClient } from "@purple/client/grpc";

const MOD = new URL("../mod.ts", import.meta.url);

/** A `purple` process and the lines it prints. */
interface Purple {
  child: Deno.ChildProcess;
  /** Waits for a line matching `pattern` (already printed or to come) and returns its match. */
  line(pattern: RegExp): Promise<RegExpMatchArray>;
  /** Sends SIGTERM and returns the exit code. */
  stop(): Promise<number>;
}

function spawnPurple(args: string[]): Purple {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", MOD.pathname, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let ended = false;
  (async () => {
    let rest = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + text).split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
      waiters.forEach((wake) => wake());
    }
    ended = true;
    waiters.forEach((wake) => wake());
  })();
  const line = async (pattern: RegExp) => {
    const deadline = Date.now() + 20_000;
    while (true) {
      const match = lines.map((text) => text.match(pattern)).find((found) => found !== null);
      if (match) return match;
      if (ended || Date.now() > deadline) {
        throw new Error(`purple never printed ${pattern}; it printed:\n${lines.join("\n")}`);
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, 100);
        waiters.add(wake);
      });
    }
  };
  const stop = async () => {
    child.kill("SIGTERM");
    const { code } = await child.status;
    await line(/^Stopped$/).catch(() => {});
    return code;
  };
  return { child, line, stop };
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

Deno.test("purple: SIGTERM amid a burst of gRPC calls exits 0; each call succeeds or is unavailable", async () => {
  const purple = spawnPurple(["grpc", "--backend", "memory", "--port", "0"]);
  const client = new GrpcClient(
    `127.0.0.1:${(await purple.line(/^Starting up the gRPC server on port (\d+)$/))[1]}`,
  );
  try {
    // 300 calls, then SIGTERM while a batch is in flight: each call succeeds or is refused
    // as unavailable, none is cut off with another error, and the process exits cleanly.
    for (let i = 0; i < 300; i++) await client.counterIncrement("before", 1);
    const batch = Array.from({ length: 50 }, () =>
      client.counterIncrement("during", 1).then(
        () => "ok",
        (error) => error.name,
      ));
    purple.child.kill("SIGTERM");
    const outcomes = new Set(await Promise.all(batch));
    outcomes.delete("ok");
    outcomes.delete("UnavailableError");
    assert.deepEqual([...outcomes], []);
    const { code } = await purple.child.status;
    assert.equal(code, 0);
  } finally {
    await client.close();
    try {
      purple.child.kill("SIGKILL");
    } catch { /* already stopped */ }
    await purple.child.status;
  }
});
