/**
 * `GrpcClient`: Purple's operations over gRPC (grpc-js), in Deno and Node. It lives at its own
 * entry point so that importing `@purple/client` (the fetch-only `HttpClient`) never loads
 * grpc-js.
 *
 * Every operation takes an optional last argument, {@linkcode GrpcCallOptions}: a deadline and
 * an `AbortSignal`. Failures are the typed errors of `@purple/client/errors`, mapped back from
 * the gRPC status code; a server that cannot be reached, or does not answer within the
 * deadline, is an `UnavailableError`.
 *
 * The messages are those of `proto/purple.proto`, encoded by the codecs generated from it
 * (`@purple/protocol/wire`); to call Purple from another language, generate a client from the
 * same file.
 *
 * @example Using Purple over gRPC
 * ```ts ignore
 * import { GrpcClient } from "@purple/client/grpc";
 * import { NotFoundError } from "@purple/client/errors";
 *
 * const purple = new GrpcClient("localhost:8081");
 * await purple.cacheSet("session", "abc", 60);
 * console.log(await purple.counterIncrement("hits", 1)); // 1n
 * try {
 *   await purple.kvGet("missing", { deadlineMs: 500 });
 * } catch (error) {
 *   if (!(error instanceof NotFoundError)) throw error;
 * }
 * await purple.close();
 * ```
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import {
  BATCHABLE_NAMES,
  type BatchOperation,
  type BatchOptions,
  type BatchOutcomes,
  type CounterAmount,
  type KeyPage,
  type KeyService,
  keysOf,
  type KvEntry,
  type KvValue,
  type KvWriteOptions,
  type ListOptions,
  type Operations,
  type WatchChange,
  type WatchKeys,
  type WatchOptions,
  type WireOperationName,
} from "@purple/protocol";
import { watchKeysOf, watchTargets } from "@purple/protocol/watch";
import {
  codeFromGrpcStatus,
  errorFromCode,
  InternalError,
  InvalidArgumentError,
  UnavailableError,
} from "@purple/protocol/errors";
import {
  assertFlag,
  assertName,
  describe,
  kvValueBytes,
  normalizeAmount,
  normalizeBatch,
  normalizeListOptions,
  normalizeTtl,
  normalizeWriteOptions,
} from "@purple/protocol/validate";
import {
  type Arguments,
  GRPC_BINDINGS,
  grpcMethod,
  projectResult,
  type Result,
} from "@purple/protocol/wire";
import { channelSecurity, type GrpcTls, tokenMetadata } from "./_grpc_access.ts";

export type { GrpcTls } from "./_grpc_access.ts";

/**
 * The default deadline of a call, in milliseconds.
 *
 * @example
 * ```ts
 * import { DEFAULT_GRPC_TIMEOUT_MS } from "@purple/client/grpc";
 *
 * console.log(DEFAULT_GRPC_TIMEOUT_MS); // 10000
 * ```
 */
export const DEFAULT_GRPC_TIMEOUT_MS = 10_000;

/**
 * How a {@linkcode GrpcClient} connects and how long it waits.
 *
 * @example
 * ```ts
 * import type { GrpcClientOptions } from "@purple/client/grpc";
 *
 * const options: GrpcClientOptions = { timeoutMs: 2_000 };
 * ```
 */
export interface GrpcClientOptions {
  /**
   * The deadline of each call, in milliseconds, unless the call gives its own. Default
   * {@linkcode DEFAULT_GRPC_TIMEOUT_MS} (10 s); 0 (or `Infinity`) means no deadline.
   */
  timeoutMs?: number;
  /**
   * The access token of a server started with `--auth-token` or `--read-token`, sent as the
   * `authorization` metadata (`Bearer <token>`) of every call.
   */
  token?: string;
  /**
   * Connect over TLS: `true` trusts the system's CA certificates, `{ ca }` trusts only the
   * given PEM certificate(s) (a self-signed or private CA), and `serverName` names the host
   * the certificate must carry when the address does not (in Deno, a TLS server reached by IP
   * address needs it). Default: plaintext.
   */
  tls?: GrpcTls;
}

