/**
 * `HttpClient`: the Purple operations over HTTP, with nothing but `fetch` and web standards, so
 * it runs unchanged in Deno, Node 18+, Bun, browsers and edge workers.
 *
 * @example
 * ```ts ignore
 * import { HttpClient } from "@purple/client";
 *
 * const client = new HttpClient("http://localhost:8080");
 * await client.cacheSet("player1-session", "a1b2c3d4e5f6", 120);
 * console.log(await client.counterIncrement("player1-points", 100)); // 100n
 * ```
 *
 * @module
 */

import {
  codeFromHttpStatus,
  type ErrorCode,
  errorFromCode,
  HTTP_STATUS,
  InternalError,
  InvalidArgumentError,
  PurpleError,
  UnavailableError,
  ValueTooLargeError,
} from "@purple/protocol/errors";
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
  type OperationName,
  OPERATIONS,
  type Operations,
  type WatchChange,
  type WatchKeys,
  type WatchOptions,
} from "@purple/protocol";
import { changeFromJson, watchTargets } from "@purple/protocol/watch";
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
import { batchToJson, outcomesFromJson } from "@purple/protocol/batch-json";
import { clip } from "@purple/protocol/text";
import { fetchTrusting, headersWithToken } from "./_access.ts";
import { serverSentEvents } from "./_sse.ts";

/**
 * The transport `HttpClient` calls: `fetch`, or anything with its shape.
 *
 * @example
 * ```ts
 * import { type FetchLike, HttpClient } from "@purple/client";
 *
 * // A transport that logs each request before sending it.
 * const logged: FetchLike = (url, init) => {
 *   console.log(init.method, url);
 *   return fetch(url, init);
 * };
 * const client = new HttpClient("http://localhost:8080", { fetch: logged });
 * await client.close();
 * ```
 */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/**
 * Options of {@linkcode HttpClient}.
 *
 * @example
 * ```ts
 * import { HttpClient, type HttpClientOptions } from "@purple/client";
 *
 * const options: HttpClientOptions = {
 *   timeoutMs: 2_000,
 *   headers: { "user-agent": "checkout-service" },
 * };
 * const client = new HttpClient("http://localhost:8080", options);
 * await client.close();
 * ```
 */
export interface HttpClientOptions {
  /**
   * How long a call may take, from sending the request to the last byte of the answer, in
   * milliseconds; past it the call fails with `UnavailableError`. Default 10000; 0 means no limit.
   */
  timeoutMs?: number;
  /** Headers sent with every request (such as `Authorization`). */
  headers?: HeadersInit;
  /** The transport. Default: the global `fetch`. Tests and special runtimes inject their own. */
  fetch?: FetchLike;
  /**
   * The access token of a server started with `--auth-token` or `--read-token`, sent as
   * `Authorization: Bearer <token>` with every request.
   */
  token?: string;
  /**
   * CA certificates (PEM) to trust for an `https://` server, besides the system's: for a
   * self-signed or private CA. Deno only (it uses `Deno.createHttpClient`, closed by
   * `close()`); in Node set `NODE_EXTRA_CA_CERTS` to the CA file instead. Not with `fetch`.
   */
  ca?: string | readonly string[];
}

/**
 * Options of one call, given as the last argument of any operation.
 *
 * @example
 * ```ts
 * import type { CallOptions } from "@purple/client";
 *
 * // Give up on this call after 500 ms, or sooner when the signal aborts.
 * const options: CallOptions = { timeoutMs: 500, signal: AbortSignal.timeout(1_000) };
 * console.log(options.timeoutMs); // 500; pass it as the last argument: client.cacheGet(key, options)
 * ```
 */
export interface CallOptions {
  /** Cancels the call; it then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** This call's timeout in milliseconds, instead of the client's. 0 means no limit. */
  timeoutMs?: number;
}

/**
 * The default timeout of a call, in milliseconds.
 *
 * @example
 * ```ts
 * import { DEFAULT_HTTP_TIMEOUT_MS } from "@purple/client";
 *
 * console.log(DEFAULT_HTTP_TIMEOUT_MS); // 10000
 * ```
 */
export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;

