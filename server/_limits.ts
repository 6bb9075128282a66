/**
 * The limits both servers enforce beyond input sizes (which the checked backend enforces):
 * how many requests run at once, how long a backend operation may take, and how long a client
 * may take to send its request. Each breach is a typed error, answered through the one status
 * table of `@purple/client/errors`:
 *
 * | breach                                  | error                  | HTTP | gRPC               |
 * | --------------------------------------- | ---------------------- | ---- | ------------------ |
 * | more than `maxConcurrentRequests`       | `UnavailableError`     | 503  | `UNAVAILABLE`      |
 * | a backend operation over `backendTimeoutMs` | `UnavailableError` | 503  | `UNAVAILABLE`      |
 * | a request body over `bodyTimeoutMs`     | `InvalidArgumentError` | 400  | `INVALID_ARGUMENT` |
 *
 * This module holds the HTTP side and what both share; `_grpc_limits.ts` the gRPC interceptor.
 * A busy server refuses at once rather than queueing (a queue only adds latency to a server
 * that is already behind, and hides the overload from the client); health checks (`GET
 * /ping`, `grpc.health.v1.Health`) are never refused, nor counted against the limit by gRPC.
 *
 * @module
 */

import type { CounterAmount, KvValue, Operations } from "@purple/client";
import { HTTP_STATUS, InvalidArgumentError, UnavailableError } from "@purple/client/errors";
import type { Limits } from "../backends/limits.ts";
import { settlesAtOnce } from "../backends/checked.ts";
import { rawPath } from "./_http_input.ts";

/**
 * Wraps operations so that each one that takes longer than `timeoutMs` rejects with
 * `UnavailableError`. The operation itself is not cancelled (no backend can take back a write
 * in flight): a write that times out may still be applied. Its late result or error is dropped.
 * The checked memory backend is returned as it is: its operations settle before any timer runs.
 *
 * @param ops The operations (a checked backend).
 * @param timeoutMs The longest an operation may take, in milliseconds.
 * @returns The same operations, each within the time limit; `close()` is not limited.
 *
 * @example
 * ```ts
 * import { openBackend } from "@purple/server/backends";
 * import { withBackendTimeout } from "./_limits.ts";
 *
 * const ops = withBackendTimeout(await openBackend({ kind: "memory" }), 5_000);
 * await ops.flagSet("beta", true);
 * await ops.close();
 * ```
 */
export function withBackendTimeout(ops: Operations, timeoutMs: number): Operations {
  // The memory backend's operations settle before the timer could run: nothing to limit.
  if (settlesAtOnce(ops)) return ops;
  return new TimedOperations(ops, timeoutMs);
}

/** An operation in flight and how to fail it. */
interface Pending {
  deadline: number;
  fail: () => void;
}

/**
 * One sweep timer for every operation in flight (not a timer each: the sweep runs only while
 * operations are in flight, and costs far less per request than a `setTimeout` each).
 */
