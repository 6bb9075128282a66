/**
 * The one deadline mechanism of the servers: {@linkcode Deadlines} keeps the deadlines of many
 * waits with one timer. Each server makes one ({@linkcode serverDeadlines}) and uses it for both
 * of its time limits: a backend operation that outlasts `backendTimeoutMs`, and a request body
 * (HTTP) or message (gRPC) that has not arrived `bodyTimeoutMs` after the request began.
 *
 * @module
 */

import { backgroundInterval } from "../backends/_util.ts";
import type { Limits } from "../backends/limits.ts";

/**
 * The longest delay a timer takes (2^31 - 1 ms, about 24 days); a longer one fires at once, so
 * a longer time limit means none.
 *
 * @example
 * ```ts
 * import { MAX_TIMER_MS } from "./_deadlines.ts";
 *
 * console.log(MAX_TIMER_MS); // 2147483647
 * ```
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

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
 * else in a fast request). The timer sweeps every `periodMs` while waits are pending and stops
 * when none are (the sweep, not the clearing, stops it: under load, waits that clear at once
 * would otherwise start and stop a timer each); it never holds the process open (a server's
 * listener does). A wait expires up to `periodMs` after its deadline.
 *
 * @example
 * ```ts
 * import { Deadlines } from "./_deadlines.ts";
 *
 * const deadlines = new Deadlines(25);
 * const wait = deadlines.add(Date.now() + 100, () => console.log("too late"));
 * deadlines.clear(wait); // in time: nothing is printed
 * ```
 */
export class Deadlines {
  #waits = new Set<Wait>();
  #stop: (() => void) | undefined;
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
    this.#stop ??= backgroundInterval(() => this.#sweep(), this.#periodMs);
    return wait;
  }

  /**
   * Forgets a wait, expired or not.
   * @param wait The wait from {@linkcode Deadlines.add}, or `undefined`.
   */
  clear(wait: Wait | undefined): void {
    if (wait !== undefined) this.#waits.delete(wait);
  }

  /**
   * Settles like `promise`, or rejects with `late()` once `timeoutMs` has passed first (the
   * promise goes on; what it settles with later is dropped). A limit beyond
   * {@linkcode MAX_TIMER_MS} is none.
   *
   * @param promise What to wait for.
   * @param timeoutMs The time limit, in milliseconds.
   * @param late The error to reject with when the limit passes.
   * @returns The promise, within the limit.
   */
  within<T>(promise: Promise<T>, timeoutMs: number, late: () => Error): Promise<T> {
    if (timeoutMs > MAX_TIMER_MS) return promise;
    return new Promise<T>((resolve, reject) => {
      const wait = this.add(Date.now() + timeoutMs, () => reject(late()));
      promise.then((value) => {
        this.clear(wait);
        resolve(value);
      }, (error) => {
        this.clear(wait);
        reject(error);
      });
    });
  }

  #sweep(): void {
    const now = Date.now();
    for (const wait of this.#waits) {
      if (wait.deadline > now) continue;
      this.#waits.delete(wait);
      wait.expire();
    }
    if (this.#waits.size > 0) return;
    this.#stop?.();
    this.#stop = undefined;
  }
}

/**
 * The deadlines of one server, for both of its time limits: the sweep runs four times within
 * the shorter limit, and at most every 100 ms.
 *
 * @param limits The limits in force.
 * @returns A new `Deadlines`.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS } from "@purple/server/backends";
 * import { serverDeadlines } from "./_deadlines.ts";
 *
 * const deadlines = serverDeadlines(DEFAULT_LIMITS); // sweeps every 100 ms while busy
 * deadlines.clear(undefined);
 * ```
 */
export function serverDeadlines(limits: Limits): Deadlines {
  const shorter = Math.min(limits.backendTimeoutMs, limits.bodyTimeoutMs);
  return new Deadlines(Math.min(100, Math.ceil(shorter / 4)));
}
