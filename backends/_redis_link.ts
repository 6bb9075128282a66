// One connection of the Redis backend (to one database), which fails fast while Redis is away
// and reconnects by itself. Private to this folder.
//
// ioredis's own reconnection is switched off (`retryStrategy` returns null): a client whose
// connection ends is replaced by a new client after a capped backoff. ioredis cannot cancel its
// own pending reconnection without leaving a 2 s timer behind, and a fresh client is cheap.

import { Redis, type RedisOptions } from "ioredis";

/** The first and the longest wait before reconnecting, in milliseconds. */
const FIRST_RETRY_DELAY_MS = 50;
const MAX_RETRY_DELAY_MS = 500;

/** A connection to one database, and what the stall watchdog needs to know about it. */
export class RedisLink {
  /** The current client; replaced after its connection ended. */
  client: Redis;
  /** Commands sent and not yet answered. */
  pending = 0;
  /** When a reply last arrived (or when waiting started), from `Date.now()`. */
  progressAt = 0;
  /** The current connection problem, cleared when the connection is ready again. */
  problem: string | undefined;

  #options: RedisOptions;
  #attempt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #reconnecting = false;
  #closing = false;

  /**
   * @param options The ioredis options (its reconnection and lazyConnect are overridden).
   */
  constructor(options: RedisOptions) {
    // disconnectTimeout 0: a connection that is dropped is destroyed at once, without waiting
    // for the server's goodbye (a hanging server never sends it).
    this.#options = {
      ...options,
      lazyConnect: true,
      retryStrategy: () => null,
      disconnectTimeout: 0,
    };
    this.client = this.#create();
  }

  /** Connects for the first time; from then on the link reconnects by itself. */
  async connect(): Promise<void> {
    try {
      await this.client.connect();
    } catch (error) {
      // ioredis rejects with "Connection is closed."; its 'error' event said why.
      throw new Error(this.problem ?? (error as Error).message, { cause: error });
    }
    this.#reconnecting = true;
  }

  /** Drops the connection now, as if Redis had closed it; the link reconnects. */
  drop(reason: string): void {
    this.problem = reason;
    this.client.stream?.destroy(new Error(reason));
  }

  /**
   * Ends the link for good: `QUIT` when connected, else (or when `QUIT` gets no answer within
   * `timeoutMs`) drops the connection at once.
   */
  async close(timeoutMs: number): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#retryTimer);
    const client = this.client;
    if (client.status === "end") return;
    const ended = new Promise<void>((resolve) => client.once("end", () => resolve()));
    if (client.status === "ready") {
      const timer = setTimeout(() => client.disconnect(), timeoutMs);
      await client.quit().catch(() => client.disconnect());
      await ended;
      clearTimeout(timer);
    } else {
      client.disconnect();
      await ended;
    }
  }

  #create(): Redis {
    const client = new Redis(this.#options);
    let reported = false;
    client.on("error", (error: Error) => {
      // The first error of a client is the cause; later ones follow from it (a failed AUTH is
      // followed by NOAUTH).
      if (this.client !== client || reported) return;
      reported = true;
      this.problem = error.message;
    });
    client.on("ready", () => {
      this.#attempt = 0;
      this.problem = undefined;
    });
    client.once("end", () => this.#ended(client));
    return client;
  }

  #ended(client: Redis): void {
    if (!this.#reconnecting || this.#closing || client !== this.client) return;
    this.problem ??= "the connection was closed";
    const delay = Math.min(FIRST_RETRY_DELAY_MS * 2 ** this.#attempt++, MAX_RETRY_DELAY_MS);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#closing) return;
      this.client = this.#create();
      this.client.connect().catch(() => {/* 'end' follows and schedules the next attempt */});
    }, delay);
  }
}
