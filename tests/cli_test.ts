import assert from "node:assert/strict";
import { HttpClient } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import { DEFAULT_LIMITS } from "../backends/mod.ts";
import { type CliConfig, HELP, parseCli, UsageError, VERSION } from "../server/config.ts";
import { SETTINGS } from "../server/_settings.ts";
import { freePort, REDIS_MISSING, startRedis } from "./_redis.ts";
import { purpleArgs, runPurple, startPurple } from "./_purple.ts";
import { ROOT, start } from "./_process.ts";
import { finishUpload, startUpload } from "./_upload_in_flight.ts";

const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// parseCli(): pure, so every precedence rule is checked without a process.

function config(args: string[], env: Record<string, string> = {}): CliConfig {
  const command = parseCli(args, env);
  assert.equal(command.action, "serve");
  return (command as { config: CliConfig }).config;
}

function refused(args: string[], env: Record<string, string>, message: RegExp): void {
  assert.throws(() => parseCli(args, env), (error: Error) => {
    assert.ok(error instanceof UsageError, `${error.name}: ${error.message}`);
    assert.match(error.message, message);
    assert.ok(!error.message.includes("\n"), "one line");
    return true;
  });
}

Deno.test("parseCli() defaults: HTTP 8080 and gRPC 8081 on loopback, disk in ./data", () => {
  assert.deepEqual(config([]), {
    http: 8080,
    grpc: 8081,
    backend: "disk",
    dataDir: "./data",
    redisUrl: "redis://127.0.0.1:6379",
    redisStartWaitMs: 30_000,
    hostname: "127.0.0.1",
    limits: { ...DEFAULT_LIMITS },
    debug: false,
  });
  assert.deepEqual(Object.keys(config(["http"])).filter((k) => k.endsWith("p")), ["http"]);
  assert.equal(config(["http"]).http, 8080);
  assert.equal(config(["http"]).grpc, undefined);
  assert.equal(config(["grpc"]).grpc, 8081);
  assert.equal(config(["grpc"]).http, undefined);
});

Deno.test("parseCli() reads every flag", () => {
  assert.deepEqual(
    config([
      "--backend",
      "redis",
      "--redis-url",
      "redis://cache:6380/0",
      "--data-dir",
      "/var/purple",
      "--host",
      "0.0.0.0",
      "--http-port",
      "0",
      "--grpc-port",
      "9091",
      "--max-key-bytes",
      "64",
      "--max-value-bytes",
      "2048",
      "--max-item-bytes",
      "32",
      "--redis-insecure-tls",
      "--redis-start-wait-ms",
      "5000",
      "--debug",
    ]),
    {
      http: 0,
      grpc: 9091,
      backend: "redis",
      dataDir: "/var/purple",
      redisUrl: "redis://cache:6380/0",
      redis: { redisInsecureTls: true },
      redisStartWaitMs: 5000,
      hostname: "0.0.0.0",
      limits: { ...DEFAULT_LIMITS, maxKeyBytes: 64, maxValueBytes: 2048, maxItemBytes: 32 },
      debug: true,
    },
  );
  assert.equal(config(["http", "--port", "3000"]).http, 3000);
  assert.equal(config(["grpc", "--port=3001"]).grpc, 3001);
  assert.equal(config(["http", "--http-port", "3002"]).http, 3002);
});

