// Watching keys of the Redis backend. Private to this folder.
//
// Purple publishes to a channel of its own after every write (not Redis keyspace notifications,
// which need `notify-keyspace-events` set on the server, which hosted Redis services often
// refuse to `CONFIG SET`): the channel of a key is `<prefix>watch:<service>:{<key>}`, the message
// empty. The publish goes out once the write's reply came (on a cluster, a PUBLISH may go to
// another node than the write: sent after the reply, it can never arrive first), and whatever
// the write's outcome (a write whose outcome is unknown may have been applied; a needless
// notification costs one read). Each Purple process that has watchers holds one subscriber
// connection, subscribed to the channels of its watched keys only, and reads a key again when
// its channel says so. A write made to Redis by anything else than Purple (redis-cli, the
// original Go Purple) publishes nothing and is not seen, until its writer publishes to the
// key's channel (docs/watch.md).
//
// - A key starts being watched: its channel is subscribed, and once Redis confirmed the
//   subscription the key is read again (a write between the first read and the subscription
//   is then not missed).
// - The subscriber connection is lost: it reconnects (after a capped backoff, to the next node
//   of a cluster: a PUBLISH reaches every node of a cluster), subscribes again and reads every
//   watched key again, since messages published meanwhile were lost.
// - A cache entry's expiry comes from `PEXPIRETIME` (Redis 7; `TIME` and `PTTL` before), read
//   with the value in one script.

import { type Cluster, Redis, type RedisOptions } from "ioredis";
import type { WatchChange } from "@purple/protocol";
import type { WatchTarget } from "@purple/protocol/watch";
import { parseCounter, parseFlag } from "./_redis_util.ts";
import { versionOf } from "./_redis_atomic.ts";
import { sortItems } from "./_util.ts";
import { WatchHub, type WatchStream } from "./_watch_hub.ts";
import type { Service } from "./_redis_layout.ts";

/** The value and the absolute expiry (ms) of a cache entry, or false when absent. */
const CACHE_STATE = `
local value = redis.call('GET', KEYS[1])
if not value then return false end
local at = redis.pcall('PEXPIRETIME', KEYS[1])
if type(at) == 'table' then
  local now = redis.call('TIME')
  at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + redis.call('PTTL', KEYS[1])
end
return {value, at}
`;

/** Runs a command on the connection of a service's key (the backend's `#run`). */
export type RunCommand = <T>(
  service: Service,
  key: string,
  command: (redis: Redis | Cluster, redisKey: string) => Promise<T>,
) => Promise<T>;

/** Where a subscriber may connect, and how. */
export interface SubscriberOptions {
  /** The nodes to try, in turn (one Redis: its address; a cluster: its nodes, then the seeds). */
  nodes: () => Array<{ host: string; port: number }>;
  /** Credentials, TLS and the connect timeout of every connection. */
  redisOptions: Pick<RedisOptions, "username" | "password" | "tls" | "connectTimeout">;
}

/** The first and the longest wait before the subscriber reconnects, in ms. */
const FIRST_RETRY_DELAY_MS = 50;
const MAX_RETRY_DELAY_MS = 1000;
/** Channels subscribed in one command at most. */
const CHANNELS_PER_COMMAND = 500;

/** The channel Purple publishes to after each write of a key (see the module comment). */
export function watchChannel(prefix: string, service: string, key: string): string {
  return `${prefix}watch:${service}:{${key}}`;
}

/**
 * One subscriber connection, subscribed to the channels of the watched keys, reconnecting by
 * itself while any is watched.
 */