class TimedOperations implements Operations {
  #ops: Operations;
  #timeoutMs: number;
  /** In start order, which is deadline order: every operation gets the same time. */
  #pending = new Set<Pending>();
  #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(ops: Operations, timeoutMs: number) {
    this.#ops = ops;
    this.#timeoutMs = timeoutMs;
  }

  cacheGet(key: string): Promise<string> {
    return this.#within(this.#ops.cacheGet(key), "get cache key", key);
  }
  cacheSet(key: string, value: string, ttl?: number): Promise<void> {
    return this.#within(this.#ops.cacheSet(key, value, ttl), "set cache key", key);
  }
  counterIncrement(key: string, amount: CounterAmount): Promise<bigint> {
    return this.#within(this.#ops.counterIncrement(key, amount), "increment counter", key);
  }
  counterGet(key: string): Promise<bigint> {
    return this.#within(this.#ops.counterGet(key), "get counter", key);
  }
  flagGet(key: string): Promise<boolean> {
    return this.#within(this.#ops.flagGet(key), "get flag", key);
  }
  flagSet(key: string, value: boolean): Promise<void> {
    return this.#within(this.#ops.flagSet(key, value), "set flag", key);
  }
  kvGet(key: string): Promise<Uint8Array> {
    return this.#within(this.#ops.kvGet(key), "get KV key", key);
  }
  kvPut(key: string, value: KvValue): Promise<void> {
    return this.#within(this.#ops.kvPut(key, value), "put KV key", key);
  }
  kvDelete(key: string): Promise<void> {
    return this.#within(this.#ops.kvDelete(key), "delete KV key", key);
  }
  setGet(set: string): Promise<string[]> {
    return this.#within(this.#ops.setGet(set), "get set", set);
  }
  setAdd(set: string, item: string): Promise<string[]> {
    return this.#within(this.#ops.setAdd(set, item), "add to set", set);
  }
  setRemove(set: string, item: string): Promise<string[]> {
    return this.#within(this.#ops.setRemove(set, item), "remove from set", set);
  }
  close(): Promise<void> {
    return this.#ops.close();
  }

  #within<T>(operation: Promise<T>, action: string, key: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const ms = this.#timeoutMs;
      const entry: Pending = {
        deadline: Date.now() + ms,
        fail: () =>
          reject(
            new UnavailableError(
              `Cannot ${action} ${quote(key)}: the backend did not answer within ${ms} ms`,
            ),
          ),
      };
      this.#pending.add(entry);
      this.#sweeper ??= backgroundInterval(() => this.#sweep(), Math.min(100, Math.ceil(ms / 4)));
      operation.then((value) => {
        this.#settle(entry);
        resolve(value);
      }, (error) => {
        this.#settle(entry);
        reject(error);
      });
    });
  }

  /**
   * The sweep, not the settling, stops the timer once nothing is in flight: under load,
   * operations that settle at once would otherwise start and stop a timer each (a quarter of
   * the cost of a memory-backend request). The timer does not hold the process open; a
   * server's listener does.
   */
  #settle(entry: Pending): void {
    this.#pending.delete(entry);
  }

  #sweep(): void {
    const now = Date.now();
    for (const entry of this.#pending) {
      if (entry.deadline > now) break;
      this.#pending.delete(entry);
      entry.fail();
    }
    if (this.#pending.size === 0) this.#stopSweeping();
  }

  #stopSweeping(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}

/** An interval that does not keep the process alive (Deno and Node). */
function backgroundInterval(fn: () => void, ms: number): ReturnType<typeof setInterval> {
  const timer = setInterval(fn, ms);
  if (typeof timer === "number") Deno.unrefTimer(timer);
  else (timer as { unref?: () => void }).unref?.();
  return timer;
}

/** A wait that `Deadlines` expires unless it is cleared first. */
export interface Wait {
  /** When it expires, as a `Date.now()` time. */
  readonly deadline: number;
  /** What expiring does. */
  readonly expire: () => void;
}

/**
 * The deadlines of many waits, kept by one timer: each wait costs a Set entry instead of a
 * timer of its own (a timer costs some 1.3 us to set and clear in Deno 2.9, more than anything
 * else in a fast request). The timer sweeps every `periodMs` while waits are pending, stops
 * when none are, and never holds the process open (a server's listener does); a wait expires
 * up to `periodMs` after its deadline.
 *
 * @example
 * ```ts
 * import { Deadlines } from "./_limits.ts";
 *
 * const deadlines = new Deadlines(25);
 * const wait = deadlines.add(Date.now() + 100, () => console.log("too late"));
 * deadlines.clear(wait); // in time: nothing is printed
 * ```
 */
export class Deadlines {
  #waits = new Set<Wait>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #periodMs: number;

  /** @param periodMs How often the timer looks for expired waits, in milliseconds. */
  constructor(periodMs: number) {
    this.#periodMs = Math.max(1, Math.min(MAX_TIMER_MS, Math.floor(periodMs)));
  }

  /**
   * Calls `expire` once `deadline` has passed, unless the wait is cleared first.
   * @param deadline A `Date.now()` time.
   * @param expire What to do then.
   * @returns The wait, for {@linkcode Deadlines.clear}.
   */
  add(deadline: number, expire: () => void): Wait {
    const wait = { deadline, expire };
    this.#waits.add(wait);
    this.#timer ??= backgroundInterval(() => this.#sweep(), this.#periodMs);
    return wait;
  }

  /**
   * Forgets a wait, expired or not.
   * @param wait The wait from {@linkcode Deadlines.add}, or `undefined`.
   */
  clear(wait: Wait | undefined): void {
    if (wait !== undefined) this.#waits.delete(wait);
  }