Deno.test("parseCli() reads every environment variable", () => {
  const env = {
    PURPLE_BACKEND: "memory",
    PURPLE_REDIS_URL: "rediss://user:pw@redis.example:6379",
    PURPLE_DATA_DIR: "/data",
    PURPLE_HOST: "::",
    PURPLE_HTTP_PORT: "7000",
    PURPLE_GRPC_PORT: "7001",
    PURPLE_MAX_KEY_BYTES: "100",
    PURPLE_MAX_VALUE_BYTES: "200",
    PURPLE_MAX_ITEM_BYTES: "300",
    PURPLE_REDIS_INSECURE_TLS: "true",
    PURPLE_REDIS_START_WAIT_MS: "0",
    PURPLE_DEBUG: "true",
  };
  assert.deepEqual(config([], env), {
    http: 7000,
    grpc: 7001,
    backend: "memory",
    dataDir: "/data",
    redisUrl: "rediss://user:pw@redis.example:6379",
    redis: { redisInsecureTls: true },
    redisStartWaitMs: 0,
    hostname: "::",
    limits: { ...DEFAULT_LIMITS, maxKeyBytes: 100, maxValueBytes: 200, maxItemBytes: 300 },
    debug: true,
  });
  assert.equal(config(["http"], { PURPLE_PORT: "7100" }).http, 7100);
  assert.equal(config(["grpc"], { PURPLE_PORT: "7101" }).grpc, 7101);
  assert.equal(config(["http"], { PORT: "5000" }).http, 5000);
  assert.equal(config([], { PORT: "5001" }).http, 5001);
  assert.equal(config(["grpc"], { PORT: "5002" }).grpc, 8081, "PORT is the HTTP port only");
  for (const off of ["", "0", "false", "F"]) {
    assert.equal(config([], { PURPLE_DEBUG: off }).debug, false);
  }
});

Deno.test("parseCli() precedence: flag, then PURPLE_*, then PORT, then the default", () => {
  const all = { PURPLE_PORT: "1", PURPLE_HTTP_PORT: "2", PORT: "3" };
  assert.equal(config(["http", "--port", "9"], all).http, 9);
  assert.equal(config(["http"], all).http, 1);
  assert.equal(config(["http"], { PURPLE_HTTP_PORT: "2", PORT: "3" }).http, 2);
  assert.equal(config(["http"], { PORT: "3" }).http, 3);
  assert.equal(config(["http"], {}).http, 8080);
  assert.equal(config([], { PURPLE_HTTP_PORT: "2", PORT: "3" }).http, 2);
  assert.equal(config(["--http-port", "9"], { PURPLE_HTTP_PORT: "2", PORT: "3" }).http, 9);
  assert.equal(config(["--backend", "memory"], { PURPLE_BACKEND: "redis" }).backend, "memory");
  assert.equal(config(["--host", "::1"], { PURPLE_HOST: "0.0.0.0" }).hostname, "::1");
  assert.equal(config(["--data-dir", "a"], { PURPLE_DATA_DIR: "b" }).dataDir, "a");
  assert.equal(
    config(["--max-value-bytes", "10"], { PURPLE_MAX_VALUE_BYTES: "20" }).limits.maxValueBytes,
    10,
  );
  assert.equal(config(["--debug"], { PURPLE_DEBUG: "false" }).debug, true);
  assert.equal(config([], { PURPLE_BACKEND: "" }).backend, "disk", "an empty variable is unset");
});