/**
 * The longest request URL sent. Servers refuse longer ones (Deno's at 65534 bytes); a longer
 * URL is refused here with `ValueTooLargeError`.
 *
 * @example
 * ```ts
 * import { MAX_URL_LENGTH } from "@purple/client";
 *
 * console.log(MAX_URL_LENGTH); // 65000
 * ```
 */
export const MAX_URL_LENGTH = 65_000;

/** Cache values longer than this (in UTF-16 units) travel as a `text/plain` body, not in the URL. */
const MAX_QUERY_VALUE_LENGTH = 2048;

const MAX_MESSAGE_BODY = 200;
const encoder = new TextEncoder();

/** What one call sends besides its method and path. */
interface CallRequest {
  query?: Record<string, string>;
  body?: Uint8Array;
  contentType?: string;
  accept?: string;
  headers?: Record<string, string>;
}

/** The listings, by their operation names. */
type LISTING = "cacheList" | "counterList" | "flagList" | "kvList" | "setList";

/** Reads a successful answer; throws `InternalError` when it is not of the expected shape. */
type Reader<T> = (response: Response) => Promise<T>;

function assertKey(key: unknown): asserts key is string {
  assertName("key", key);
  if (key === "." || key === "..") {
    // A URL parser removes such path segments (even as %2E), so they cannot reach the server.
    throw new InvalidArgumentError(`Bad key: '${key}' cannot travel in an HTTP path`);
  }
}

/**
 * Finds the exact digits of a top-level integer member of a JSON object, so that an int64
 * past 2^53 is not rounded as `JSON.parse` would. Strings are skipped whole, so a key that
 * contains `"value":` cannot be mistaken for the member.
 */
function int64Member(text: string, name: string): bigint | undefined {
  const quoted = JSON.stringify(name);
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (depth === 1 && text.slice(i, end + 1) === quoted) {
        const match = /^\s*:\s*(-?[0-9]+)\s*[,}]/.exec(text.slice(end + 1));
        if (match) return BigInt(match[1]);
      }
      i = end;
    } else if (char === "{" || char === "[") depth++;
    else if (char === "}" || char === "]") depth--;
  }
  return undefined;
}

/**
 * Calls a Purple HTTP server. Implements {@linkcode Operations}, so code written against the
 * backends runs over the network unchanged; errors come back as the same typed errors.
 *
 * Inputs are checked before anything is sent (an empty key, a fractional amount, a flag that
 * is not a boolean are an `InvalidArgumentError` without a request). A network failure or a
 * timeout is an `UnavailableError` (its message says which); a call cancelled through its
 * `signal` rejects with the signal's reason.
 *
 * @example
 * ```ts ignore
 * import { HttpClient, NotFoundError } from "@purple/client";
 *
 * const client = new HttpClient("http://localhost:8080", { timeoutMs: 2_000 });
 * await client.kvPut("photo", new Uint8Array([0x89, 0x50, 0x4e, 0x47]));
 * try {
 *   await client.cacheGet("nobody", { signal: AbortSignal.timeout(500) });
 * } catch (error) {
 *   if (!(error instanceof NotFoundError)) throw error;
 * }
 * await client.close();
 * ```
 */
export class HttpClient implements Operations {
  #base: string;
  #headers: HeadersInit | undefined;
  #timeoutMs: number;
  #fetch: FetchLike;
  #release: (() => void) | undefined;
  #closed = false;