class ChangeSubscriber {
  #options: SubscriberOptions;
  #onMessage: (channel: string) => void;
  #onSubscribed: (channels: readonly string[]) => void;
  #channels = new Set<string>();
  #client: Redis | undefined;
  #attempt = 0;
  #node = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    options: SubscriberOptions,
    onMessage: (channel: string) => void,
    onSubscribed: (channels: readonly string[]) => void,
  ) {
    this.#options = options;
    this.#onMessage = onMessage;
    this.#onSubscribed = onSubscribed;
  }

  add(channels: readonly string[]): void {
    for (const channel of channels) this.#channels.add(channel);
    if (this.#client === undefined) {
      if (this.#retryTimer === undefined) this.#connect();
    } else if (this.#client.status === "ready") this.#subscribe(this.#client, channels);
  }

  remove(channels: readonly string[]): void {
    for (const channel of channels) this.#channels.delete(channel);
    if (this.#channels.size === 0) return this.#disconnect();
    const client = this.#client;
    if (client?.status !== "ready") return;
    for (let i = 0; i < channels.length; i += CHANNELS_PER_COMMAND) {
      client.unsubscribe(...channels.slice(i, i + CHANNELS_PER_COMMAND)).catch(() => {});
    }
  }

  close(): void {
    this.#closed = true;
    this.#disconnect();
  }

  #disconnect(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const client = this.#client;
    this.#client = undefined;
    client?.disconnect();
  }

  #connect(): void {
    if (this.#closed || this.#channels.size === 0) return;
    const nodes = this.#options.nodes();
    const { host, port } = nodes[this.#node++ % nodes.length];
    const client = new Redis({
      ...this.#options.redisOptions,
      host,
      port,
      lazyConnect: true,
      retryStrategy: () => null, // Reconnects itself, to the next node.
      autoResubscribe: false, // Subscribes itself, then reads every watched key again.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      disconnectTimeout: 0,
    });
    this.#client = client;
    client.on("error", () => {/* 'end' follows; the next connection tries another node */});
    client.on("message", (channel: string) => this.#onMessage(channel));
    client.once("ready", () => {
      this.#attempt = 0;
      this.#subscribe(client, [...this.#channels]);
    });
    client.once("end", () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      const delay = Math.min(FIRST_RETRY_DELAY_MS * 2 ** this.#attempt++, MAX_RETRY_DELAY_MS);
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        this.#connect();
      }, delay);
    });
    client.connect().catch(() => {/* 'end' follows */});
  }

  #subscribe(client: Redis, channels: readonly string[]): void {
    for (let i = 0; i < channels.length; i += CHANNELS_PER_COMMAND) {
      const part = channels.slice(i, i + CHANNELS_PER_COMMAND);
      client.subscribe(...part).then(
        () => this.#onSubscribed(part),
        () => client.disconnect(), // Reconnects, and subscribes again.
      );
    }
  }
}

/** The watchers of one Redis backend (see the module comment). */
export class RedisWatch {
  #hub: WatchHub;
  #subscriber: ChangeSubscriber;
  #prefix: string;
  #run: RunCommand;
  /** The watched key of each subscribed channel. */
  #targets = new Map<string, WatchTarget>();

  /**
   * @param prefix The deployment prefix (channels are named after it).
   * @param run Runs a command on a key's connection (the backend's, with its error mapping).
   * @param subscriber Where the subscriber connects.
   */
  constructor(prefix: string, run: RunCommand, subscriber: SubscriberOptions) {
    this.#prefix = prefix;
    this.#run = run;
    this.#hub = new WatchHub({
      read: (targets) => Promise.all(targets.map((target) => this.#state(target))),
      onTargets: (added, removed) => this.#follow(added, removed),
    });
    const changed = (channel: string) => {
      const target = this.#targets.get(channel);
      if (target !== undefined) this.#hub.changed(target.service, target.key);
    };
    this.#subscriber = new ChangeSubscriber(subscriber, changed, (channels) => {
      for (const channel of channels) changed(channel);
    });
  }

  /** Opens a watcher (see `WatchHub.open`). */
  open(targets: readonly WatchTarget[], signal?: AbortSignal): WatchStream {
    return this.#hub.open(targets, signal);
  }

  /** The channel to publish to after a write of `key`. */
  channel(service: Service, key: string): string {
    return watchChannel(this.#prefix, service, key);
  }

  /** Ends every watcher and the subscriber connection. */
  close(): void {
    this.#hub.close();
    this.#subscriber.close();
  }

  #follow(added: readonly WatchTarget[], removed: readonly WatchTarget[]): void {
    if (removed.length > 0) {
      const gone = removed.map(({ service, key }) => this.channel(service, key));
      for (const channel of gone) this.#targets.delete(channel);
      this.#subscriber.remove(gone);
    }
    if (added.length > 0) {
      this.#subscriber.add(added.map((target) => {
        const channel = this.channel(target.service, target.key);
        this.#targets.set(channel, target);
        return channel;
      }));
    }
  }

  /** The state of a watched key now. */
  async #state(target: WatchTarget): Promise<WatchChange | Error> {
    const { service, key } = target;
    try {
      switch (service) {
        case "cache": {
          const reply = await this.#run(
            service,
            key,
            (redis, k) => (redis as Redis).eval(CACHE_STATE, 1, k),
          ) as [string, string | number] | null;
          if (reply === null) return { service, key, exists: false };
          return { service, key, exists: true, value: reply[0], expiresAt: Number(reply[1]) };
        }
        case "counters": {
          const raw = await this.#run(service, key, (redis, k) => (redis as Redis).get(k));
          return { service, key, exists: raw !== null, value: parseCounter(key, raw) };
        }
        case "flags": {
          const raw = await this.#run(service, key, (redis, k) => (redis as Redis).get(k));
          return { service, key, exists: raw !== null, value: parseFlag(key, raw) };
        }
        case "kv": {
          const raw = await this.#run(service, key, (redis, k) => (redis as Redis).getBuffer(k));
          if (raw === null) return { service, key, exists: false };
          const value = new Uint8Array(raw);
          return { service, key, exists: true, value, version: versionOf(value) };
        }
        case "sets": {
          const items = await this.#run(service, key, (redis, k) => (redis as Redis).smembers(k));
          return { service, key, exists: items.length > 0, items: sortItems(items) };
        }
      }
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }
}