Deno.test("parseCli() refuses bad flags and values with a one-line UsageError", () => {
  refused(["--nope"], {}, /Unknown flag '--nope'/);
  refused(["-x"], {}, /Unknown flag '-x'/);
  refused(["--port"], {}, /Bad --port: a value is missing/);
  refused(["--debug=yes"], {}, /Bad --debug: it takes no value/);
  refused(["serve"], {}, /Unknown command 'serve'/);
  refused(["http", "extra"], {}, /Unexpected argument 'extra'/);
  refused(["--backend", "mongo"], {}, /Bad --backend: expected memory, disk or redis/);
  refused([], { PURPLE_BACKEND: "sqlite" }, /Bad PURPLE_BACKEND/);
  for (const port of ["-1", "65536", "abc", "1.5", "8080x", " 80"]) {
    refused(["http", `--port=${port}`], {}, /Bad --port: expected a port from 0 to 65535/);
  }
  refused(["http"], { PORT: "http" }, /Bad PORT/);
  refused(["--port", "80"], {}, /Bad --port: it sets the port of 'purple http' or 'purple grpc'/);
  refused([], { PURPLE_PORT: "80" }, /Bad PURPLE_PORT/);
  refused(["http", "--grpc-port", "1"], {}, /Bad --grpc-port: 'purple http' serves only HTTP/);
  refused(["grpc", "--http-port", "1"], {}, /Bad --http-port/);
  refused(["--http-port", "9000", "--grpc-port", "9000"], {}, /cannot both listen on port 9000/);
  refused(["--redis-url", "localhost:6379"], {}, /Bad --redis-url: expected a redis:\/\//);
  refused(["--max-value-bytes", "0"], {}, /Bad --max-value-bytes/);
  refused([], { PURPLE_MAX_KEY_BYTES: "1k" }, /Bad PURPLE_MAX_KEY_BYTES/);
  refused([], { PURPLE_DEBUG: "yes please" }, /Bad PURPLE_DEBUG/);
});

Deno.test("parseCli() reads the Redis layout, prefix, cluster and WAIT settings", () => {
  assert.equal(config([]).redis, undefined, "absent when none is set");
  const seeds = "redis://10.0.0.1:7001,redis://10.0.0.2:7002";
  assert.deepEqual(
    config([
      "--backend",
      "redis",
      "--redis-cluster",
      "--redis-url",
      seeds,
      "--redis-layout",
      "prefixed",
      "--redis-prefix",
      "shop:",
      "--redis-wait-replicas",
      "1",
      "--redis-wait-timeout-ms",
      "250",
    ]),
    {
      ...config(["--backend", "redis", "--redis-url", seeds, "--redis-cluster"]),
      redis: {
        redisCluster: true,
        redisLayout: "prefixed",
        redisPrefix: "shop:",
        redisWaitReplicas: 1,
        redisWaitTimeoutMs: 250,
      },
    },
  );
  assert.deepEqual(
    config([], {
      PURPLE_REDIS_CLUSTER: "true",
      PURPLE_REDIS_URL: `${seeds}, redis://10.0.0.3:7003`,
      PURPLE_REDIS_PREFIX: "a:",
      PURPLE_REDIS_WAIT_REPLICAS: "2",
      PURPLE_REDIS_WAIT_TIMEOUT_MS: "100",
    }).redis,
    { redisCluster: true, redisPrefix: "a:", redisWaitReplicas: 2, redisWaitTimeoutMs: 100 },
  );
  assert.deepEqual(config([], { PURPLE_REDIS_LAYOUT: "prefixed" }).redis, {
    redisLayout: "prefixed",
  });
  assert.deepEqual(config(["--redis-layout", "databases"], { PURPLE_REDIS_CLUSTER: "0" }).redis, {
    redisLayout: "databases",
  });
});

Deno.test("parseCli() refuses bad Redis settings with a one-line UsageError", () => {
  refused(["--redis-layout", "tables"], {}, /^Bad --redis-layout: expected databases or prefixed/);
  refused(
    ["--redis-cluster", "--redis-layout", "databases"],
    {},
    /^Bad --redis-layout: Cannot use the 'databases' Redis layout on a Redis Cluster/,
  );
  refused([], { PURPLE_REDIS_CLUSTER: "yes" }, /^Bad PURPLE_REDIS_CLUSTER: expected true or false/);
  refused(["--redis-wait-replicas", "two"], {}, /^Bad --redis-wait-replicas: expected a number/);
  refused(["--redis-wait-timeout-ms", "0"], {}, /^Bad --redis-wait-timeout-ms: expected a whole/);
  refused(
    ["--redis-url", "redis://a:1,redis://b:2"],
    {},
    /^Bad --redis-url: expected a redis:\/\/ or rediss:\/\/ URL/,
  );
  refused(
    ["--redis-cluster", "--redis-url", "redis://a:1,b:2"],
    {},
    /^Bad --redis-url: expected redis:\/\/ or rediss:\/\/ URLs, comma-separated, found/,
  );
});

Deno.test("parseCli() answers --help and --version before anything else", () => {
  assert.deepEqual(parseCli(["--help"], {}), { action: "help" });
  assert.deepEqual(parseCli(["http", "-h", "--backend", "mongo"], {}), { action: "help" });
  assert.deepEqual(parseCli(["--version"], {}), { action: "version" });
  assert.deepEqual(parseCli(["-v"], {}), { action: "version" });
});

Deno.test("HELP lists every flag with its variable and default", () => {
  for (
    const [flag, variable, fallback] of [
      ["--backend", "PURPLE_BACKEND", "disk"],
      ["--data-dir", "PURPLE_DATA_DIR", "./data"],
      ["--redis-url", "PURPLE_REDIS_URL", "redis://127.0.0.1:6379"],
      ["--host", "PURPLE_HOST", "127.0.0.1"],
      ["--port", "PURPLE_PORT", "8080"],
      ["--http-port", "PURPLE_HTTP_PORT, then PORT", "8080"],
      ["--grpc-port", "PURPLE_GRPC_PORT", "8081"],
      ["--max-key-bytes", "PURPLE_MAX_KEY_BYTES", "512"],
      ["--max-value-bytes", "PURPLE_MAX_VALUE_BYTES", "1048576"],
      ["--max-item-bytes", "PURPLE_MAX_ITEM_BYTES", "1024"],
      ["--debug", "PURPLE_DEBUG", "off"],
      ["--redis-layout", "PURPLE_REDIS_LAYOUT", "databases"],
      ["--redis-prefix", "PURPLE_REDIS_PREFIX", "none"],
      ["--redis-cluster", "PURPLE_REDIS_CLUSTER", "off"],
      ["--redis-wait-replicas", "PURPLE_REDIS_WAIT_REPLICAS", "0"],
      ["--redis-wait-timeout-ms", "PURPLE_REDIS_WAIT_TIMEOUT_MS", "500"],
    ]
  ) {
    const line = HELP.split("\n").find((line) => line.startsWith(`  ${flag} `));
    assert.ok(line, `HELP has a line for ${flag}`);
    assert.ok(line.includes(`[${variable}]`), `${flag} names ${variable}`);
    assert.ok(line.includes(`(default: ${fallback}`), `${flag} gives its default`);
  }
});

// ---------------------------------------------------------------------------------------------
// The real process: `deno run -A --unstable-kv mod.ts ...`.

Deno.test("purple --help and --version print and exit 0", async () => {
  const help = await runPurple(["--help"]);
  assert.equal(help.code, 0);
  assert.equal(help.stdout, HELP + "\n");
  const version = await runPurple(["--version"]);
  assert.equal(version.code, 0);
  assert.equal(version.stdout, `purple ${VERSION}\n`);
});

Deno.test("purple exits with 2 and one line on stderr for bad input or an unreachable Redis", async () => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [["--nope"], {}, /^purple: Unknown flag '--nope'/],
    [["http", "--port", "http"], {}, /^purple: Bad --port/],
    [["--backend", "mongo"], {}, /^purple: Bad --backend/],
    [["http"], { PURPLE_BACKEND: "mongo" }, /^purple: Bad PURPLE_BACKEND/],
    [
      [
        "http",
        "--port",
        "0",
        "--backend",
        "redis",
        "--redis-url",
        `redis://127.0.0.1:${freePort()}`,
        "--redis-start-wait-ms",
        "0",
      ],
      {},
      /^purple: Cannot .*Redis/,
    ],
  ];
  await Promise.all(cases.map(async ([args, env, message]) => {
    const { code, stderr } = await runPurple(args, env);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    const lines = stderr.split("\n").filter((line) => line !== "");
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0], message);
  }));
});