/**
 * Options of one call: the last, optional argument of every {@linkcode GrpcClient} operation.
 *
 * @example
 * ```ts ignore
 * import { GrpcClient } from "@purple/client/grpc";
 *
 * const purple = new GrpcClient("localhost:8081");
 * const flag = await purple.flagGet("beta", { deadlineMs: 250 });
 * ```
 */
export interface GrpcCallOptions {
  /** This call's deadline, in milliseconds from now; 0 (or `Infinity`) means none. */
  deadlineMs?: number;
  /**
   * The same as `deadlineMs`, under the name `HttpClient` gives it, so that code written for
   * either client works with both. `deadlineMs` wins when both are given.
   */
  timeoutMs?: number;
  /** Cancels the call; it then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Purple's operations over gRPC. Counters come back as `bigint`, exactly; KV values as
 * `Uint8Array`. Inputs a transport cannot carry faithfully (a fractional or unsafe counter
 * amount, a lone surrogate in a key, a flag that is not a boolean) are refused with
 * `InvalidArgumentError` before any call.
 *
 * @example
 * ```ts ignore
 * import { GrpcClient } from "@purple/client/grpc";
 *
 * const purple = new GrpcClient("localhost:8081", { timeoutMs: 2_000 });
 * await purple.setAdd("todos", "shopping");
 * console.log(await purple.setGet("todos")); // ["shopping"]
 * await purple.close();
 * ```
 */
export class GrpcClient implements Operations {
  #client: grpc.Client;
  #address: string;
  #timeoutMs: number;
  #metadata: grpc.Metadata | undefined;
  #closed = false;

