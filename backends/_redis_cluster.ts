// The Redis backend's connection to a Redis Cluster (ioredis' `Cluster`), tuned like a single
// RedisLink: fail fast while a part of the cluster is away, recover by itself. Private to this
// folder.
//
// What ioredis does, and what is changed (ioredis 5, lib/cluster/index.ts):
// - Redirections: a MOVED reply updates the slot table, the command goes to the new owner and
//   the whole table is refreshed (CLUSTER SLOTS); ASK is followed once. Kept (maxRedirections
//   16): that is how a failover or a resharding is learnt.
// - A node that closes is dropped from the pool (its connections never reconnect); its slots'
//   commands then go to another master, which answers MOVED with the slot's owner. During a
//   failover that owner is the dead master, whose connection is refused at once; once a replica
//   is promoted, MOVED names it and traffic flows again.
// - ioredis retries a command whose connection closed (retryDelayOnFailover, 100 ms, up to 16
//   times) and a CLUSTERDOWN reply (retryDelayOnClusterDown): turned off (0), so a write in
//   flight is never sent twice (INCRBY is not idempotent) and every call fails fast with
//   UnavailableError while the cluster fails over, instead of waiting in ioredis.
// - No offline queue: while the cluster is not connected, commands fail at once.
// - Losing every node ends the cluster's connection; `clusterRetryStrategy` reconnects to the
//   seeds after a capped backoff, forever.
// - Reads go to masters (`scaleReads: "master"`): replicas lag, and a read must see the write
//   that came before it.
// - A node that hangs (SIGSTOP, a stuck disk) gets no command timeout from ioredis: the stall
//   watchdog below drops a node whose oldest command waited longer than the command timeout.

import { Cluster, type ClusterOptions, type Redis } from "ioredis";
import type { RedisEndpoint } from "./_redis_util.ts";

/** The first and the longest wait before reconnecting to the seeds, in milliseconds. */
const FIRST_RETRY_DELAY_MS = 50;
const MAX_RETRY_DELAY_MS = 500;

/** The oldest unanswered command of a node, and when the watchdog first saw it there. */
interface Head {
  command: unknown;
  since: number;
}

/** A connection to a Redis Cluster, and what the stall watchdog needs to know about it. */
export class ClusterLink {
  /** The ioredis cluster client. */
  readonly client: Cluster;
  /** Commands sent and not yet answered (kept by the backend, for symmetry with RedisLink). */
  pending = 0;
  /** When a reply last arrived; unused for a cluster, whose watchdog looks at each node. */
  progressAt = 0;
  /** The latest connection problem (a node's error, a node dropped as stalled). */
  problem: string | undefined;
  /** When `problem` was set, from `Date.now()`. */
  problemAt = 0;

  #heads = new Map<Redis, Head>();
  #closing = false;

  /**
   * @param seeds The seed nodes (same credentials and TLS for all).
   * @param connectTimeoutMs How long connecting to one node may take.
   * @param tls The TLS options of `rediss://` seeds (`rejectUnauthorized: false` to skip the
   * certificate check).
   */
  constructor(
    seeds: RedisEndpoint[],
    connectTimeoutMs: number,
    tls: { rejectUnauthorized?: boolean } = {},
  ) {
    const [first] = seeds;
    const options: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      scaleReads: "master",
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      retryDelayOnTryAgain: 50,
      slotsRefreshTimeout: connectTimeoutMs,
      clusterRetryStrategy: (times) =>
        this.#closing
          ? null
          : Math.min(FIRST_RETRY_DELAY_MS * 2 ** Math.min(times - 1, 10), MAX_RETRY_DELAY_MS),
      redisOptions: {
        username: first.username,
        password: first.password,
        tls: first.tls ? tls : undefined,
        connectTimeout: connectTimeoutMs,
        // Fail what was in flight when a node's connection drops, never resend it.
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        // A node dropped by the watchdog is destroyed at once, without waiting for a goodbye.
        disconnectTimeout: 0,
        // Integer replies as strings, so counters stay exact past 2^53.
        stringNumbers: true,
      },
    };
    this.client = new Cluster(seeds.map(({ host, port }) => ({ host, port })), options);
    // ioredis reads the slot table (CLUSTER SLOTS) on a duplicate of a node's connection, with
    // that node's options: with stringNumbers its slot numbers are strings, compared as
    // strings ("5461" > "10922"), and a third of the slots goes missing. The duplicate parses
    // numbers as numbers; the connections that carry Purple's commands keep exact strings.
    this.client.on("+node", (node: Redis) => {
      const duplicate = node.duplicate.bind(node);
      node.duplicate = (override = {}) => duplicate({ ...override, stringNumbers: false });
      // ioredis connects to a node on its first command, and fails the commands that come
      // while that connection is being made (no offline queue): connect to a new master at once.
      // Not while the cluster connects: its ready check needs nodes that are idle or ready.
      if (this.client.status === "ready" && !node.options.readOnly) connectNode(node);
    });
    this.client.on("error", (error: Error) => this.#report(error.message));
    this.client.on("node error", (error: Error, node: string) => {
      this.#report(`node ${node}: ${error.message}`);
    });
    this.client.on("ready", () => this.problem = undefined);
  }