Deno.test("purple exits with 2 and one line when its port is taken", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const { code, stderr } = await runPurple(["http", "--backend", "memory", "--port", `${port}`]);
    assert.equal(code, 2);
    assert.match(
      stderr,
      new RegExp(`^purple: Cannot listen on 127\\.0\\.0\\.1:${port} \\(HTTP\\): .*in use.*\n$`),
    );
    const grpc = await runPurple(["grpc", "--backend", "memory", "--port", `${port}`]);
    assert.equal(grpc.code, 2);
    assert.match(
      grpc.stderr,
      new RegExp(
        `^purple: Cannot listen on 127\\.0\\.0\\.1:${port} \\(gRPC\\): address already in use\n$`,
      ),
    );
  } finally {
    taken.close();
  }
});

Deno.test("purple http reads its variables, and --debug logs one line per request", async () => {
  const purple = await startPurple(["http", "--debug"], {
    PURPLE_BACKEND: "memory",
    PURPLE_PORT: "0",
    PORT: "1",
  });
  try {
    assert.match(purple.lines[0], /memory backend, binding 127\.0\.0\.1 \(loopback only/);
    const client = new HttpClient(`http://127.0.0.1:${purple.httpPort}`);
    assert.deepEqual(await client.setAdd("a/b", "x"), ["x"]);
    await assert.rejects(client.cacheGet("gone"));
    assert.match(await purple.waitFor(/^PUT /), /^PUT \/sets\/a%2Fb 200 \d+\.\dms$/);
    assert.match(await purple.waitFor(/^GET /), /^GET \/cache\/gone 404 \d+\.\dms$/);
  } finally {
    const { code, stderr } = await purple.stop("SIGINT");
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "");
  }
  assert.ok(purple.lines.includes("Stopped"));
});