  /**
   * Creates a client; it connects on the first call (and reconnects when needed).
   *
   * @param address The server's `host:port`, such as `localhost:8081`.
   * @param options The default deadline, the access token, and TLS.
   * @throws {InvalidArgumentError} When the timeout, the token or the TLS options are bad.
   */
  constructor(address: string, options: GrpcClientOptions = {}) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_GRPC_TIMEOUT_MS;
    assertMilliseconds("timeoutMs", timeoutMs);
    this.#address = address;
    this.#timeoutMs = timeoutMs;
    this.#metadata = tokenMetadata(options.token);
    const security = channelSecurity(options.tls);
    this.#client = new grpc.Client(address, security.credentials, {
      "grpc.max_receive_message_length": -1,
      ...security.options,
    });
  }

  /**
   * Reads a cache entry.
   * @param key The entry's key.
   * @param options The deadline and signal of this call.
   * @returns The value.
   * @throws {NotFoundError} When the key is absent or its TTL has passed.
   */
  async cacheGet(key: string, options?: GrpcCallOptions): Promise<string> {
    assertName("key", key);
    return await this.#call("cacheGet", [key], options);
  }

  /**
   * Sets a cache entry, overwriting its value and TTL.
   * @param key The entry's key.
   * @param value The value (non-empty).
   * @param ttl Seconds to live, a whole number; 0 or omitted means the default, 5 seconds.
   * @param options The deadline and signal of this call.
   */
  async cacheSet(
    key: string,
    value: string,
    ttl?: number,
    options?: GrpcCallOptions,
  ): Promise<void> {
    assertName("key", key);
    assertName("cache value", value);
    normalizeTtl(ttl); // Only checks: 0 travels as 0, the server applies the default.
    await this.#call("cacheSet", [key, value, ttl], options);
  }

  /**
   * Adds to a counter atomically; a missing counter counts as 0.
   * @param key The counter's key.
   * @param amount What to add: a bigint, or a number that is a safe integer.
   * @param options The deadline and signal of this call.
   * @returns The new value.
   */
  async counterIncrement(
    key: string,
    amount: CounterAmount,
    options?: GrpcCallOptions,
  ): Promise<bigint> {
    assertName("key", key);
    return await this.#call("counterIncrement", [key, normalizeAmount(amount)], options);
  }

  /**
   * Reads a counter.
   * @param key The counter's key.
   * @param options The deadline and signal of this call.
   * @returns Its value, 0n if it was never incremented.
   */
  async counterGet(key: string, options?: GrpcCallOptions): Promise<bigint> {
    assertName("key", key);
    return await this.#call("counterGet", [key], options);
  }

  /**
   * Reads a flag.
   * @param key The flag's key.
   * @param options The deadline and signal of this call.
   * @returns Its value, false if it was never set.
   */
  async flagGet(key: string, options?: GrpcCallOptions): Promise<boolean> {
    assertName("key", key);
    return await this.#call("flagGet", [key], options);
  }

  /**
   * Sets a flag.
   * @param key The flag's key.
   * @param value The new value.
   * @param options The deadline and signal of this call.
   */
  async flagSet(key: string, value: boolean, options?: GrpcCallOptions): Promise<void> {
    assertName("key", key);
    assertFlag(value);
    await this.#call("flagSet", [key, value], options);
  }

  /**
   * Reads a KV value.
   * @param key The value's key.
   * @param options The deadline and signal of this call.
   * @returns A copy of the stored bytes.
   * @throws {NotFoundError} When the key is absent.
   */
  async kvGet(key: string, options?: GrpcCallOptions): Promise<Uint8Array> {
    return (await this.kvGetEntry(key, options)).value;
  }

  /**
   * Reads a KV value and its version.
   * @param key The value's key.
   * @param options The deadline and signal of this call.
   * @returns A copy of the stored bytes, and their version.
   * @throws {NotFoundError} When the key is absent.
   */
  async kvGetEntry(key: string, options?: GrpcCallOptions): Promise<KvEntry> {
    assertName("key", key);
    return await this.#call("kvGetEntry", [key], options);
  }

  /**
   * Stores a KV value, overwriting any previous one; with `options`, only if the value's
   * version is the one given (`ifMatch`) or the key is absent (`ifNoneMatch: "*"`).
   * @param key The value's key.
   * @param value Non-empty bytes, or a string stored as UTF-8.
   * @param options The conditions, and the deadline and signal of this call.
   * @throws {ValueTooLargeError} When the value is over the server's limit (default 1 MiB).
   * @throws {PreconditionFailedError} When a condition does not hold (nothing is written).
   */
  async kvPut(
    key: string,
    value: KvValue,
    options?: KvWriteOptions & GrpcCallOptions,
  ): Promise<void> {
    assertName("key", key);
    const conditions = writeOptions(options);
    const args: [string, Uint8Array, KvWriteOptions?] = [key, kvValueBytes(value)];
    if (conditions !== undefined) args.push(conditions);
    await this.#call("kvPut", args, options);
  }

  /**
   * Deletes a KV value; with `options`, only if its version is the one given.
   * @param key The value's key.
   * @param options The conditions, and the deadline and signal of this call.
   * @throws {NotFoundError} When the key is absent.
   * @throws {PreconditionFailedError} When a condition does not hold (nothing is deleted).
   */
  async kvDelete(key: string, options?: KvWriteOptions & GrpcCallOptions): Promise<void> {
    assertName("key", key);
    const conditions = writeOptions(options);
    await this.#call("kvDelete", conditions === undefined ? [key] : [key, conditions], options);
  }

  /**
   * Deletes a cache entry.
   * @param key The entry's key.
   * @param options The deadline and signal of this call.
   * @throws {NotFoundError} When the key is absent or expired.
   */
  async cacheDelete(key: string, options?: GrpcCallOptions): Promise<void> {
    assertName("key", key);
    await this.#call("cacheDelete", [key], options);
  }

  /**
   * Deletes a counter (a get then returns 0).
   * @param key The counter's key.
   * @param options The deadline and signal of this call.
   * @throws {NotFoundError} When the counter does not exist.
   */
  async counterDelete(key: string, options?: GrpcCallOptions): Promise<void> {
    assertName("key", key);
    await this.#call("counterDelete", [key], options);
  }

  /**
   * Deletes a flag (a get then returns false).
   * @param key The flag's key.
   * @param options The deadline and signal of this call.
   * @throws {NotFoundError} When the flag was never set.
   */
  async flagDelete(key: string, options?: GrpcCallOptions): Promise<void> {
    assertName("key", key);
    await this.#call("flagDelete", [key], options);
  }

  /**
   * Deletes a whole set.
   * @param set The set's name.
   * @param options The deadline and signal of this call.
   * @throws {NotFoundError} When the set does not exist.
   */
  async setDelete(set: string, options?: GrpcCallOptions): Promise<void> {
    assertName("set name", set);
    await this.#call("setDelete", [set], options);
  }

  /**
   * Lists the keys of cache entries that have not expired, a page at a time.
   * @param options The prefix, the page size, the previous page's cursor; deadline, signal.
   * @returns The page.
   */
  cacheList(options?: ListOptions & GrpcCallOptions): Promise<KeyPage> {
    return this.#list("cacheList", options);
  }

  /**
   * Lists the keys of counters, a page at a time.
   * @param options The prefix, the page size, the previous page's cursor; deadline, signal.
   * @returns The page.
   */
  counterList(options?: ListOptions & GrpcCallOptions): Promise<KeyPage> {
    return this.#list("counterList", options);
  }

  /**
   * Lists the keys of flags that are set, a page at a time.
   * @param options The prefix, the page size, the previous page's cursor; deadline, signal.
   * @returns The page.
   */
  flagList(options?: ListOptions & GrpcCallOptions): Promise<KeyPage> {
    return this.#list("flagList", options);
  }

  /**
   * Lists the keys of KV values, a page at a time.
   * @param options The prefix, the page size, the previous page's cursor; deadline, signal.
   * @returns The page.
   */
  kvList(options?: ListOptions & GrpcCallOptions): Promise<KeyPage> {
    return this.#list("kvList", options);
  }

  /**
   * Lists the names of sets that hold items, a page at a time.
   * @param options The prefix, the page size, the previous page's cursor; deadline, signal.
   * @returns The page.
   */
  setList(options?: ListOptions & GrpcCallOptions): Promise<KeyPage> {
    return this.#list("setList", options);
  }

  /**
   * Every key of a service, page after page, each once (a key a Redis listing repeats is
   * dropped).
   * @param service The service: `cache`, `counters`, `flags`, `kv`, `sets` (set names).
   * @param options The prefix, and the page size of the requests.
   * @returns The keys.
   *
   * @example
   * ```ts ignore
   * import { GrpcClient } from "@purple/client/grpc";
   *
   * const purple = new GrpcClient("localhost:8081");
   * for await (const key of purple.keys("counters")) console.log(key);
   * ```
   */
  keys(
    service: KeyService,
    options?: Omit<ListOptions, "cursor">,
  ): AsyncGenerator<string, void, undefined> {
    return keysOf(this, service, options);
  }

  /**
   * Runs several operations in one call (`proto.Batch/Batch`): in order, each on its own, or
   * with `atomic` all or nothing.
   * @param operations At most 1000 operations, each `{ op, args }`.
   * @param options `atomic`, and the deadline and signal of this call.
   * @returns The outcome of each operation, typed by it, in order.
   * @throws {PreconditionFailedError} (and the other typed errors) For an atomic batch that
   * failed: nothing was changed.
   */
  async batch<const T extends readonly BatchOperation[]>(
    operations: T,
    options?: BatchOptions & GrpcCallOptions,
  ): Promise<BatchOutcomes<T>> {
    const checked = normalizeBatch(operations, BATCHABLE_NAMES) as BatchOperation[];
    const atomic = options?.atomic === true;
    const outcomes = await this.#call("batch", [checked, { atomic }], options);
    // kvGet travels as kvGetEntry: its outcome is the entry's value.
    return outcomes.map((outcome, index) =>
      outcome.ok ? { ok: true, value: projectResult(checked[index].op, outcome.value) } : outcome
    ) as BatchOutcomes<T>;
  }

  async #list(op: Listing, options?: ListOptions & GrpcCallOptions): Promise<KeyPage> {
    const { prefix, limit, cursor } = normalizeListOptions(
      options === undefined ? undefined : {
        prefix: options.prefix,
        limit: options.limit,
        cursor: options.cursor,
      },
    );
    const list: ListOptions = { prefix, limit };
    if (cursor !== undefined) list.cursor = cursor;
    return await this.#call(op, [list], options);
  }

  /**
   * Watches keys for changes (`proto.Watch/Watch`, a server stream): first each key's current
   * state, then each new state. The watch ends when the loop stops (`break`: the call is
   * cancelled), when `options.signal` aborts (the loop then throws its reason), or when the
   * server ends it (it shuts down, the connection is lost: the loop throws `UnavailableError`;
   * watch again and the first states catch up). It has no deadline.
   * @param keys Up to 100 keys (the server's limit), by service.
   * @param options A signal that ends the watch.
   * @returns The changes.
   * @throws {InvalidArgumentError} From the first step, when no key is given or one is bad.
   * @throws {ValueTooLargeError} When there are more keys than the server's limit.
   *
   * @example
   * ```ts ignore
   * import { GrpcClient } from "@purple/client/grpc";
   *
   * const purple = new GrpcClient("localhost:8081");
   * for await (const change of purple.watch({ kv: ["config"] })) {
   *   if (change.service === "kv" && change.exists) console.log("config is now", change.version);
   * }
   * ```
   */
  watch(keys: WatchKeys, options?: WatchOptions): AsyncIterableIterator<WatchChange> {
    const state: WatchState = { ended: false };
    const changes = this.#watch(keys, options, state);
    return {
      next: () => changes.next(),
      // Cancels the call first: a step waiting for the next message ends at once (done).
      return: async () => {
        state.ended = true;
        state.call?.cancel();
        return await changes.return(undefined);
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  async *#watch(
    keys: WatchKeys,
    options: WatchOptions | undefined,
    state: WatchState,
  ): AsyncGenerator<WatchChange, undefined, undefined> {
    const request = watchKeysOf(watchTargets(keys));
    const method = grpcMethod("watch");
    const binding = GRPC_BINDINGS.watch;
    const signal = options?.signal;
    signal?.throwIfAborted();
    if (this.#closed) {
      throw new UnavailableError(`Cannot call '${method.path}': the GrpcClient is closed`);
    }
    const call = state.call = this.#client.makeServerStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      binding.request(request),
      this.#metadata?.clone() ?? new grpc.Metadata(),
      {},
    );
    const cancel = () => call.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      for await (const message of call) yield binding.result(message as never);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (state.ended) return undefined;
      throw this.#error(method.path, 0, error as grpc.ServiceError);
    } finally {
      signal?.removeEventListener("abort", cancel);
      call.cancel();
    }
    return undefined;
  }

  /**
   * Reads a set.
   * @param set The set's name.
   * @param options The deadline and signal of this call.
   * @returns Its items, sorted; empty if the set does not exist.
   */
  async setGet(set: string, options?: GrpcCallOptions): Promise<string[]> {
    assertName("set name", set);
    return await this.#call("setGet", [set], options);
  }

  /**
   * Adds an item to a set (idempotent).
   * @param set The set's name.
   * @param item The item (non-empty).
   * @param options The deadline and signal of this call.
   * @returns The resulting items, sorted.
   */
  async setAdd(set: string, item: string, options?: GrpcCallOptions): Promise<string[]> {
    assertName("set name", set);
    assertName("set item", item);
    return await this.#call("setAdd", [set, item], options);
  }

  /**
   * Removes an item from a set (idempotent).
   * @param set The set's name.
   * @param item The item (non-empty).
   * @param options The deadline and signal of this call.
   * @returns The resulting items, sorted; empty if the set does not exist.
   */
  async setRemove(set: string, item: string, options?: GrpcCallOptions): Promise<string[]> {
    assertName("set name", set);
    assertName("set item", item);
    return await this.#call("setRemove", [set, item], options);
  }

  /**
   * Closes the connection. Calls in flight finish; later calls reject with
   * `UnavailableError`. Closing twice is harmless.
   * @returns A promise that resolves at once.
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#client.close();
    }
    return Promise.resolve();
  }

  /** Calls an operation's method with the request message of its (checked) arguments. */
  #call<Op extends WireOperationName>(
    operation: Op,
    args: Arguments<Op>,
    options: GrpcCallOptions = {},
  ): Promise<Result<Op>> {
    const method = grpcMethod(operation);
    const binding = GRPC_BINDINGS[operation];
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#closed) {
      return Promise.reject(
        new UnavailableError(`Cannot call '${method.path}': the GrpcClient is closed`),
      );
    }
    const deadlineMs = options.deadlineMs ?? options.timeoutMs ?? this.#timeoutMs;
    assertMilliseconds("deadlineMs", deadlineMs);
    const callOptions: grpc.CallOptions = {};
    if (deadlineMs > 0 && deadlineMs !== Infinity) callOptions.deadline = Date.now() + deadlineMs;
    return new Promise((resolve, reject) => {
      const call = this.#client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        binding.request(...args),
        this.#metadata?.clone() ?? new grpc.Metadata(),
        callOptions,
        (error, reply) => {
          signal?.removeEventListener("abort", cancel);
          if (error === null && reply !== undefined) resolve(binding.result(reply));
          else if (signal?.aborted) reject(signal.reason);
          else reject(this.#error(method.path, deadlineMs, error));
        },
      );
      const cancel = () => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  #error(path: string, deadlineMs: number, error: grpc.ServiceError | null): Error {
    if (error === null) return new InternalError(`Cannot call '${path}': the reply is empty`);
    const details = error.details || error.message;
    if (error.code === grpc.status.DEADLINE_EXCEEDED) {
      return new UnavailableError(
        `Cannot call '${path}' at '${this.#address}': no answer within the deadline of ${deadlineMs} ms`,
        { cause: error },
      );
    }
    const code = codeFromGrpcStatus(error.code);
    if (code === "UNAVAILABLE" || cutOff(error)) {
      return new UnavailableError(`Cannot call '${path}' at '${this.#address}': ${details}`, {
        cause: error,
      });
    }
    if (code !== undefined) return errorFromCode(code, details);
    return new InternalError(
      `Cannot call '${path}' at '${this.#address}': the server answered ${
        grpc.status[error.code] ?? error.code
      }: ${details}`,
      { cause: error },
    );
  }
}

