/**
 * `purple --workers N`: the setting, and the real supervisor with its worker processes: the
 * conformance suite through both protocols against `--workers 2 --backend redis`, a killed
 * worker started again while the ports keep answering, SIGTERM draining every worker, the
 * memory backend refused, `auto`, and workers that stop when their supervisor is killed.
 */

import assert from "node:assert/strict";
import { type AddressInfo, createServer } from "node:net";
import { HttpClient } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import { type CliConfig, parseCli, UsageError } from "../server/config.ts";
import { conformance } from "./conformance.ts";
import { freePort, REDIS_MISSING, startRedis } from "./_redis.ts";
import { type Purple, runPurple, startPurple } from "./_purple.ts";
import { finishUpload, startUpload } from "./_upload_in_flight.ts";
import { ROOT, run } from "./_process.ts";

const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function config(args: string[], env: Record<string, string> = {}, cores = 2): CliConfig {
  const command = parseCli(args, env, cores);
  assert.equal(command.action, "serve");
  return (command as { config: CliConfig }).config;
}

function refused(args: string[], env: Record<string, string>, message: RegExp, cores = 2): void {
  assert.throws(() => parseCli(args, env, cores), (error: Error) => {
    assert.ok(error instanceof UsageError, `${error.name}: ${error.message}`);
    assert.match(error.message, message);
    assert.ok(!error.message.includes("\n"), "one line");
    return true;
  });
}

Deno.test("parseCli() reads --workers and PURPLE_WORKERS; auto is one per core", () => {
  assert.equal(config(["--backend", "redis"]).workers, undefined, "one worker by default");
  assert.equal(config(["--workers", "1", "--backend", "memory"]).workers, undefined);
  assert.equal(config(["--workers", "3", "--backend", "redis"]).workers, 3);
  assert.equal(config(["--backend", "disk"], { PURPLE_WORKERS: "2" }).workers, 2);
  assert.equal(config(["--workers", "4"], { PURPLE_WORKERS: "2" }).workers, 4, "the flag wins");
  assert.equal(config(["--workers", "auto"], {}, 8).workers, 8);
  assert.equal(config(["--workers", "auto", "--backend", "memory"], {}, 1).workers, undefined);
  assert.equal(config([], { PURPLE_WORKERS: "auto" }, 2).workers, 2);
});

Deno.test("parseCli() refuses the memory backend with more than one worker, in one line", () => {
  const memory = /the memory backend lives inside one process, so 2 workers cannot share/;
  refused(["--workers", "2", "--backend", "memory"], {}, memory);
  refused([], { PURPLE_WORKERS: "2", PURPLE_BACKEND: "memory" }, /^Bad PURPLE_WORKERS: /);
  refused(["--backend", "memory", "--workers", "auto"], {}, /^Bad --workers \(auto: 2 cores\)/);
  for (const bad of ["0", "two", "-1", "1.5", "1025", ""]) {
    refused(["--workers", bad], {}, /^Bad --workers: expected auto or a number of workers/);
  }
});

Deno.test("purple --workers 2 --backend memory exits with 2 and one line", async () => {
  const { code, stdout, stderr } = await runPurple(["--workers", "2", "--backend", "memory"]);
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.match(stderr, /^purple: Bad --workers: the memory backend lives inside one process.*\n$/);
});