Deno.test("purple serves HTTP and gRPC from one shared backend", async () => {
  const purple = await startPurple(["--backend", "memory", "--http-port", "0"], {
    PURPLE_GRPC_PORT: "0",
  });
  const grpc = new GrpcClient(`127.0.0.1:${purple.grpcPort}`);
  try {
    const http = new HttpClient(`http://127.0.0.1:${purple.httpPort}`);
    assert.equal(await http.counterIncrement("shared", 41), 41n);
    assert.equal(await grpc.counterIncrement("shared", 1), 42n);
    assert.equal(await http.counterGet("shared"), 42n);
  } finally {
    await grpc.close();
    const { code } = await purple.stop();
    assert.equal(code, 0);
  }
});

Deno.test("SIGTERM with 200 requests in flight: every one is answered, exit 0, disk data kept", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "purple_cli_disk_" });
  const args = ["http", "--backend", "disk", "--data-dir", dataDir, "--port", "0"];
  let purple = await startPurple(args);
  const conns: Deno.Conn[] = [];
  try {
    const url = `http://127.0.0.1:${purple.httpPort}`;
    const client = new HttpClient(url);
    await client.kvPut("before", "acknowledged before SIGTERM");
    assert.equal(await client.counterIncrement("before", 7), 7n);

    // 200 connections, each proven accepted by a full round trip, then each in the middle of
    // a PUT: headers and half the body sent, the server's handler waiting for the rest.
    for (let i = 0; i < 200; i++) conns.push(await startUpload(purple.httpPort!, `in-flight-${i}`));
    // Every PUT is in its handler (a busy machine may take a while): /metrics counts them, and
    // the scrape itself.
    const deadline = Date.now() + 15_000;
    while (true) {
      const text = await (await fetch(`${url}/metrics`)).text();
      if (/^purple_requests_in_flight\{protocol="http"\} 201$/m.test(text)) break;
      assert.ok(Date.now() < deadline, "the 200 PUTs never were in flight together");
      await sleep(50);
    }

    purple.child.kill("SIGTERM");
    await purple.waitFor(/^Received SIGTERM/);
    await sleep(100);
    const heads = await Promise.all(conns.map(finishUpload));
    const answered = heads.filter((head) => /^HTTP\/1\.1 204 /.test(head)).length;
    assert.equal(answered, 200, `only ${answered} of 200 answered 204`);
    const { code, stderr } = await purple.exited();
    assert.equal(code, 0, stderr);

    purple = await startPurple(args);
    const again = new HttpClient(`http://127.0.0.1:${purple.httpPort}`);
    assert.equal(decoder.decode(await again.kvGet("before")), "acknowledged before SIGTERM");
    assert.equal(await again.counterGet("before"), 7n);
    for (let i = 0; i < 200; i += 1) {
      assert.equal(decoder.decode(await again.kvGet(`in-flight-${i}`)), "helloworld");
    }
  } finally {
    conns.forEach((conn) => {
      try {
        conn.close();
      } catch { /* closed by the server */ }
    });
    await purple.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a second signal during the drain exits at once with 1", async () => {
  const purple = await startPurple(["http", "--backend", "memory", "--port", "0"]);
  const conn = await startUpload(purple.httpPort!, "stuck");
  try {
    await sleep(100);
    purple.child.kill("SIGTERM");
    await purple.waitFor(/^Received SIGTERM:/);
    const start = Date.now();
    const { code } = await purple.stop("SIGTERM");
    assert.equal(code, 1);
    assert.ok(Date.now() - start < 2_000);
    assert.ok(purple.lines.includes("Received SIGTERM again: exiting without waiting"));
  } finally {
    conn.close();
  }
});

