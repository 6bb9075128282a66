/**
 * Test harness: a private Redis Cluster of 3 masters and 3 replicas, six `redis-server`
 * processes in cluster mode on free loopback ports, joined with
 * `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`. A cluster this harness
 * did not start is never touched.
 *
 * Without `redis-server` or `redis-cli` on PATH the cluster tests are skipped with one loud line,
 * except under `CI=true`, where loading this module fails. `PURPLE_CLUSTER_LOG=<dir>` keeps each
 * node's log (`<dir>/<port>.log`, notice level) to see what a failover did.
 *
 * @module
 */

import { freePort } from "./_redis.ts";

/** One `redis-server` of the cluster. */
export interface ClusterNode {
  /** The loopback port it serves clients on. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Whether its process runs (it was not killed). */
  readonly running: boolean;
  /** Kills the process with SIGKILL (no goodbye to anyone) and waits for it. */
  kill(): Promise<void>;
  /**
   * Starts a killed node again, empty, with its cluster configuration: it rejoins the cluster
   * (as a replica of whoever took over its slots) and copies the data from its master.
   */
  start(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Lets a paused process run again (SIGCONT). */
  resume(): void;
}

/** A running cluster owned by a test. */
export interface RedisCluster {
  /** Every node's URL, comma-separated: the seed list `--redis-url` takes with a cluster. */
  readonly url: string;
  /** The six nodes, in start order. */
  readonly nodes: readonly ClusterNode[];
  /** The nodes that are masters right now (from `CLUSTER NODES`), those that run. */
  masters(): Promise<ClusterNode[]>;
  /** The node that serves a hash slot right now. */
  masterOf(slot: number): Promise<ClusterNode>;
  /** The (first) replica of a master. */
  replicaOf(master: ClusterNode): Promise<ClusterNode>;
  /** Runs `redis-cli -p <port> <args>` and returns its output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /**
   * Waits until every running node reports `cluster_state:ok`, agrees on the three masters,
   * and every replica has synced with its master.
   */
  waitUntilOk(ms?: number): Promise<void>;
  /** Stops every process and removes the files. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startRedisCluster}. */
export interface ClusterOptions {
  /**
   * `cluster-node-timeout`: how long a master may be unreachable before it is failed over, in
   * milliseconds. Default 1000 (Redis's own default is 15000).
   */
  nodeTimeoutMs?: number;
}

async function findProblem(): Promise<string | undefined> {
  for (const program of ["redis-server", "redis-cli"]) {
    try {
      const { success } = await new Deno.Command(program, { args: ["--version"] }).output();
      if (!success) return `\`${program} --version\` failed`;
    } catch (error) {
      return error instanceof Deno.errors.NotFound
        ? `${program} is not on PATH (Debian: apt-get install -y redis-server redis-tools)`
        : `${program} cannot run: ${error}`;
    }
  }
  return undefined;
}

/** Why Redis Cluster tests cannot run here, or `undefined` when they can. */
export const CLUSTER_MISSING: string | undefined = await findProblem();

if (CLUSTER_MISSING !== undefined) {
  if (Deno.env.get("CI") === "true") {
    throw new Error(`Redis Cluster tests must run in CI, but ${CLUSTER_MISSING}`);
  }
  console.error(
    `\n!!! SKIPPING REDIS CLUSTER TESTS: ${CLUSTER_MISSING}. Under CI=true this is a failure. !!!\n`,
  );
}

const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function run(program: string, args: string[]): Promise<string> {
  const { success, stdout, stderr } = await new Deno.Command(program, { args }).output();
  const out = decoder.decode(stdout);
  if (!success) {
    throw new Error(`${program} ${args.join(" ")} failed: ${out}${decoder.decode(stderr)}`);
  }
  return out;
}

async function waitForPort(port: number, child: Deno.ChildProcess, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  let exited = false;
  child.status.then(() => exited = true);
  while (Date.now() < deadline) {
    if (exited) throw new Error(`redis-server on port ${port} exited at start-up`);
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await sleep(20);
    }
  }
  throw new Error(`redis-server did not listen on port ${port} within ${ms} ms`);
}

/** Reads `CLUSTER NODES`: each line's address and whether it is a master that has not failed. */
function liveMasterPorts(nodesOutput: string): number[] {
  return nodesOutput.trim().split("\n").flatMap((line) => {
    const [, address, flags] = line.split(" ");
    const port = Number(address?.split("@")[0].split(":")[1]);
    const master = flags?.split(",").includes("master") && !/fail/.test(flags);
    return master && Number.isInteger(port) ? [port] : [];
  });
}

/**
 * Starts six `redis-server` processes in cluster mode (no persistence), makes them one cluster of
 * three masters with a replica each, and waits until every node reports `cluster_state:ok`.
 * Takes about a second or two.
 *
 * @param options The node timeout (how quickly a dead master is failed over).
 * @returns The running cluster; call `stop()` when done.
 */
export async function startRedisCluster(options: ClusterOptions = {}): Promise<RedisCluster> {
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const dir = await Deno.makeTempDir({ prefix: "purple-redis-cluster-" });
  const children = new Map<number, Deno.ChildProcess>();
  const nodes: ClusterNode[] = [];
  const signal = (port: number, name: Deno.Signal) => {
    try {
      children.get(port)?.kill(name);
    } catch { /* already gone */ }
  };
  const stopAll = async () => {
    for (const [port, child] of children) {
      signal(port, "SIGKILL");
      await child.status;
    }
    children.clear();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    for (let i = 0; i < 6; i++) {
      // The cluster bus listens on its own port; Redis's default (port + 10000) may not be free.
      const port = freePort();
      const busPort = freePort();
      const log = Deno.env.get("PURPLE_CLUSTER_LOG");
      const args = [
        ...["--port", String(port), "--cluster-port", String(busPort), "--bind", "127.0.0.1"],
        ...["--cluster-enabled", "yes", "--cluster-config-file", `${dir}/nodes-${port}.conf`],
        ...["--cluster-node-timeout", String(nodeTimeoutMs), "--dir", dir],
        ...["--save", "", "--appendonly", "no"],
        // Replicas sync at once instead of after Redis's default 5 s wait for company.
        ...["--repl-diskless-sync-delay", "0"],
        ...(log ? ["--loglevel", "notice", "--logfile", `${log}/${port}.log`] : []),
        ...(log ? [] : ["--loglevel", "warning"]),
      ];
      const spawn = async () => {
        const child = new Deno.Command("redis-server", { args, stdout: "null", stderr: "null" })
          .spawn();
        children.set(port, child);
        await waitForPort(port, child);
      };
      await spawn();
      nodes.push({
        port,
        url: `redis://127.0.0.1:${port}`,
        get running() {
          return children.has(port);
        },
        async kill() {
          signal(port, "SIGKILL");
          await children.get(port)?.status;
          children.delete(port);
        },
        async start() {
          if (!children.has(port)) await spawn();
        },
        pause: () => signal(port, "SIGSTOP"),
        resume: () => signal(port, "SIGCONT"),
      });
    }
    await run("redis-cli", [
      "--cluster",
      "create",
      ...nodes.map((node) => `127.0.0.1:${node.port}`),
      "--cluster-replicas",
      "1",
      "--cluster-yes",
    ]);
  } catch (error) {
    await stopAll();
    throw error;
  }

  const cli = (port: number, ...args: string[]) => run("redis-cli", ["-p", String(port), ...args]);
  const running = () => nodes.filter((node) => node.running);
  const cluster: RedisCluster = {
    url: nodes.map((node) => node.url).join(","),
    nodes,
    cli,
    async masters() {
      const ports = liveMasterPorts(await cli(running()[0].port, "cluster", "nodes"));
      return running().filter((node) => ports.includes(node.port));
    },
    async masterOf(slot: number) {
      const slots = await cli(running()[0].port, "--json", "cluster", "slots");
      const ranges = JSON.parse(slots) as [number, number, [string, number]][];
      const range = ranges.find(([from, to]) => from <= slot && slot <= to);
      const node = nodes.find((node) => node.port === range?.[2][1]);
      if (!node) throw new Error(`no node serves slot ${slot}: ${slots}`);
      return node;
    },
    async replicaOf(master: ClusterNode) {
      const info = await cli(master.port, "info", "replication");
      const port = Number(/slave0:ip=[^,]+,port=(\d+)/.exec(info)?.[1]);
      const node = nodes.find((node) => node.port === port);
      if (!node) throw new Error(`no replica of :${master.port}: ${info}`);
      return node;
    },
    async waitUntilOk(ms = 20_000) {
      const deadline = Date.now() + ms;
      let last = "";
      while (Date.now() < deadline) {
        const views = await Promise.all(
          running().map(async (node) => {
            const info = await cli(node.port, "cluster", "info").catch(String);
            const masters = await cli(node.port, "cluster", "nodes").catch(() => "");
            // A replica that has not synced with its master yet cannot take over from it.
            const replication = await cli(node.port, "info", "replication").catch(String);
            const synced = replication.includes("role:master") ||
              replication.includes("master_link_status:up");
            return {
              ok: info.includes("cluster_state:ok") && synced,
              masters: liveMasterPorts(masters),
            };
          }),
        );
        const agreed = views.every((view) =>
          view.ok && view.masters.length === 3 &&
          view.masters.sort().join() === views[0].masters.sort().join()
        );
        if (agreed) return;
        last = JSON.stringify(views);
        await sleep(50);
      }
      throw new Error(`the cluster is not ok after ${ms} ms: ${last}`);
    },
    stop: stopAll,
  };
  try {
    await cluster.waitUntilOk();
  } catch (error) {
    await stopAll();
    throw error;
  }
  return cluster;
}