Deno.test("purple --workers 2 exits with 2 and one line when its fixed port is taken", async () => {
  // Taken by a listener that shares its port (SO_REUSEPORT) too: workers must not join it.
  const taken = createServer();
  await new Promise<void>((resolve) =>
    taken.listen({ port: 0, host: "127.0.0.1", reusePort: true }, resolve)
  );
  const dataDir = await Deno.makeTempDir({ prefix: "purple_workers_taken_" });
  try {
    const port = (taken.address() as AddressInfo).port;
    const { code, stderr } = await runPurple(
      ["http", "--workers", "2", "--data-dir", dataDir, "--port", `${port}`],
    );
    assert.equal(code, 2);
    assert.match(
      stderr,
      new RegExp(`^purple: Cannot listen on 127\\.0\\.0\\.1:${port} \\(HTTP\\): .*in use.*\n$`),
    );
  } finally {
    taken.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// The conformance suite, through both protocols, against a real `purple --workers 2`.

if (REDIS_MISSING !== undefined) {
  console.error(`!!! SKIPPING purple --workers 2 → redis: ${REDIS_MISSING} !!!`);
}

for (const transport of ["http", "grpc"] as const) {
  conformance(`${transport} → purple --workers 2 → redis`, async () => {
    const redis = await startRedis();
    const args = [
      "--workers",
      "2",
      "--backend",
      "redis",
      "--redis-url",
      redis.url,
      "--http-port",
      "0",
      "--grpc-port",
      "0",
    ];
    const open = async () => {
      const purple = await startPurple(args);
      await purple.waitFor(/^2 workers serve/);
      const client = transport === "http"
        ? new HttpClient(`http://127.0.0.1:${purple.httpPort}`)
        : new GrpcClient(`127.0.0.1:${purple.grpcPort}`);
      return { purple, client };
    };
    let served = await open();
    const stop = async () => {
      await served.client.close(); // before the server's GOAWAY (denoland/deno#36788)
      const { code, stderr } = await served.purple.stop();
      assert.equal(code, 0, stderr);
    };
    return {
      ops: served.client,
      listing: "scanned",
      reopen: async () => {
        await stop();
        served = await open();
        return served.client;
      },
      close: async () => {
        await stop();
        await redis.stop();
      },
    };
  }, { ignore: REDIS_MISSING !== undefined });
}

// ---------------------------------------------------------------------------------------------
// The supervisor.

/** The worker pids of the start-up line `N workers serve (pids 1, 2), ...`. */
async function workerPids(purple: Purple, count: number): Promise<number[]> {
  const line = await purple.waitFor(new RegExp(`^${count} workers serve \\(pids [\\d, ]+\\)`));
  return /pids ([\d, ]+)/.exec(line)![1].split(", ").map(Number);
}

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}

/** Answers one request on a connection of its own (never one to a worker that was killed). */
async function freshGet(url: string): Promise<number> {
  const client = Deno.createHttpClient({});
  try {
    const response = await fetch(url, { client });
    await response.body?.cancel();
    return response.status;
  } finally {
    client.close();
  }
}

async function withDisk(run: (dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "purple_workers_" });
  try {
    await run(dataDir);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("a worker killed with SIGKILL is started again, and the ports keep answering", async () => {
  await withDisk(async (dataDir) => {
    const purple = await startPurple([
      "--workers",
      "2",
      "--data-dir",
      dataDir,
      "--http-port",
      "0",
      "--grpc-port",
      "0",
    ]);
    const grpc = new GrpcClient(`127.0.0.1:${purple.grpcPort}`);
    try {
      const [victim, survivor] = await workerPids(purple, 2);
      const url = `http://127.0.0.1:${purple.httpPort}`;
      assert.equal(await new HttpClient(url).counterIncrement("kept", 5), 5n);
      Deno.kill(victim, "SIGKILL");
      const died = await purple.waitFor(/^Worker \d \(pid \d+\) died \(killed by SIGKILL\)/);
      assert.match(
        died,
        new RegExp(`pid ${victim}\\) died .*: starting it again in 0\\.1 s; 1 of 2`),
      );
      // While it is away, and after: every new connection is answered (by the survivor first).
      const statuses = [];
      for (let i = 0; i < 20; i++) statuses.push(await freshGet(`${url}/ping`));
      assert.deepEqual(statuses, Array(20).fill(200));
      assert.equal(await grpc.counterIncrement("kept", 1), 6n);
      const again = await purple.waitFor(/^Worker \d serves again \(pid \d+\)$/);
      const replacement = Number(/pid (\d+)/.exec(again)![1]);
      assert.ok(alive(replacement) && alive(survivor) && !alive(victim));
      for (let i = 0; i < 20; i++) assert.equal(await freshGet(`${url}/ping`), 200);
      assert.equal(await new HttpClient(url).counterGet("kept"), 6n);
    } finally {
      await grpc.close();
      const { code, stderr } = await purple.stop();
      assert.equal(code, 0, stderr);
    }
  });
});

Deno.test("PURPLE_WORKERS=auto: one worker per core; SIGTERM drains every worker, exit 0", async () => {
  const cores = navigator.hardwareConcurrency;
  await withDisk(async (dataDir) => {
    const args = ["http", "--data-dir", dataDir, "--port", "0"];
    const purple = await startPurple(args, { PURPLE_WORKERS: "auto" });
    const conns: Deno.Conn[] = [];
    try {
      if (cores > 1) await workerPids(purple, cores);
      // 100 connections spread by the kernel over the workers, each proven accepted by a round
      // trip, then each in the middle of a PUT: half the body sent.
      for (let i = 0; i < 100; i++) {
        conns.push(await startUpload(purple.httpPort!, `in-flight-${i}`));
      }
      await sleep(200);
      purple.child.kill("SIGTERM");
      await purple.waitFor(/^Received SIGTERM/);
      await sleep(100);
      const heads = await Promise.all(conns.map(finishUpload));
      const answered = heads.filter((head) => /^HTTP\/1\.1 204 /.test(head)).length;
      assert.equal(answered, 100, `only ${answered} of 100 answered 204`);
      const { code, stderr } = await purple.exited();
      assert.equal(code, 0, stderr);
      if (cores > 1) {
        for (let i = 1; i <= cores; i++) assert.ok(purple.lines.includes(`worker ${i}: Stopped`));
      }
      assert.equal(purple.lines.at(-1), "Stopped");
    } finally {
      conns.forEach((conn) => {
        try {
          conn.close();
        } catch { /* closed by the server */ }
      });
      await purple.stop();
    }
    const again = await startPurple(args);
    try {
      const client = new HttpClient(`http://127.0.0.1:${again.httpPort}`);
      for (let i = 0; i < 100; i += 7) {
        assert.equal(decoder.decode(await client.kvGet(`in-flight-${i}`)), "helloworld");
      }
    } finally {
      await again.stop();
    }
  });
});

Deno.test("workers keep serving past their start-up time limit", async () => {
  await withDisk(async (dataDir) => {
    const purple = await startPurple(
      ["http", "--workers", "2", "--data-dir", dataDir, "--port", "0"],
      { PURPLE_INTERNAL_START_LIMIT_MS: "5000" },
    );
    try {
      const pids = await workerPids(purple, 2);
      await sleep(5_000); // Past the 5 s limit, counted from each worker's start.
      assert.deepEqual(pids.filter(alive), pids, purple.lines.join("\n"));
      assert.ok(!purple.lines.some((line) => / died /.test(line)), purple.lines.join("\n"));
    } finally {
      const { code, stderr } = await purple.stop();
      assert.equal(code, 0, stderr);
    }
  });
});

Deno.test("workers stop by themselves when their supervisor is killed with SIGKILL", async () => {
  await withDisk(async (dataDir) => {
    const port = freePort();
    const purple = await startPurple(
      ["http", "--workers", "2", "--data-dir", dataDir, "--port", `${port}`],
    );
    const pids = await workerPids(purple, 2);
    assert.equal(purple.httpPort, port);
    await purple.stop("SIGKILL");
    const deadline = Date.now() + 15_000;
    while (pids.some(alive) && Date.now() < deadline) await sleep(100);
    assert.deepEqual(pids.filter(alive), [], "workers outlived their supervisor");
  });
});

Deno.test("a worker that cannot start stops them all: its one line, exit 2", async () => {
  // Nobody listens there; the supervisor opens no backend, so the line is a worker's.
  const url = `redis://127.0.0.1:${freePort()}`;
  const { code, stderr } = await runPurple(
    ["http", "--workers", "2", "--backend", "redis", "--redis-url", url, "--port", "0"],
    { PURPLE_REDIS_START_WAIT_MS: "0" },
  );
  assert.equal(code, 2, stderr);
  const lines = stderr.split("\n").filter((line) => line !== "");
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0], /^purple: Cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+: /);
});

Deno.test("--workers 2 without the permission to run Deno: refused in one line saying what to add", async () => {
  await withDisk(async (dataDir) => {
    const { code, stderr } = await run(Deno.execPath(), [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
      "--unstable-kv",
      `${ROOT}/mod.ts`,
      ...["http", "--workers", "2", "--data-dir", dataDir, "--port", "0"],
    ], { env: { NO_COLOR: "1" } });
    assert.equal(code, 2, stderr);
    assert.match(
      stderr,
      /^purple: Cannot start 2 workers: this process may not run \S+ \(add --allow-run=\S+, as bin\/purple does with --workers\)\n$/,
    );
  });
});

Deno.test("a second signal during the workers' drain kills them at once, exit 1", async () => {
  await withDisk(async (dataDir) => {
    const purple = await startPurple([
      "http",
      "--workers",
      "2",
      "--data-dir",
      dataDir,
      "--port",
      "0",
    ]);
    const pids = await workerPids(purple, 2);
    // An upload in flight on each worker keeps the drain waiting (up to its 10 s grace).
    const conns = [];
    for (let i = 0; i < 20; i++) conns.push(await startUpload(purple.httpPort!, `stuck-${i}`));
    try {
      purple.child.kill("SIGTERM");
      await purple.waitFor(/Received SIGTERM/);
      const start = Date.now();
      const { code } = await purple.stop("SIGTERM");
      assert.equal(code, 1);
      assert.ok(Date.now() - start < 3_000, `took ${Date.now() - start} ms`);
      const deadline = Date.now() + 5_000;
      while (pids.some(alive) && Date.now() < deadline) await sleep(50);
      assert.deepEqual(pids.filter(alive), [], "workers outlived the second signal");
    } finally {
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed by the server */ }
      }
    }
  });
});
