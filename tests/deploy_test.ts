/**
 * The deployment files: Dockerfile, .dockerignore, docker-compose.yml, the Kubernetes
 * manifests, Procfile and heroku.yml, and the Deno Deploy entry. No Docker engine or cluster
 * runs here, so the test checks what can be checked without one: the files parse, every
 * command line in them is one `parseCli` accepts, ports, probes and services agree with the
 * flags, the containers run as a non-root user with resource limits. It also replays the
 * Dockerfile's build steps that are Deno commands in a temporary directory (the dependency
 * layer from the three files it copies first, then the code) and runs the image's command
 * there, and runs the Deno Deploy entry as Deploy would.
 */

import assert from "node:assert/strict";
import { parse, parseAllDocuments } from "yaml";
import { type CliConfig, parseCli } from "../server/config.ts";
import { ROOT, run, start } from "./_process.ts";
import { readConfig } from "./_publish.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

/** A command line of `purple`, resolved: the arguments after the program must be accepted. */
function purpleConfig(argv: string[], env: Record<string, string> = {}): CliConfig {
  const command = parseCli(argv, env);
  assert.equal(command.action, "serve", `${argv.join(" ")} does not serve`);
  return (command as { config: CliConfig }).config;
}

/** One Dockerfile instruction. */
interface Instruction {
  keyword: string;
  args: string;
}

const KEYWORDS = [
  "FROM",
  "WORKDIR",
  "RUN",
  "COPY",
  "USER",
  "ENV",
  "VOLUME",
  "EXPOSE",
  "HEALTHCHECK",
  "CMD",
];

/** Parses the Dockerfile subset Purple uses: comments, `\` continuations, known keywords. */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = "";
  for (const line of text.split("\n")) {
    if (pending === "" && (/^\s*#/.test(line) || line.trim() === "")) continue;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = "";
    const [, keyword, args] = /^([A-Z]+)\s+(.*)$/.exec(whole) ?? [];
    assert.ok(KEYWORDS.includes(keyword), `Unknown Dockerfile instruction: ${whole}`);
    instructions.push({ keyword, args: args.trim() });
  }
  assert.equal(pending, "", "The Dockerfile ends inside a continued line");
  return instructions;
}

/** The exec form of CMD or HEALTHCHECK CMD: a JSON array of strings. */
function execForm(args: string): string[] {
  const argv = JSON.parse(args);
  assert.ok(Array.isArray(argv) && argv.every((arg) => typeof arg === "string"), args);
  return argv;
}

const dockerfile = parseDockerfile(await Deno.readTextFile(`${ROOT}/Dockerfile`));
const all = (keyword: string) => dockerfile.filter((i) => i.keyword === keyword);
const one = (keyword: string) => {
  const found = all(keyword);
  assert.equal(found.length, 1, `Expected one ${keyword}, found ${found.length}`);
  return found[0];
};

/** The image's ENV, in order (`KEY=value` pairs). */
const IMAGE_ENV: Record<string, string> = {};
for (const { args } of all("ENV")) {
  const [, key, value] = /^([A-Z_]+)=(\S+)$/.exec(args) ?? [];
  assert.ok(key, `ENV must be KEY=value: ${args}`);
  IMAGE_ENV[key] = value;
}
const PURPLE_ENV = Object.fromEntries(
  Object.entries(IMAGE_ENV).filter(([key]) => key.startsWith("PURPLE_")),
);
const IMAGE_CMD = execForm(one("CMD").args);
const EXPOSED = one("EXPOSE").args.split(/\s+/).map(Number);
const IMAGE_CONFIG = purpleConfig(IMAGE_CMD.slice(1), PURPLE_ENV);

const { version } = await readConfig(".");
const compileTask: string = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).tasks.compile;

// ---------------------------------------------------------------------------------------------
// Dockerfile

Deno.test("Dockerfile: FROM the official Deno image, at a pinned Deno 2 version", () => {
  assert.match(one("FROM").args, /^denoland\/deno:2\.\d+\.\d+$/);
});