/**
 * Whether grpc-js ended the call itself because its stream or connection went away (a server
 * shutting down mid-call): CANCELLED that the caller did not ask for (its own aborts are handled
 * before), or INTERNAL for a stream reset. Such a call may be retried: it is unavailability.
 */
function cutOff(error: grpc.ServiceError): boolean {
  if (error.code === grpc.status.CANCELLED) return true;
  return error.code === grpc.status.INTERNAL && /RST_STREAM|stream (was )?(closed|reset)/i.test(
    error.details ?? "",
  );
}

/** A watch's call, and whether its consumer ended it. */
interface WatchState {
  call?: grpc.ClientReadableStream<unknown>;
  ended: boolean;
}

/** The listings, by their operation names. */
type Listing = "cacheList" | "counterList" | "flagList" | "kvList" | "setList";

/** The conditions of a KV write, checked, as the operation takes them. */
function writeOptions(options: KvWriteOptions | undefined): KvWriteOptions | undefined {
  const condition = normalizeWriteOptions(
    options === undefined
      ? undefined
      : { ifMatch: options.ifMatch, ifNoneMatch: options.ifNoneMatch },
  );
  if (condition === undefined) return undefined;
  return condition.ifMatch !== undefined ? { ifMatch: condition.ifMatch } : { ifNoneMatch: "*" };
}

function assertMilliseconds(name: string, value: unknown): asserts value is number {
  if (typeof value !== "number" || !(value >= 0)) {
    throw new InvalidArgumentError(
      `Bad ${name}: expected a number of milliseconds, 0 or more, found ${describe(value)}`,
    );
  }
}