Deno.test({
  name: "purple waits for a Redis that is not up yet at start, one line per retry, then serves",
  ignore: REDIS_MISSING !== undefined,
  async fn() {
    const redis = await startRedis();
    await redis.stop();
    const purple = start(
      Deno.execPath(),
      purpleArgs([
        "http",
        "--port",
        "0",
        "--backend",
        "redis",
        "--redis-url",
        redis.url,
      ]),
      { cwd: ROOT, env: { NO_COLOR: "1" } },
    );
    try {
      await purple.line(
        /^Cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+: .*: retrying in [\d.]+ s \(waited [\d.]+ s of 30 s\)$/,
      );
      await redis.start();
      const [, port] = await purple.line(/^Starting up the HTTP server on port (\d+)$/);
      const client = new HttpClient(`http://127.0.0.1:${port}`);
      assert.equal(await client.counterIncrement("waited", 1), 1n);
      assert.equal(await purple.stop(), 0);
    } finally {
      await purple.stop();
      await redis.stop();
    }
  },
});

Deno.test("purple gives up on an unreachable Redis after --redis-start-wait-ms, in one line", async () => {
  const began = Date.now();
  const { code, stdout, stderr } = await runPurple([
    "http",
    "--port",
    "0",
    "--backend",
    "redis",
    "--redis-url",
    `redis://127.0.0.1:${freePort()}`,
    "--redis-start-wait-ms",
    "1500",
  ]);
  assert.equal(code, 2);
  assert.ok(Date.now() - began >= 1_500);
  assert.ok(/retrying in/.test(stdout), stdout);
  assert.match(
    stderr,
    /^purple: Cannot connect to Redis at .*\(still unreachable after 1\.5 s; --redis-start-wait-ms sets how long Purple retries at start\)\n$/,
  );
});