Deno.test("Dockerfile: the dependencies get a layer of their own, before the code", () => {
  const steps = dockerfile.filter((i) => i.keyword === "COPY" || i.keyword === "RUN")
    .map((i) => `${i.keyword} ${i.args.replace(/--chown=\S+\s+/, "")}`);
  const code = steps.indexOf("COPY . .");
  assert.deepEqual(steps.slice(0, code), [
    "RUN chown deno:deno /app",
    "COPY deno.json deno.lock ./",
    "COPY client/deno.json client/",
    "COPY protocol/deno.json protocol/",
    "RUN deno install --frozen",
  ]);
  assert.match(
    steps[code + 1],
    /^RUN deno cache --frozen mod\.ts examples\/todo\/main\.ts bin\/healthcheck\.ts$/,
  );
});

Deno.test("Dockerfile: it runs as the non-root user deno", () => {
  const users = all("USER").map((i) => i.args);
  assert.equal(users.at(-1), "deno");
  // The last instruction that runs anything as root comes before the last USER deno.
  const lastUser = dockerfile.lastIndexOf(all("USER").at(-1)!);
  assert.ok(dockerfile.slice(lastUser).every((i) => i.keyword !== "RUN"));
});

Deno.test("Dockerfile: CMD is a purple command on every interface, on the exposed ports", () => {
  assert.equal(IMAGE_CMD[0], "purple");
  assert.equal(IMAGE_ENV.PATH, "/app/bin:$PATH", "purple is bin/purple, on the PATH");
  assert.deepEqual(IMAGE_CMD.slice(1, 3), ["--host", "0.0.0.0"]);
  assert.equal(IMAGE_CONFIG.hostname, "0.0.0.0");
  assert.deepEqual([IMAGE_CONFIG.http, IMAGE_CONFIG.grpc], [8080, 8081]);
  assert.deepEqual(EXPOSED, [IMAGE_CONFIG.http, IMAGE_CONFIG.grpc]);
});

Deno.test("Dockerfile: the disk backend keeps its data on the volume", () => {
  assert.equal(IMAGE_CONFIG.backend, "disk");
  assert.equal(IMAGE_CONFIG.dataDir, "/data");
  assert.equal(one("VOLUME").args, IMAGE_CONFIG.dataDir);
  assert.ok(all("RUN").some((i) => i.args === "mkdir /data && chown deno:deno /data"));
});

Deno.test("Dockerfile: HEALTHCHECK runs bin/healthcheck.ts, which reads purple's own command", () => {
  const [, options, command] = /^((?:--\S+\s+)*)CMD\s+(.*)$/.exec(one("HEALTHCHECK").args) ?? [];
  assert.ok(command, "HEALTHCHECK must use CMD in exec form");
  assert.match(options, /--interval=\d+s/);
  assert.deepEqual(execForm(command), ["deno", "run", "-A", "/app/bin/healthcheck.ts"]);
});

/** Runs the health check against the process `pid`: its exit code and its line. */
async function healthOf(pid: number): Promise<{ code: number; stderr: string }> {
  const { code, stderr } = await run(Deno.execPath(), [
    "run",
    "-A",
    `${ROOT}/bin/healthcheck.ts`,
    String(pid),
  ]);
  return { code, stderr };
}