  #sweep(): void {
    const now = Date.now();
    for (const wait of this.#waits) {
      if (wait.deadline > now) continue;
      this.#waits.delete(wait);
      wait.expire();
    }
    if (this.#waits.size > 0) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** One `Deadlines` for each body time limit, sweeping four times within it (at most 100 ms). */
const bodyDeadlines = new Map<number, Deadlines>();

function deadlinesFor(timeoutMs: number): Deadlines {
  let deadlines = bodyDeadlines.get(timeoutMs);
  if (deadlines === undefined) {
    deadlines = new Deadlines(Math.min(100, Math.ceil(timeoutMs / 4)));
    bodyDeadlines.set(timeoutMs, deadlines);
  }
  return deadlines;
}

function quote(key: string): string {
  return key.length > 64 ? `'${key.slice(0, 64)}…'` : `'${key}'`;
}

/**
 * The message of a request refused because the server is busy.
 *
 * @param limit The limit in force.
 * @returns The message, the same on both protocols.
 *
 * @example
 * ```ts
 * import { busyMessage } from "./_limits.ts";
 *
 * console.log(busyMessage(1024).startsWith("Cannot serve the request")); // true
 * ```
 */
export function busyMessage(limit: number): string {
  return `Cannot serve the request: Purple is busy with ${limit} requests (the limit), retry shortly`;
}

/**
 * Whether an HTTP request is a health check (`/ping`), which a busy server still answers.
 *
 * @param request The request.
 * @returns `true` for `/ping` with any method and query.
 *
 * @example
 * ```ts
 * import { isHealthCheck } from "./_limits.ts";
 *
 * console.log(isHealthCheck(new Request("http://localhost:8080/ping"))); // true
 * ```
 */
export function isHealthCheck(request: Request): boolean {
  return rawPath(request.url) === "/ping";
}

/**
 * The answer to an HTTP request that would exceed `maxConcurrentRequests`, or `undefined` when
 * it may run. Call it with the number of requests already running; health checks always run.
 *
 * @param request The arriving request.
 * @param running How many requests the server is already handling.
 * @param limits The limits in force.
 * @returns A 503 `{"error": ...}` answer with `Retry-After: 1`, or `undefined`.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS } from "@purple/server/backends";
 * import { refuseWhenBusy } from "./_limits.ts";
 *
 * const limits = { ...DEFAULT_LIMITS, maxConcurrentRequests: 1 };
 * const answer = refuseWhenBusy(new Request("http://localhost/flags/a"), 1, limits);
 * console.log(answer?.status); // 503
 * ```
 */
export function refuseWhenBusy(
  request: Request,
  running: number,
  limits: Limits,
): Response | undefined {
  if (running < limits.maxConcurrentRequests || isHealthCheck(request)) return undefined;
  return new Response(JSON.stringify({ error: busyMessage(limits.maxConcurrentRequests) }), {
    status: HTTP_STATUS.UNAVAILABLE,
    headers: { "content-type": "application/json", "retry-after": "1" },
  });
}

/**
 * Reads the next chunk of a request body, or throws `InvalidArgumentError` once `deadline`
 * (a `Date.now()` time, `Infinity` for none) has passed; the body is then cancelled, so nothing
 * of it is kept. A body that breaks off (the client went away, or sent a malformed chunked
 * encoding) is an `InvalidArgumentError` too: it is the client's doing, not an internal error.
 *
 * @param reader The body's reader.
 * @param deadline When the whole body must have arrived.
 * @param timeoutMs The time limit, for the message.
 * @param what What the body is, for the message (such as `KV value`).
 * @returns The next chunk, as `reader.read()` gives it.
 *
 * @example
 * ```ts
 * import { readBefore } from "./_limits.ts";
 *
 * const reader = new Blob(["abc"]).stream().getReader();
 * const { value } = await readBefore(reader, Date.now() + 1000, 1000, "KV value");
 * console.log(value?.length); // 3
 * ```
 */
export function readBefore(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  deadline: number,
  timeoutMs: number,
  what: string,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  const broken = (error: unknown) =>
    new InvalidArgumentError(`Bad ${what}: the request body broke off before its end`, {
      cause: error,
    });
  const left = deadline - Date.now();
  if (!(left <= MAX_TIMER_MS)) return reader.read().catch((error) => Promise.reject(broken(error)));
  const late = () => {
    reader.cancel().catch(() => {});
    return new InvalidArgumentError(
      `Bad ${what}: the request body did not arrive within ${timeoutMs} ms`,
    );
  };
  if (left <= 0) return Promise.reject(late());
  const deadlines = deadlinesFor(timeoutMs);
  return new Promise((resolve, reject) => {
    const wait = deadlines.add(deadline, () => reject(late()));
    reader.read().then((result) => {
      deadlines.clear(wait);
      resolve(result);
    }, (error) => {
      deadlines.clear(wait);
      reject(broken(error));
    });
  });
}

/**
 * The longest delay a timer takes (2^31 - 1 ms, about 24 days); a longer one fires at once.
 *
 * @example
 * ```ts
 * import { MAX_TIMER_MS } from "./_limits.ts";
 *
 * console.log(MAX_TIMER_MS); // 2147483647
 * ```
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