  /**
   * Creates a client of one server; nothing is sent until the first call.
   *
   * @param baseUrl The server, such as `http://localhost:8080` (a path prefix is kept).
   * @param options Timeout, extra headers, access token, CA certificates, and the transport.
   * @throws {InvalidArgumentError} When `baseUrl` is not an http(s) URL, or the timeout, the
   * token or the CA certificates are bad.
   */
  constructor(baseUrl: string, options: HttpClientOptions = {}) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new InvalidArgumentError(
        `Bad base URL: cannot parse '${clip(String(baseUrl), MAX_MESSAGE_BODY)}'`,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new InvalidArgumentError(
        `Bad base URL: expected http or https, found '${url.protocol}'`,
      );
    }
    url.search = "";
    url.hash = "";
    this.#base = url.href.replace(/\/+$/, "");
    this.#timeoutMs = HttpClient.#checkTimeout(options.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS);
    this.#headers = headersWithToken(options.headers, options.token);
    const trusting = options.ca === undefined
      ? undefined
      : fetchTrusting(options.ca, options.fetch);
    this.#release = trusting?.close;
    this.#fetch = trusting?.fetch ?? options.fetch ?? ((input, init) => fetch(input, init));
  }

  static #checkTimeout(ms: unknown): number {
    if (typeof ms !== "number" || !(ms >= 0)) {
      throw new InvalidArgumentError(
        `Bad timeoutMs: expected a number of milliseconds, 0 or more, found ${describe(ms)}`,
      );
    }
    return ms;
  }

  /**
   * Reads a cache entry.
   * @param key The entry's key.
   * @param options A signal and a timeout for this call.
   * @returns The value.
   * @throws {NotFoundError} When the key is absent or expired.
   */
  async cacheGet(key: string, options?: CallOptions): Promise<string> {
    assertKey(key);
    return await this.#call("cacheGet", key, {}, options, readString);
  }

  /**
   * Sets a cache entry, overwriting its value and TTL.
   * @param key The entry's key.
   * @param value The value (non-empty).
   * @param ttl Seconds to live; 0 or omitted means the default, 5 seconds.
   * @param options A signal and a timeout for this call.
   * @throws {ValueTooLargeError} When the value is over the server's limit (default 1 MiB).
   */
  async cacheSet(key: string, value: string, ttl?: number, options?: CallOptions): Promise<void> {
    assertKey(key);
    assertName("cache value", value);
    const ttlText = String(normalizeTtl(ttl));
    // A short value travels as the original's ?value=; a long one as a text/plain body (ext).
    const request: CallRequest = value.length <= MAX_QUERY_VALUE_LENGTH
      ? { query: { value, ttl: ttlText } }
      : { query: { ttl: ttlText }, body: encoder.encode(value), contentType: "text/plain" };
    await this.#call("cacheSet", key, request, options, noContent);
  }

  /**
   * Adds to a counter atomically.
   * @param key The counter's key.
   * @param amount What to add: a bigint, or a safe-integer number.
   * @param options A signal and a timeout for this call.
   * @returns The new value, exact.
   */
  async counterIncrement(
    key: string,
    amount: CounterAmount,
    options?: CallOptions,
  ): Promise<bigint> {
    assertKey(key);
    const increment = String(normalizeAmount(amount));
    return await this.#call(
      "counterIncrement",
      key,
      { query: { increment } },
      options,
      readCounter,
    );
  }

  /**
   * Reads a counter.
   * @param key The counter's key.
   * @param options A signal and a timeout for this call.
   * @returns Its value, exact; 0n if absent.
   */
  async counterGet(key: string, options?: CallOptions): Promise<bigint> {
    assertKey(key);
    return await this.#call("counterGet", key, {}, options, readCounter);
  }

  /**
   * Reads a flag.
   * @param key The flag's key.
   * @param options A signal and a timeout for this call.
   * @returns Its value; false if never set.
   */
  async flagGet(key: string, options?: CallOptions): Promise<boolean> {
    assertKey(key);
    return await this.#call("flagGet", key, {}, options, async (response) => {
      const text = await response.text();
      const value = (parseJson(text) as { value?: unknown } | null)?.value;
      if (typeof value !== "boolean") throw unexpected('{"value": boolean}', text);
      return value;
    });
  }

  /**
   * Sets a flag.
   * @param key The flag's key.
   * @param value `true` or `false`.
   * @param options A signal and a timeout for this call.
   */
  async flagSet(key: string, value: boolean, options?: CallOptions): Promise<void> {
    assertKey(key);
    assertFlag(value);
    await this.#call("flagSet", key, { query: { value: String(value) } }, options, noContent);
  }

  /**
   * Reads a KV value (asked for as raw bytes).
   * @param key The value's key.
   * @param options A signal and a timeout for this call.
   * @returns The stored bytes.
   * @throws {NotFoundError} When the key is absent.
   */
  async kvGet(key: string, options?: CallOptions): Promise<Uint8Array> {
    return (await this.#kvGet(key, options)).value;
  }

  /**
   * Reads a KV value and its version (the `ETag` of `GET /kv/:key`).
   * @param key The value's key.
   * @param options A signal and a timeout for this call.
   * @returns The stored bytes and their version.
   * @throws {NotFoundError} When the key is absent.
   */
  async kvGetEntry(key: string, options?: CallOptions): Promise<KvEntry> {
    const { value, version } = await this.#kvGet(key, options);
    if (version === undefined) {
      throw new InternalError(
        `Cannot read the version of KV key '${clip(key)}': the server sent no ETag (is it Purple?)`,
      );
    }
    return { value, version };
  }

  async #kvGet(
    key: string,
    options?: CallOptions,
  ): Promise<{ value: Uint8Array; version?: string }> {
    assertKey(key);
    return await this.#call(
      "kvGetEntry",
      key,
      { accept: "application/octet-stream" },
      options,
      async (response) => {
        const tag = /^"(.*)"$/.exec(response.headers.get("etag") ?? "")?.[1];
        const value = response.headers.get("content-type")?.startsWith("application/json")
          // A server without the binary extension (the original Go one) answers JSON.
          ? encoder.encode(await readString(response))
          : new Uint8Array(await response.arrayBuffer());
        return tag === undefined ? { value } : { value, version: tag };
      },
    );
  }

  /**
   * Stores a KV value, sent as raw bytes; with `options`, only if the value's version is the
   * one given (`If-Match`) or the key is absent (`If-None-Match: *`).
   * @param key The value's key.
   * @param value Non-empty bytes, or a string (sent as UTF-8).
   * @param options The conditions, and a signal and a timeout for this call.
   * @throws {ValueTooLargeError} When the value is over the server's limit (default 1 MiB).
   * @throws {PreconditionFailedError} When a condition does not hold (nothing is written).
   */
  async kvPut(
    key: string,
    value: KvValue,
    options?: KvWriteOptions & CallOptions,
  ): Promise<void> {
    assertKey(key);
    const body = kvValueBytes(value);
    if (body.byteLength === 0) throw new InvalidArgumentError("Bad KV value: it is empty");
    const headers = conditionHeaders(options);
    await this.#call(
      "kvPut",
      key,
      { body, contentType: "application/octet-stream", headers },
      options,
      noContent,
    );
  }

  /**
   * Deletes a KV value; with `options`, only if its version is the one given.
   * @param key The value's key.
   * @param options The conditions, and a signal and a timeout for this call.
   * @throws {NotFoundError} When the key is absent.
   * @throws {PreconditionFailedError} When a condition does not hold (nothing is deleted).
   */
  async kvDelete(key: string, options?: KvWriteOptions & CallOptions): Promise<void> {
    assertKey(key);
    await this.#call("kvDelete", key, { headers: conditionHeaders(options) }, options, noContent);
  }

  /**
   * Deletes a cache entry.
   * @param key The entry's key.
   * @param options A signal and a timeout for this call.
   * @throws {NotFoundError} When the key is absent or expired.
   */
  async cacheDelete(key: string, options?: CallOptions): Promise<void> {
    assertKey(key);
    await this.#call("cacheDelete", key, {}, options, noContent);
  }

  /**
   * Deletes a counter (a get then returns 0).
   * @param key The counter's key.
   * @param options A signal and a timeout for this call.
   * @throws {NotFoundError} When the counter does not exist.
   */
  async counterDelete(key: string, options?: CallOptions): Promise<void> {
    assertKey(key);
    await this.#call("counterDelete", key, {}, options, noContent);
  }

  /**
   * Deletes a flag (a get then returns false).
   * @param key The flag's key.
   * @param options A signal and a timeout for this call.
   * @throws {NotFoundError} When the flag was never set.
   */
  async flagDelete(key: string, options?: CallOptions): Promise<void> {
    assertKey(key);
    await this.#call("flagDelete", key, {}, options, noContent);
  }

  /**
   * Deletes a whole set.
   * @param set The set's name.
   * @param options A signal and a timeout for this call.
   * @throws {NotFoundError} When the set does not exist.
   */
  async setDelete(set: string, options?: CallOptions): Promise<void> {
    assertKey(set);
    await this.#call("setDelete", set, {}, options, noContent);
  }

  /**
   * Lists the keys of cache entries that have not expired, a page at a time.
   * @param options The prefix, the page size, the previous page's cursor; a signal, a timeout.
   * @returns The page.
   */
  cacheList(options?: ListOptions & CallOptions): Promise<KeyPage> {
    return this.#list("cacheList", options);
  }

  /**
   * Lists the keys of counters, a page at a time.
   * @param options The prefix, the page size, the previous page's cursor; a signal, a timeout.
   * @returns The page.
   */
  counterList(options?: ListOptions & CallOptions): Promise<KeyPage> {
    return this.#list("counterList", options);
  }

  /**
   * Lists the keys of flags that are set, a page at a time.
   * @param options The prefix, the page size, the previous page's cursor; a signal, a timeout.
   * @returns The page.
   */
  flagList(options?: ListOptions & CallOptions): Promise<KeyPage> {
    return this.#list("flagList", options);
  }

  /**
   * Lists the keys of KV values, a page at a time.
   * @param options The prefix, the page size, the previous page's cursor; a signal, a timeout.
   * @returns The page.
   */
  kvList(options?: ListOptions & CallOptions): Promise<KeyPage> {
    return this.#list("kvList", options);
  }

  /**
   * Lists the names of sets that hold items, a page at a time.
   * @param options The prefix, the page size, the previous page's cursor; a signal, a timeout.
   * @returns The page.
   */
  setList(options?: ListOptions & CallOptions): Promise<KeyPage> {
    return this.#list("setList", options);
  }

  /**
   * Every key of a service, page after page, each once (a key a Redis listing repeats is
   * dropped).
   * @param service The service, named as its routes are: `cache`, `counters`, `flags`, `kv`,
   * `sets` (set names).
   * @param options The prefix, and the page size of the requests.
   * @returns The keys.
   *
   * @example
   * ```ts ignore
   * import { HttpClient } from "@purple/client";
   *
   * const purple = new HttpClient("http://localhost:8080");
   * for await (const key of purple.keys("kv", { prefix: "user:" })) console.log(key);
   * ```
   */
  keys(
    service: KeyService,
    options?: Omit<ListOptions, "cursor">,
  ): AsyncGenerator<string, void, undefined> {
    return keysOf(this, service, options);
  }

  /**
   * Runs several operations in one request (`POST /batch`): in order, each on its own, or with
   * `atomic` all or nothing.
   * @param operations At most 1000 operations, each `{ op, args }`.
   * @param options `atomic`, and a signal and a timeout for this call.
   * @returns The outcome of each operation, typed by it, in order.
   * @throws {PreconditionFailedError} (and the other typed errors) For an atomic batch that
   * failed: nothing was changed.
   */
  async batch<const T extends readonly BatchOperation[]>(
    operations: T,
    options?: BatchOptions & CallOptions,
  ): Promise<BatchOutcomes<T>> {
    const checked = normalizeBatch(operations, BATCHABLE_NAMES) as BatchOperation[];
    const body = encoder.encode(JSON.stringify(batchToJson(checked, options)));
    return await this.#call(
      "batch",
      "",
      { body, contentType: "application/json" },
      options,
      async (response) => {
        const text = await response.text();
        const parsed = parseJson(text);
        if (parsed === undefined) throw unexpected('{"results": [...]}', text);
        return outcomesFromJson(checked, parsed) as BatchOutcomes<T>;
      },
    );
  }

  async #list(op: LISTING, options?: ListOptions & CallOptions): Promise<KeyPage> {
    const { prefix, limit, cursor } = normalizeListOptions(
      options === undefined ? undefined : {
        prefix: options.prefix,
        limit: options.limit,
        cursor: options.cursor,
      },
    );
    const query: Record<string, string> = {};
    if (prefix !== "") query.prefix = prefix;
    if (options?.limit !== undefined) query.limit = String(limit);
    if (cursor !== undefined) query.cursor = cursor;
    return await this.#call(op, "", { query }, options, readPage);
  }

  /**
   * Watches keys for changes (`GET /watch`, Server-Sent Events, read with `fetch`): first each
   * key's current state, then each new state. The watch ends when the loop stops (`break`),
   * when `options.signal` aborts (the loop then throws its reason), or when the server ends it
   * (it shuts down, the connection is lost: the loop throws `UnavailableError`; watch again and
   * the first states catch up). Nothing is left behind: the request is cancelled.
   * @param keys Up to 100 keys (the server's limit), by service.
   * @param options A signal that ends the watch; `timeoutMs`: how long the server may take to
   * answer with the first state (default: the client's timeout; the watch itself has none).
   * @returns The changes.
   * @throws {InvalidArgumentError} From the first step, when no key is given or one is bad.
   * @throws {ValueTooLargeError} When the keys do not fit a URL, or are more than the limit.
   *
   * @example
   * ```ts ignore
   * import { HttpClient } from "@purple/client";
   *
   * const purple = new HttpClient("http://localhost:8080");
   * for await (const change of purple.watch({ flags: ["dark-mode"], counters: ["signups"] })) {
   *   if (change.service === "flags") console.log("dark mode:", change.value);
   *   else if (change.service === "counters" && change.value >= 1000n) break;
   * }
   * ```
   */
  watch(keys: WatchKeys, options?: WatchOptions & CallOptions): AsyncIterableIterator<WatchChange> {
    const controller = new AbortController();
    const changes = this.#watch(keys, options, controller);
    return {
      next: () => changes.next(),
      // Cancels the request first: a step waiting for the next event ends at once (done).
      return: async () => {
        controller.abort(WATCH_ENDED);
        return await changes.return(undefined);
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  async *#watch(
    keys: WatchKeys,
    options: (WatchOptions & CallOptions) | undefined,
    controller: AbortController,
  ): AsyncGenerator<WatchChange, undefined, undefined> {
    const targets = watchTargets(keys);
    if (this.#closed) throw new UnavailableError("Cannot watch: the HttpClient is closed");
    const timeoutMs = HttpClient.#checkTimeout(options?.timeoutMs ?? this.#timeoutMs);
    const url = `${this.#base}${OPERATIONS.watch.http.path}?` + targets
      .map(({ service, key }) => `${service}=${encodeURIComponent(key)}`).join("&");
    if (url.length > MAX_URL_LENGTH) {
      throw new ValueTooLargeError(
        `Cannot watch ${targets.length} keys: the request URL would be ${url.length} ` +
          `characters, the limit is ${MAX_URL_LENGTH} (watch fewer keys in each watch)`,
      );
    }
    const headers = new Headers(this.#headers);
    headers.set("accept", "text/event-stream");
    const signal = options?.signal;
    const limits = new CallLimits(controller, signal, timeoutMs);
    const failure = (error: unknown): unknown => {
      if (signal?.aborted) return signal.reason;
      if (limits.timedOut) {
        return new UnavailableError(
          `Cannot watch at ${this.#base}: timed out, no first state within ${timeoutMs} ms`,
        );
      }
      if (controller.signal.reason === WATCH_ENDED) return WATCH_ENDED;
      const reason = error instanceof Error ? error.message : String(error);
      return new UnavailableError(
        `Cannot watch at ${this.#base}: the stream was cut: ${clip(reason, MAX_MESSAGE_BODY)}`,
        { cause: error },
      );
    };
    let response: Response | undefined;
    try {
      try {
        response = await this.#fetch(url, { method: "GET", headers, signal: controller.signal });
      } catch (error) {
        const failed = failure(error);
        if (failed === WATCH_ENDED) return;
        throw failed;
      }
      if (!response.ok) throw await errorFromResponse("watch", response);
      const type = response.headers.get("content-type") ?? "";
      if (!type.startsWith("text/event-stream") || response.body === null) {
        throw new InternalError(
          `Cannot watch at ${this.#base}: expected an event stream, found '${clip(type)}'`,
        );
      }
      const events = serverSentEvents(response.body);
      try {
        for await (const { event, data } of events) {
          limits.stopTimer(); // The first state came: the watch itself has no time limit.
          if (event === "end") throw endError(data);
          if (event !== "message") continue;
          let json: unknown;
          try {
            json = JSON.parse(data);
          } catch {
            throw unexpected("a change as JSON", data);
          }
          yield changeFromJson(json);
        }
      } catch (error) {
        if (error instanceof PurpleError) throw error;
        const failed = failure(error);
        if (failed === WATCH_ENDED) return;
        throw failed;
      }
      throw failure(new Error("the server closed it"));
    } finally {
      limits.stop();
      if (!controller.signal.aborted) controller.abort(WATCH_ENDED);
      await response?.body?.cancel().catch(() => {});
    }
  }

  /**
   * Reads a set.
   * @param set The set's name.
   * @param options A signal and a timeout for this call.
   * @returns The sorted items; empty if the set does not exist.
   */
  async setGet(set: string, options?: CallOptions): Promise<string[]> {
    assertKey(set);
    return await this.#call("setGet", set, {}, options, readItems);
  }

  /**
   * Adds an item to a set (idempotent).
   * @param set The set's name.
   * @param item The item (non-empty).
   * @param options A signal and a timeout for this call.
   * @returns The resulting sorted items.
   */
  async setAdd(set: string, item: string, options?: CallOptions): Promise<string[]> {
    assertKey(set);
    assertName("set item", item);
    return await this.#call("setAdd", set, { query: { item } }, options, readItems);
  }

  /**
   * Removes an item from a set (idempotent).
   * @param set The set's name.
   * @param item The item (non-empty).
   * @param options A signal and a timeout for this call.
   * @returns The resulting sorted items.
   */
  async setRemove(set: string, item: string, options?: CallOptions): Promise<string[]> {
    assertKey(set);
    assertName("set item", item);
    return await this.#call("setRemove", set, { query: { item } }, options, readItems);
  }

  /**
   * Marks the client closed: later calls reject with `UnavailableError`. Connections belong
   * to the runtime's `fetch`, which reuses and closes them on its own (with `ca`, the Deno
   * HTTP client made for it is closed here).
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#release?.();
    this.#release = undefined;
    return Promise.resolve();
  }

  async #call<T>(
    op: OperationName,
    key: string,
    request: CallRequest,
    options: CallOptions | undefined,
    read: Reader<T>,
  ): Promise<T> {
    if (this.#closed) throw new UnavailableError(`Cannot call ${op}: the HttpClient is closed`);
    const timeoutMs = HttpClient.#checkTimeout(options?.timeoutMs ?? this.#timeoutMs);
    const { method, path } = OPERATIONS[op].http;
    let url = `${this.#base}${path.replace(":key", () => encodeURIComponent(key))}`;
    if (request.query && Object.keys(request.query).length === 0) delete request.query;
    if (request.query) {
      url += "?" + Object.entries(request.query)
        .map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join("&");
    }
    if (url.length > MAX_URL_LENGTH) {
      throw new ValueTooLargeError(
        `Cannot call ${op}: the request URL would be ${url.length} characters, ` +
          `the limit is ${MAX_URL_LENGTH}`,
      );
    }
    const headers = new Headers(this.#headers);
    // Always an Accept: without one, Purple answers a miss as the original did, with no body.
    headers.set("accept", request.accept ?? "application/json");
    if (request.contentType) headers.set("content-type", request.contentType);
    for (const [name, value] of Object.entries(request.headers ?? {})) headers.set(name, value);

    const signal = options?.signal;
    const controller = new AbortController();
    const limits = new CallLimits(controller, signal, timeoutMs);
    const failure = (error: unknown): unknown => {
      if (signal?.aborted) return signal.reason;
      if (limits.timedOut) {
        return new UnavailableError(
          `Cannot call ${op} at ${this.#base}: timed out, no answer within ${timeoutMs} ms`,
        );
      }
      const reason = error instanceof Error ? error.message : String(error);
      return new UnavailableError(
        `Cannot call ${op} at ${this.#base}: network error: ${clip(reason, MAX_MESSAGE_BODY)}`,
        { cause: error },
      );
    };
    try {
      let response: Response;
      try {
        response = await this.#fetch(url, {
          method,
          headers,
          body: request.body as Uint8Array<ArrayBuffer> | undefined,
          signal: controller.signal,
        });
      } catch (error) {
        throw failure(error);
      }
      try {
        if (!response.ok) throw await errorFromResponse(op, response);
        return await read(response);
      } catch (error) {
        // Typed errors are the answer; anything else broke while reading the body.
        if (error instanceof PurpleError) throw error;
        throw failure(error);
      }
    } finally {
      limits.stop();
    }
  }
}

/**
 * What ends one request early: the caller's signal, and the call's time limit (none when 0 or
 * Infinity). Both abort the request's controller; `timedOut` says which did.
 */
class CallLimits {
  /** Whether the time limit ended the request. */
  timedOut = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #signal: AbortSignal | undefined;
  #onAbort: () => void;

  /** @throws The signal's reason when it has already aborted. */
  constructor(controller: AbortController, signal: AbortSignal | undefined, timeoutMs: number) {
    signal?.throwIfAborted();
    this.#signal = signal;
    this.#onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      this.#timer = setTimeout(() => {
        this.timedOut = true;
        controller.abort(new DOMException("The call timed out", "TimeoutError"));
      }, timeoutMs);
    }
  }

  /** Lifts the time limit (a watch has its first state), keeping the signal's hold. */
  stopTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Ends both: the request is over. */
  stop(): void {
    this.stopTimer();
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}

async function noContent(response: Response): Promise<void> {
  await response.arrayBuffer();
}

function unexpected(expected: string, text: string): InternalError {
  return new InternalError(
    `Cannot read the server's answer: expected ${expected}, found '${
      clip(text, MAX_MESSAGE_BODY)
    }'`,
  );
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function readString(response: Response): Promise<string> {
  const text = await response.text();
  const value = (parseJson(text) as { value?: unknown } | null)?.value;
  if (typeof value !== "string") throw unexpected('{"value": string}', text);
  return value;
}

async function readCounter(response: Response): Promise<bigint> {
  const text = await response.text();
  const body = parseJson(text) as { value?: unknown } | null;
  const value = int64Member(text, "value");
  if (typeof body?.value !== "number" || value === undefined) {
    throw unexpected('{"counter": string, "value": integer}', text);
  }
  return value;
}

async function readPage(response: Response): Promise<KeyPage> {
  const text = await response.text();
  const body = parseJson(text) as { keys?: unknown; cursor?: unknown } | null;
  const keys = body?.keys;
  if (
    !Array.isArray(keys) || !keys.every((key) => typeof key === "string") ||
    (body?.cursor !== undefined && typeof body.cursor !== "string")
  ) {
    throw unexpected('{"keys": string[], "cursor"?: string}', text);
  }
  return typeof body?.cursor === "string" ? { keys, cursor: body.cursor } : { keys };
}

/** Why a watch's request was cancelled when its consumer ended it. */
const WATCH_ENDED = new DOMException("The watch was ended", "AbortError");

/** The error of a watch stream's last event (`event: end`). */
function endError(data: string): PurpleError {
  const error = (parseJson(data) as { error?: { code?: unknown; message?: unknown } } | null)
    ?.error;
  const code = typeof error?.code === "string" && Object.hasOwn(HTTP_STATUS, error.code)
    ? error.code as ErrorCode
    : "UNAVAILABLE";
  const message = typeof error?.message === "string"
    ? clip(error.message, 1000)
    : "The server ended the watch";
  return errorFromCode(code, message);
}

/** The request headers of a KV write's conditions. */
function conditionHeaders(options: KvWriteOptions | undefined): Record<string, string> {
  const condition = normalizeWriteOptions(
    options === undefined
      ? undefined
      : { ifMatch: options.ifMatch, ifNoneMatch: options.ifNoneMatch },
  );
  if (condition === undefined) return {};
  if (condition.ifMatch !== undefined) {
    return { "if-match": condition.ifMatch === "*" ? "*" : `"${condition.ifMatch}"` };
  }
  return { "if-none-match": "*" };
}

async function readItems(response: Response): Promise<string[]> {
  const text = await response.text();
  const items = (parseJson(text) as { items?: unknown } | null)?.items;
  if (!Array.isArray(items) || !items.every((item) => typeof item === "string")) {
    throw unexpected('{"set": string, "items": string[]}', text);
  }
  return items;
}

/** Turns an error answer into the typed error of its status, with the server's message. */
async function errorFromResponse(op: string, response: Response): Promise<PurpleError> {
  const text = await response.text();
  let message: string | undefined;
  try {
    const error = (JSON.parse(text) as { error?: unknown })?.error;
    if (typeof error === "string" && error !== "") message = clip(error, 1000);
  } catch {
    // Not JSON: a proxy or an older server. The text itself goes in the message.
  }
  const status = response.status;
  const code: ErrorCode = codeFromHttpStatus(status) ??
    (status === 502 || status === 504 ? "UNAVAILABLE" : "INTERNAL");
  return errorFromCode(
    code,
    message ??
      `Cannot call ${op}: HTTP ${status}${text ? `: ${clip(text, MAX_MESSAGE_BODY)}` : ""}`,
  );
}