  /**
   * Connects for the first time: reads the slot table, then waits until every master's
   * connection is ready. From then on it reconnects by itself.
   */
  async connect(): Promise<void> {
    try {
      await this.client.connect();
      await Promise.all(this.client.nodes("master").map(connectNode));
    } catch (error) {
      const reason = (error as Error).message;
      const cause = (error as { lastNodeError?: Error }).lastNodeError?.message ?? this.problem;
      throw new Error(cause && cause !== reason ? `${reason}: ${cause}` : reason, {
        cause: error,
      });
    }
  }

  /**
   * Says why a command failed: its error, with the problem reported within the last `withinMs`
   * when the error only says that a connection closed.
   */
  explain(error: unknown, withinMs: number): string {
    let message = error instanceof Error ? error.message.replace(/\.$/, "") : String(error);
    if (message.startsWith("Cluster isn't ready")) message = "not connected to the cluster";
    const recent = this.problem !== undefined && Date.now() - this.problemAt <= withinMs;
    const vague = message === "Connection is closed" || message === "not connected to the cluster";
    return recent && vague ? `${message}: ${this.problem}` : message;
  }

  #report(problem: string): void {
    this.problem = problem;
    this.problemAt = Date.now();
  }

  /** Drops every node's connection now; commands waiting on them fail, the cluster reconnects. */
  drop(reason: string): void {
    this.#report(reason);
    for (const node of this.client.nodes("all")) node.stream?.destroy(new Error(reason));
  }

  /** Starts every node's count again (after this process was too busy to read replies). */
  forgetHeads(): void {
    this.#heads = new Map();
  }

  /**
   * Drops the connection of each node whose oldest unanswered command has waited longer than
   * `timeoutMs` (the node hangs). Called by the backend's watchdog every `timeoutMs / 5`; the
   * oldest command is compared by identity, so nothing is stamped per command.
   */
  dropStalledNodes(now: number, timeoutMs: number): void {
    const heads = new Map<Redis, Head>();
    for (const node of this.client.nodes("all")) {
      const command = node.commandQueue.peekFront();
      if (command === undefined) continue;
      const seen = this.#heads.get(node);
      if (seen?.command !== command) {
        heads.set(node, { command, since: now });
      } else if (now - seen.since > timeoutMs) {
        const { host, port } = node.options;
        const reason = `no reply within ${timeoutMs} ms`;
        this.#report(`node ${host}:${port}: ${reason}`);
        node.stream?.destroy(new Error(reason));
      } else {
        heads.set(node, seen);
      }
    }
    this.#heads = heads;
  }

  /** Ends the connection for good: `QUIT` to every node, or drops them after `timeoutMs`. */
  async close(timeoutMs: number): Promise<void> {
    this.#closing = true;
    const client = this.client;
    if (client.status === "end") return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = new Promise<void>((resolve) => {
      client.once("end", () => resolve());
      timer = setTimeout(() => {
        client.disconnect();
        resolve();
      }, timeoutMs);
    });
    if (client.status === "ready") await client.quit().catch(() => client.disconnect());
    else client.disconnect();
    await ended;
    clearTimeout(timer);
  }
}

/** Connects a node (when idle) and resolves once it is ready; rejects if it ends first. */
function connectNode(node: Redis): Promise<void> {
  if (node.status === "ready") return Promise.resolve();
  const ready = new Promise<void>((resolve, reject) => {
    const { host, port } = node.options;
    const ended = () => reject(new Error(`node ${host}:${port}: the connection was closed`));
    node.once("end", ended);
    node.once("ready", () => {
      node.off("end", ended);
      resolve();
    });
  });
  if (node.status === "wait") node.connect().catch(() => {/* 'end' says so */});
  ready.catch(() => {}); // awaited at start-up only
  return ready;
}