Deno.test("bin/healthcheck.ts asks purple on the ports, protocol and address it was given", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "purple-health-" });
  const free = () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    return port;
  };
  const serve = async (args: string[], env: Record<string, string> = {}) => {
    const purple = start(Deno.execPath(), ["run", "-A", `${ROOT}/mod.ts`, ...args], {
      cwd: dir,
      env,
    });
    await purple.line(/^Starting up the (HTTP|gRPC) server on port \d+$/);
    await purple.line(/^Starting up the (HTTP|gRPC) server on port \d+$/);
    return purple;
  };
  try {
    await t.step("the image's command: HTTP /ping on 0.0.0.0, the port of a variable", async () => {
      const purple = await serve(["--host", "0.0.0.0", "--backend", "memory"], {
        PURPLE_HTTP_PORT: String(free()),
        PURPLE_GRPC_PORT: String(free()),
      });
      assert.deepEqual(await healthOf(purple.child.pid), { code: 0, stderr: "" });
      purple.child.kill("SIGSTOP"); // A frozen purple accepts nothing: unhealthy within 2.5 s.
      const frozen = await healthOf(purple.child.pid);
      purple.child.kill("SIGCONT");
      assert.equal(frozen.code, 1);
      assert.match(frozen.stderr, /^unhealthy: /);
      assert.equal(await purple.stop(), 0);
    });
    await t.step("purple grpc: a connection to its port", async () => {
      const purple = await serve(["grpc", "--backend", "memory", "--port", String(free())]);
      assert.deepEqual(await healthOf(purple.child.pid), { code: 0, stderr: "" });
      assert.equal(await purple.stop(), 0);
    });
    await t.step("HTTP over TLS (--tls-cert): /ping over TLS", async () => {
      const made = await run("openssl", [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-subj",
        "/CN=purple.test",
      ]);
      assert.equal(made.code, 0, made.stderr);
      const args = ["http", "--backend", "memory", "--port", String(free())];
      const purple = start(Deno.execPath(), ["run", "-A", `${ROOT}/mod.ts`, ...args], {
        cwd: dir,
        env: { PURPLE_TLS_CERT: `${dir}/cert.pem`, PURPLE_TLS_KEY: `${dir}/key.pem` },
      });
      await purple.line(/^Starting up the HTTP server on port \d+$/);
      assert.deepEqual(await healthOf(purple.child.pid), { code: 0, stderr: "" });
      assert.equal(await purple.stop(), 0);
    });
    await t.step("a process that is not purple is unhealthy", async () => {
      const other = await healthOf(Deno.pid);
      assert.equal(other.code, 1);
      assert.match(other.stderr, /^unhealthy: process \d+ is not purple/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bin/purple runs mod.ts with the permissions of deno task compile (and, for --workers, run of deno)", async () => {
  const script = await Deno.readTextFile(`${ROOT}/bin/purple`);
  const [, flags] =
    /exec deno run ((?:--[a-z-]+ )+)(?:\$run )?\\\n\s+--config "\$root\/deno\.json" "\$root\/mod\.ts" "\$@"/
      .exec(script) ?? [];
  assert.ok(flags, script);
  const compileFlags = compileTask.split(/\s+/).filter((word) => /^--(allow|unstable)-/.test(word));
  assert.deepEqual(flags.trim().split(" "), compileFlags);
  assert.ok(
    ((await Deno.stat(`${ROOT}/bin/purple`)).mode! & 0o111) !== 0,
    "bin/purple is executable",
  );
});

Deno.test(".dockerignore keeps the host's node_modules, data, git and build output out", async () => {
  const patterns = (await Deno.readTextFile(`${ROOT}/.dockerignore`)).split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"));
  // Plain top-level names only, which the build replay below can honour exactly.
  for (const pattern of patterns) assert.match(pattern, /^[.\w-]+$/);
  for (const needed of [".git", "node_modules", "data", ".tmp", "purple"]) {
    assert.ok(patterns.includes(needed), `.dockerignore misses ${needed}`);
  }
  for (const kept of ["mod.ts", "server", "backends", "client", "bin", "examples", "deno.lock"]) {
    assert.ok(!patterns.includes(kept), `.dockerignore drops ${kept}, which the image needs`);
  }
});

Deno.test({
  name: "Dockerfile: its Deno build steps work in a copy of the context, and its CMD serves",
  sanitizeResources: false,
  async fn(t) {
    const tmp = await Deno.makeTempDir({ prefix: "purple-image-" });
    const app = `${tmp}/app`;
    const ignored = (await Deno.readTextFile(`${ROOT}/.dockerignore`)).split("\n")
      .filter((line) => line.trim() !== "" && !line.startsWith("#"));
    const copy = async (source: string, target: string) => {
      const info = await Deno.stat(source);
      if (info.isDirectory) {
        await Deno.mkdir(target, { recursive: true });
        for await (const entry of Deno.readDir(source)) {
          await copy(`${source}/${entry.name}`, `${target}/${entry.name}`);
        }
      } else {
        await Deno.copyFile(source, target);
        await Deno.chmod(target, info.mode! & 0o777);
      }
    };
    const replay = async (instruction: Instruction) => {
      const words = instruction.args.replace(/--chown=\S+\s+/, "").split(/\s+/);
      if (instruction.keyword === "COPY") {
        const destination = `${app}/${words.at(-1)}`;
        for (const source of words.slice(0, -1)) {
          if (source === ".") {
            for await (const entry of Deno.readDir(ROOT)) {
              if (!ignored.includes(entry.name)) {
                await copy(`${ROOT}/${entry.name}`, `${app}/${entry.name}`);
              }
            }
          } else {
            await Deno.mkdir(destination.replace(/\/[^/]*$/, ""), { recursive: true });
            await copy(
              `${ROOT}/${source}`,
              `${destination}${destination.endsWith("/") ? source.split("/").pop() : ""}`,
            );
          }
        }
      } else if (instruction.keyword === "RUN" && words[0] === "deno") {
        const { code, stderr } = await run(Deno.execPath(), words.slice(1), { cwd: app });
        assert.equal(code, 0, `${instruction.args} failed:\n${stderr}`);
      }
    };
    try {
      await Deno.mkdir(app);
      const code = dockerfile.findIndex((i) => i.keyword === "COPY" && /\. \.$/.test(i.args));
      if (
        !await t.step(
          "the dependency layer installs from deno.json, deno.lock and the members' deno.json",
          async () => {
            for (const instruction of dockerfile.slice(0, code)) await replay(instruction);
            const copied = [];
            for await (const entry of Deno.readDir(app)) copied.push(entry.name);
            assert.deepEqual(copied.sort(), [
              "client",
              "deno.json",
              "deno.lock",
              "node_modules",
              "protocol",
            ]);
            await Deno.stat(`${app}/node_modules/hono/package.json`);
            await Deno.stat(`${app}/node_modules/@grpc/grpc-js/package.json`);
          },
        )
      ) return; // A later step would only fail for the same reason.
      if (
        !await t.step(
          "the code layer caches every module, without changing deno.lock",
          async () => {
            for (const instruction of dockerfile.slice(code)) await replay(instruction);
            // node_modules is the image's own, from deno install; the rest of the ignored is absent.
            for (const name of ignored.filter((name) => name !== "node_modules")) {
              await assert.rejects(Deno.stat(`${app}/${name}`), Deno.errors.NotFound, name);
            }
            assert.equal(
              await Deno.readTextFile(`${app}/deno.lock`),
              await Deno.readTextFile(`${ROOT}/deno.lock`),
            );
          },
        )
      ) return; // A later step would only fail for the same reason.
      await t.step(
        "the image's CMD serves (on loopback here), its data in PURPLE_DATA_DIR",
        async () => {
          const [program, ...args] = IMAGE_CMD;
          const purple = start(program, [
            ...args,
            "--host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--grpc-port",
            "0",
          ], {
            cwd: app,
            env: {
              PATH: IMAGE_ENV.PATH.replace("/app", app).replace("$PATH", Deno.env.get("PATH")!),
              PURPLE_DATA_DIR: `${tmp}/data`,
            },
          });
          try {
            const [, port] = await purple.line(/^Starting up the HTTP server on port (\d+)$/);
            await purple.line(/^Starting up the gRPC server on port \d+$/);
            assert.equal((await fetch(`http://127.0.0.1:${port}/ping`)).status, 200);
            const put = await fetch(`http://127.0.0.1:${port}/sets/image?item=built`, {
              method: "PUT",
            });
            assert.deepEqual(await put.json(), { set: "image", items: ["built"] });
            await Deno.stat(`${tmp}/data/purple.sqlite3`);
            assert.equal(await purple.stop(), 0);
          } finally {
            await purple.stop();
          }
        },
      );
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

interface ComposeService {
  build?: string;
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

const compose = parse(await Deno.readTextFile(`${ROOT}/docker-compose.yml`)) as {
  services: Record<string, ComposeService>;
};

Deno.test("docker-compose.yml: Purple on Redis, with the ports of its command", () => {
  const { purple, redis } = compose.services;
  assert.equal(purple.build, ".");
  assert.match(redis.image!, /^redis:\d/);
  assert.equal(purple.command![0], "purple");
  const config = purpleConfig(purple.command!.slice(1), { ...PURPLE_ENV, ...purple.environment });
  assert.equal(config.backend, "redis");
  assert.equal(config.hostname, "0.0.0.0");
  const redisUrl = new URL(config.redisUrl);
  assert.equal(redisUrl.hostname, "redis", "the Redis URL names the redis service");
  assert.equal(redisUrl.port, "6379");
  assert.deepEqual(purple.ports, [
    `${config.http}:${config.http}`,
    `${config.grpc}:${config.grpc}`,
  ]);
  assert.equal(purple.depends_on?.redis.condition, "service_healthy");
});

Deno.test("docker-compose.yml: Redis keeps an append-only file on its volume, as docs/durability.md says", async () => {
  const { redis } = compose.services as Record<string, ComposeService & { volumes?: string[] }>;
  const command = redis.command!.join(" ");
  assert.match(command, /^redis-server .*--appendonly yes/);
  assert.match(command, /--appendfsync everysec/);
  assert.deepEqual(redis.volumes, ["redis-data:/data"]);
  const durability = await Deno.readTextFile(`${ROOT}/docs/durability.md`);
  assert.match(
    durability,
    /the Compose file's writes an append-only file to\s+its volume `redis-data`/,
  );
});

Deno.test("docker-compose.yml: the TODO example on port 3000, over the purple service", () => {
  const { todo, purple } = compose.services;
  const config = purpleConfig(purple.command!.slice(1), PURPLE_ENV);
  assert.equal(todo.build, ".");
  assert.deepEqual(todo.command, [
    "deno",
    "run",
    "--allow-net",
    "--allow-env",
    "examples/todo/main.ts",
  ]);
  assert.equal(todo.environment?.PURPLE_URL, `http://purple:${config.http}`);
  assert.equal(todo.environment?.TODO_HOST, "0.0.0.0");
  assert.deepEqual(todo.ports, [`3000:${todo.environment?.TODO_PORT}`]);
  assert.equal(todo.depends_on?.purple.condition, "service_healthy");
  // The image's HEALTHCHECK asks port 8080; the example's own asks its port.
  assert.match(todo.healthcheck!.test.at(-1)!, /fetch\('http:\/\/127\.0\.0\.1:3000\/todos'\)/);
});

// ---------------------------------------------------------------------------------------------
// Kubernetes

// deno-lint-ignore no-explicit-any
type Manifest = any;

async function manifests(file: string): Promise<Manifest[]> {
  const documents = parseAllDocuments(await Deno.readTextFile(`${ROOT}/deploy/${file}`));
  assert.ok(Array.isArray(documents), `${file} does not parse`);
  for (const document of documents) assert.deepEqual(document.errors, [], file);
  return documents.map((document) => document.toJS());
}

function find(docs: Manifest[], kind: string, name: string): Manifest {
  const found = docs.find((doc) => doc.kind === kind && doc.metadata.name === name);
  assert.ok(found, `No ${kind} named ${name}`);
  return found;
}

/** Checks a Deployment and its Service, and returns the Purple container's configuration. */
function checkDeployment(
  docs: Manifest[],
  name: string,
): { config: CliConfig; container: Manifest } {
  const deployment = find(docs, "Deployment", name);
  const labels = deployment.spec.template.metadata.labels;
  assert.deepEqual(deployment.spec.selector.matchLabels, labels);
  const pod = deployment.spec.template.spec;
  for (const container of pod.containers) {
    for (const kind of ["requests", "limits"]) {
      assert.ok(container.resources?.[kind]?.cpu, `${name}/${container.name}: ${kind}.cpu`);
      assert.ok(container.resources?.[kind]?.memory, `${name}/${container.name}: ${kind}.memory`);
    }
    assert.ok(container.readinessProbe && container.livenessProbe, `${name}: probes`);
  }
  const service = find(docs, "Service", name);
  assert.deepEqual(service.spec.selector, labels);
  const container = pod.containers[0];
  if (container.image === undefined || !container.image.startsWith("purple:")) {
    return { config: undefined as never, container };
  }
  assert.equal(container.image, `purple:${version}`);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0, "runAsUser is not root");
  assert.equal(container.command, undefined, "the image's entrypoint runs the args");
  assert.equal(container.args[0], "purple");
  const env = Object.fromEntries((container.env ?? []).map((e: Manifest) => [e.name, e.value]));
  const config = purpleConfig(container.args.slice(1), { ...PURPLE_ENV, ...env });
  assert.equal(config.hostname, "0.0.0.0");
  // The Service reaches the container's port by name.
  const [port] = service.spec.ports;
  const containerPort = container.ports.find((p: Manifest) => p.name === port.targetPort);
  assert.ok(containerPort, `${name}: the Service's targetPort ${port.targetPort} is not a port`);
  return { config, container: { ...container, port: containerPort.containerPort } };
}

/** The Redis of both Purple manifests: deploy/redis-k8s.yaml, a file of its own. */
async function checkRedis(config: CliConfig): Promise<void> {
  const docs = await manifests("redis-k8s.yaml");
  const service = find(docs, "Service", "purple-redis");
  const url = new URL(config.redisUrl);
  assert.equal(url.hostname, service.metadata.name);
  assert.equal(Number(url.port), service.spec.ports[0].port);
  checkDeployment(docs, "purple-redis");
}

/** The access tokens come from the Secret purple-auth, optional (deploy/purple-secret-k8s.yaml). */
async function checkTokens(container: Manifest): Promise<void> {
  const secret = find(await manifests("purple-secret-k8s.yaml"), "Secret", "purple-auth");
  const fromSecret = (container.env ?? []).filter((e: Manifest) => e.valueFrom?.secretKeyRef);
  assert.deepEqual(
    fromSecret.map((e: Manifest) => e.name).sort(),
    ["PURPLE_AUTH_TOKEN", "PURPLE_READ_TOKEN"],
  );
  for (const { name, valueFrom: { secretKeyRef } } of fromSecret) {
    assert.deepEqual(secretKeyRef, { name: "purple-auth", key: name, optional: true });
    assert.equal(secret.stringData[name], "", `${name}: the stub holds no token`);
  }
  // An empty variable is unset: the stub as it is requires no token.
  const config = purpleConfig(container.args.slice(1), secret.stringData);
  assert.equal(config.auth, undefined);
}

Deno.test("deploy/purple-http-k8s.yaml: purple http on Redis, probed on /ping", async () => {
  const docs = await manifests("purple-http-k8s.yaml");
  const { config, container } = checkDeployment(docs, "purple-http");
  assert.equal(container.args[1], "http");
  assert.equal(config.backend, "redis");
  assert.equal(config.grpc, undefined);
  assert.equal(container.port, config.http);
  for (const probe of [container.readinessProbe, container.livenessProbe]) {
    assert.equal(probe.httpGet.path, "/ping");
    const port = container.ports.find((p: Manifest) => p.name === probe.httpGet.port);
    assert.equal(port?.containerPort ?? probe.httpGet.port, config.http);
  }
  await checkRedis(config);
  await checkTokens(container);
});

Deno.test("deploy/purple-grpc-k8s.yaml: purple grpc on Redis, probed by the gRPC health service", async () => {
  const docs = await manifests("purple-grpc-k8s.yaml");
  const { config, container } = checkDeployment(docs, "purple-grpc");
  assert.equal(container.args[1], "grpc");
  assert.equal(config.backend, "redis");
  assert.equal(config.http, undefined);
  assert.equal(container.port, config.grpc);
  for (const probe of [container.readinessProbe, container.livenessProbe]) {
    assert.deepEqual(Object.keys(probe.grpc), ["port"], "asks the overall health (service '')");
    assert.equal(probe.grpc.port, config.grpc);
  }
  await checkRedis(config);
  await checkTokens(container);
});

Deno.test("deploy/: Redis is in a file of its own, so deleting one Purple leaves the other's", async () => {
  for (const file of ["purple-http-k8s.yaml", "purple-grpc-k8s.yaml"]) {
    const docs = await manifests(file);
    assert.deepEqual(docs.filter((doc) => doc.metadata.name === "purple-redis"), [], file);
    assert.match(
      await Deno.readTextFile(`${ROOT}/deploy/${file}`),
      /kubectl apply -f deploy\/redis-k8s\.yaml/,
      `${file} says to apply the Redis first`,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Redis Cluster: Kubernetes and Compose

Deno.test("deploy/purple-redis-cluster-k8s.yaml: Purple replicas on a 3+3 Redis Cluster, probed", async () => {
  const docs = await manifests("purple-redis-cluster-k8s.yaml");
  const { config, container } = checkDeployment(docs, "purple");
  const deployment = find(docs, "Deployment", "purple");
  assert.ok(deployment.spec.replicas >= 2, "several Purple replicas");
  assert.equal(config.backend, "redis");
  assert.equal(config.redis?.redisCluster, true);
  assert.equal(config.redis?.redisLayout, undefined, "a cluster implies the prefixed layout");
  assert.equal(config.redis?.redisPrefix, "purple:");
  assert.ok(config.http !== undefined && config.grpc !== undefined, "HTTP and gRPC");
  assert.equal(container.readinessProbe.httpGet.path, "/ping");
  assert.equal(container.livenessProbe.grpc.port, config.grpc);
  const service = find(docs, "Service", "purple");
  assert.deepEqual(
    service.spec.ports.map((p: Manifest) => p.targetPort).sort(),
    container.ports.map((p: Manifest) => p.name).sort(),
  );
  // The seeds are pods of the StatefulSet, by the names of its headless Service.
  const nodes = find(docs, "StatefulSet", "purple-redis-cluster");
  const headless = find(docs, "Service", "purple-redis-cluster");
  assert.equal(headless.spec.clusterIP, "None");
  assert.equal(nodes.spec.serviceName, headless.metadata.name);
  assert.equal(nodes.spec.replicas, 6, "three masters and three replicas");
  const pod = nodes.spec.template.spec;
  assert.ok(pod.securityContext.runAsNonRoot);
  for (const probe of ["readinessProbe", "livenessProbe"]) assert.ok(pod.containers[0][probe]);
  for (const seed of config.redisUrl.split(",")) {
    const url = new URL(seed);
    assert.match(url.hostname, /^purple-redis-cluster-[0-5]\.purple-redis-cluster$/);
    assert.equal(url.port, "6379");
  }
  const redisConf = find(docs, "ConfigMap", "purple-redis-cluster").data["redis.conf"];
  assert.match(redisConf, /^cluster-enabled yes$/m);
  assert.match(pod.containers[0].command.join(" "), /--cluster-announce-hostname/);
  // The Job makes the cluster of all six, with a replica for each master.
  const job = find(docs, "Job", "purple-redis-cluster-create");
  const script = job.spec.template.spec.containers[0].command.join(" ");
  assert.match(script, /for i in 0 1 2 3 4 5/);
  assert.match(script, /redis-cli --cluster create \$nodes --cluster-replicas 1 --cluster-yes/);
  await checkTokens(container);
  for (const budget of ["purple", "purple-redis-cluster"]) {
    assert.ok(find(docs, "PodDisruptionBudget", budget).spec.selector);
  }
});

Deno.test("deploy/redis-cluster-compose.yml: two Purples on a local 3+3 Redis Cluster", async () => {
  const file = parse(await Deno.readTextFile(`${ROOT}/deploy/redis-cluster-compose.yml`), {
    merge: true,
  }) as { services: Record<string, ComposeService & { hostname?: string }> };
  const { services } = file;
  const nodes = Object.keys(services).filter((name) => /^redis-\d$/.test(name));
  assert.equal(nodes.length, 6);
  for (const name of nodes) {
    assert.equal(services[name].hostname, name);
    assert.match(services[name].command!.join(" "), /--cluster-enabled yes/);
  }
  const create = services["redis-cluster-create"];
  assert.deepEqual(create.command, [
    "redis-cli",
    "--cluster",
    "create",
    ...nodes.map((name) => `${name}:6379`),
    "--cluster-replicas",
    "1",
    "--cluster-yes",
  ]);
  const purples = Object.keys(services).filter((name) => name.startsWith("purple-"));
  assert.equal(purples.length, 2);
  for (const name of purples) {
    const purple = services[name];
    assert.equal(purple.build, "..", "built from the repository's Dockerfile");
    const config = purpleConfig(purple.command!.slice(1), PURPLE_ENV);
    assert.equal(config.redis?.redisCluster, true);
    for (const seed of config.redisUrl.split(",")) {
      assert.ok(nodes.includes(new URL(seed).hostname), seed);
    }
    assert.equal(
      purple.depends_on?.["redis-cluster-create"].condition,
      "service_completed_successfully",
    );
    assert.deepEqual(
      purple.ports?.map((port) => port.split(":")[1]),
      [String(config.http), String(config.grpc)],
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Heroku

const HEROKU_ENV = { PORT: "41234", REDIS_URL: "rediss://:secret@ec2-1-2-3-4.example.com:6380" };

/** Expands `$NAME` as the shell does, from `env`. */
function expand(command: string, env: Record<string, string>): string[] {
  return command.split(/\s+/).map((word) =>
    word.replace(/\$([A-Z_]+)/g, (_, name) => {
      assert.ok(env[name] !== undefined, `$${name} is not set`);
      return env[name];
    })
  );
}

Deno.test("Procfile: the web process is purple http on $PORT, on Heroku's $REDIS_URL", async () => {
  const lines = (await Deno.readTextFile(`${ROOT}/Procfile`)).trim().split("\n");
  assert.equal(lines.length, 1);
  const [, type, command] = /^(\w+): (.*)$/.exec(lines[0]) ?? [];
  assert.equal(type, "web");
  const [program, ...args] = expand(command, HEROKU_ENV);
  assert.equal(program, "bin/purple");
  const config = purpleConfig(args, HEROKU_ENV);
  assert.equal(args[0], "http");
  assert.equal(config.http, Number(HEROKU_ENV.PORT));
  assert.equal(config.hostname, "0.0.0.0");
  assert.equal(config.backend, "redis");
  assert.equal(config.redisUrl, HEROKU_ENV.REDIS_URL);
  // Heroku Redis's self-signed certificate is accepted for Redis alone, not for the process.
  assert.equal(config.redis?.redisInsecureTls, true);
  for (const page of ["README.md", "docs/deploy.md"]) {
    const text = await Deno.readTextFile(`${ROOT}/${page}`);
    assert.ok(
      !text.includes("NODE_TLS_REJECT_UNAUTHORIZED"),
      `${page}: no process-wide TLS opt-out`,
    );
  }
});

Deno.test("heroku.yml: builds the Dockerfile and runs the Procfile's command", async () => {
  const heroku = parse(await Deno.readTextFile(`${ROOT}/heroku.yml`));
  assert.deepEqual(heroku.build, { docker: { web: "Dockerfile" } });
  const procfile = (await Deno.readTextFile(`${ROOT}/Procfile`)).trim().replace(/^web: /, "");
  assert.equal(heroku.run.web, procfile.replace(/^bin\/purple /, "purple "));
});

// ---------------------------------------------------------------------------------------------
// Deno Deploy

Deno.test({
  name: "deploy/deno_deploy.ts serves HTTP over Deploy's KV (Deno.openKv() without a path)",
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "purple-deploy-" });
    // What Deploy provides: DENO_DEPLOYMENT_ID, its KV behind Deno.openKv(), its address.
    const env = {
      DENO_DEPLOYMENT_ID: "purple-test",
      DENO_KV_DEFAULT_PATH: `${tmp}/deploy-kv.sqlite3`,
      DENO_SERVE_ADDRESS: "tcp:127.0.0.1:0",
    };
    const entry = `${ROOT}/deploy/deno_deploy.ts`;
    const serve = () => start(Deno.execPath(), ["run", "-A", entry], { cwd: tmp, env });
    try {
      const first = serve();
      const [, url] = await first.line(/^Listening on (http:\/\/127\.0\.0\.1:\d+)\//);
      const put = await fetch(`${url}/counters/deployed?increment=3`, { method: "PUT" });
      assert.deepEqual(await put.json(), { counter: "deployed", value: 3 });
      await first.stop();
      await Deno.stat(env.DENO_KV_DEFAULT_PATH);
      await assert.rejects(Deno.stat(`${tmp}/data`), Deno.errors.NotFound, "no ./data on Deploy");

      const second = serve();
      const [, again] = await second.line(/^Listening on (http:\/\/127\.0\.0\.1:\d+)\//);
      const get = await fetch(`${again}/counters/deployed`);
      assert.deepEqual(await get.json(), { counter: "deployed", value: 3 });
      await second.stop();
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("deploy/deno_deploy.ts is purple http anywhere else", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "purple-deploy-local-" });
  const local = start(
    Deno.execPath(),
    ["run", "-A", `${ROOT}/deploy/deno_deploy.ts`, "--backend", "memory", "--port", "0"],
    { cwd: tmp },
  );
  try {
    const [, port] = await local.line(/^Starting up the HTTP server on port (\d+)$/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/ping`)).status, 200);
    assert.equal(await local.stop(), 0);
  } finally {
    await local.stop();
    await Deno.remove(tmp, { recursive: true });
  }
});