Deno.test("parseCli() reads --cors-origin: origins, or *, repeated or comma-separated", () => {
  assert.equal(config([]).corsOrigins, undefined);
  assert.deepEqual(
    config(["--cors-origin", "https://app.example.com", "--cors-origin", "http://localhost:3000"])
      .corsOrigins,
    ["https://app.example.com", "http://localhost:3000"],
  );
  assert.deepEqual(config([], { PURPLE_CORS_ORIGIN: "*" }).corsOrigins, ["*"]);
  assert.deepEqual(
    config([], { PURPLE_CORS_ORIGIN: "https://a.example, https://b.example:8443" }).corsOrigins,
    ["https://a.example", "https://b.example:8443"],
  );
  for (
    const bad of [
      "https://app.example.com/",
      "app.example.com",
      "ftp://x.example",
      "https://a.example/path",
    ]
  ) {
    assert.throws(
      () => parseCli(["--cors-origin", bad], {}),
      (error: Error) =>
        error instanceof UsageError &&
        error.message.startsWith(`Bad --cors-origin: expected an origin such as`) &&
        error.message.endsWith(`found '${bad}'`),
      bad,
    );
  }
});

Deno.test("every setting: its flag changes what purple does, and each of its variables does the same", () => {
  // A value for each setting, and what else it needs (a command, another flag). A new setting
  // without a sample here fails this test: its flag and its variables must be shown to work.
  const samples: Record<string, { value?: string; with?: string[] }> = {
    "backend": { value: "memory" },
    "data-dir": { value: "/srv/purple" },
    "redis-url": { value: "redis://cache.internal:6380", with: ["--backend", "redis"] },
    "redis-layout": { value: "prefixed", with: ["--backend", "redis"] },
    "redis-prefix": { value: "app1:", with: ["--backend", "redis"] },
    "redis-cluster": { with: ["--backend", "redis", "--redis-layout", "prefixed"] },
    "redis-wait-replicas": { value: "1", with: ["--backend", "redis"] },
    "redis-wait-timeout-ms": {
      value: "250",
      with: ["--backend", "redis", "--redis-wait-replicas", "1"],
    },
    "workers": { value: "2" },
    "redis-insecure-tls": { with: ["--backend", "redis"] },
    "redis-start-wait-ms": { value: "0" },
    "host": { value: "::" },
    "port": { value: "7001", with: ["grpc"] },
    "http-port": { value: "7000" },
    "grpc-port": { value: "7002" },
    "max-key-bytes": { value: "100" },
    "max-value-bytes": { value: "200" },
    "max-item-bytes": { value: "300" },
    "max-set-items": { value: "400" },
    "max-concurrent-requests": { value: "500" },
    "backend-timeout-ms": { value: "600" },
    "body-timeout-ms": { value: "700" },
    "max-watchers": { value: "800" },
    "max-watch-keys": { value: "900" },
    "auth-token": { value: "a-full-access-token-0123456789" },
    "read-token": { value: "a-read-only-token-0123456789ab" },
    "cors-origin": { value: "https://app.example" },
    "tls-cert": { value: "/etc/purple/cert.pem", with: ["--tls-key", "/etc/purple/key.pem"] },
    "tls-key": { value: "/etc/purple/key.pem", with: ["--tls-cert", "/etc/purple/cert.pem"] },
    "debug": {},
    "output": { value: "/tmp/purple.jsonl", with: ["export"] },
    "skip-bad": { with: ["import"] },
  };
  const settings = Object.values(SETTINGS);
  assert.deepEqual(
    Object.keys(samples).sort(),
    settings.map((setting) => setting.flag).sort(),
    "a sample for every setting, and none for a setting that is gone",
  );
  for (const setting of settings) {
    const { value, with: context = [] } = samples[setting.flag];
    const flagged = [...context, `--${setting.flag}`, ...(value === undefined ? [] : [value])];
    const byFlag = parseCli(flagged, {});
    // Without it: another command, or a refusal (a TLS key alone).
    const without = (() => {
      try {
        return parseCli(context, {});
      } catch (error) {
        return error;
      }
    })();
    assert.notDeepEqual(byFlag, without, `--${setting.flag} changes nothing`);
    for (const variable of setting.env) {
      const byVariable = parseCli(context, { [variable]: value ?? "true" });
      assert.deepEqual(byVariable, byFlag, `${variable} is not --${setting.flag}`);
    }
  }
});
