// The settings of the `purple` command, each declared once: its flag, its environment variables,
// its kind, its default, how its text is checked and read, and its help line. From this table
// come the `parseArgs` options, the environment lookups, `purple --help` (config.ts) and the
// CLI table of docs/cli.md (checked by tests/readme_test.ts). Private to the server.

import {
  BACKEND_KINDS,
  DEFAULT_DATA_DIR,
  DEFAULT_LIMITS,
  DEFAULT_REDIS_URL,
  REDIS_LAYOUTS,
} from "../backends/mod.ts";
import { GO_BOOLEANS, parseGoBool } from "@purple/protocol/text";
import { MAX_TIMER_MS } from "./_deadlines.ts";
import { tokenProblem } from "./_auth.ts";

/**
 * A bad flag, variable or command. `main()` prints its message as one line and exits with 2.
 *
 * @example
 * ```ts
 * import { parseCli, UsageError } from "@purple/server";
 *
 * try {
 *   parseCli(["--backend", "mongo"], {});
 * } catch (error) {
 *   console.log(error instanceof UsageError); // true
 * }
 * ```
 */
export class UsageError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was wrong, as one line, naming the flag or variable.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** Where a value came from: `--flag` or `VARIABLE`, for messages. */
export type Source = string;

/**
 * One setting. `Value` is what it resolves to; `undefined` when it is not set and has no
 * default.
 */
export interface Setting<Value> {
  /** The flag, without its dashes. */
  readonly flag: string;
  /** What the flag's value is, in the help (`N`, `DIR`); absent for a switch. */
  readonly value?: string;
  /** What one value of a list is called, in messages (`token`). */
  readonly item?: string;
  /**
   * Which commands read it: `server` (serving: `purple`, `purple http`, `purple grpc`), or
   * `transfer` (`purple export`, `purple import`); absent: both (the backend's settings). A
   * command refuses the flags of the others.
   */
  readonly scope?: "server" | "transfer";
  /** The environment variables that set it, first one first. */
  readonly env: readonly string[];
  /**
   * `text`: one value. `list`: the flag repeated, or its variable's values separated by commas.
   * `switch`: a flag without a value, a variable holding one of Go's booleans.
   */
  readonly kind: "text" | "list" | "switch";
  /** The default, as the help and docs/cli.md show it. */
  readonly shown: string;
  /** What it does, in one line of the help and of docs/cli.md's table. */
  readonly help: string;
  /** More help lines, for --help only. */
  readonly more?: readonly string[];
  /** Reads a given value (each value of a list); throws `UsageError` naming `from`. */
  readonly read: (text: string, from: Source) => Value extends readonly (infer Item)[] ? Item
    : Value;
  /** The value when it is not set. */
  readonly fallback: Value;
}

function wholeNumber(text: string, from: Source, min: number, max: number, what: string): number {
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < min || value > max) {
    throw new UsageError(`Bad ${from}: expected ${what}, found '${text}'`);
  }
  return value;
}

const port = (text: string, from: Source) =>
  wholeNumber(text, from, 0, 65535, "a port from 0 to 65535");

const bytes = (text: string, from: Source) =>
  wholeNumber(text, from, 1, Number.MAX_SAFE_INTEGER, "a whole number of bytes, 1 or more");

const count = (text: string, from: Source) =>
  wholeNumber(text, from, 1, Number.MAX_SAFE_INTEGER, "a whole number, 1 or more");

const milliseconds = (text: string, from: Source) =>
  wholeNumber(
    text,
    from,
    1,
    MAX_TIMER_MS,
    `a whole number of milliseconds from 1 to ${MAX_TIMER_MS}`,
  );

const asText = (text: string) => text;

/** The most workers `--workers` takes. */
export const MAX_WORKERS = 1024;
const WORKERS_EXPECTED = `auto or a number of workers from 1 to ${MAX_WORKERS}`;

function goBoolean(text: string, from: Source): boolean {
  const value = parseGoBool(text);
  if (value !== undefined) return value;
  throw new UsageError(
    `Bad ${from}: expected true or false (${GO_BOOLEANS.join(" ")}), found '${text}'`,
  );
}

function token(text: string, from: Source): string {
  const problem = tokenProblem(text); // Never quotes the token.
  if (problem !== undefined) throw new UsageError(`Bad ${from}: ${problem}`);
  return text;
}

/** An origin a browser sends (`https://app.example.com`, `http://localhost:3000`), or `*`. */
function corsOrigin(text: string, from: Source): string {
  if (text === "*") return text;
  if (URL.canParse(text)) {
    const url = new URL(text);
    if (/^https?:$/.test(url.protocol) && url.origin === text) return text;
  }
  throw new UsageError(
    `Bad ${from}: expected an origin such as 'https://app.example.com' (scheme, host and ` +
      `port only, no path nor '/' at the end) or '*', found '${text}'`,
  );
}

function setting<Value>(declared: Setting<Value>): Setting<Value> {
  return declared;
}

/**
 * Every setting of `purple`, in the order of `--help` and of docs/cli.md's table. The ports are
 * read here and placed by `config.ts`, which knows the command (`purple http` takes `--port`).
 */
export const SETTINGS = {
  backend: setting<string>({
    flag: "backend",
    value: "KIND",
    env: ["PURPLE_BACKEND"],
    kind: "text",
    shown: "disk",
    help: "memory, disk or redis",
    read: (text, from) => {
      if ((BACKEND_KINDS as readonly string[]).includes(text)) return text;
      throw new UsageError(`Bad ${from}: expected memory, disk or redis, found '${text}'`);
    },
    fallback: "disk",
  }),
  dataDir: setting<string>({
    flag: "data-dir",
    value: "DIR",
    env: ["PURPLE_DATA_DIR"],
    kind: "text",
    shown: DEFAULT_DATA_DIR,
    help: "where the disk backend keeps its database",
    read: asText,
    fallback: DEFAULT_DATA_DIR,
  }),
  redisUrl: setting<string>({
    flag: "redis-url",
    value: "URL",
    env: ["PURPLE_REDIS_URL"],
    kind: "text",
    shown: DEFAULT_REDIS_URL,
    help: "the Redis of the redis backend (a cluster: seed URLs, comma-separated)",
    read: asText, // Checked by config.ts, which knows whether it names a cluster.
    fallback: DEFAULT_REDIS_URL,
  }),
  redisLayout: setting<string | undefined>({
    flag: "redis-layout",
    value: "NAME",
    env: ["PURPLE_REDIS_LAYOUT"],
    kind: "text",
    shown: "databases; prefixed on a cluster",
    help: "databases (one per service, the original's) or prefixed (one database)",
    read: (text, from) => {
      if ((REDIS_LAYOUTS as readonly string[]).includes(text)) return text;
      throw new UsageError(`Bad ${from}: expected databases or prefixed, found '${text}'`);
    },
    fallback: undefined,
  }),
  redisPrefix: setting<string | undefined>({
    flag: "redis-prefix",
    value: "P",
    env: ["PURPLE_REDIS_PREFIX"],
    kind: "text",
    shown: "none",
    help: "put in front of every Redis key (several deployments in one Redis)",
    read: asText, // Checked by the backend.
    fallback: undefined,
  }),
  redisCluster: setting<boolean>({
    flag: "redis-cluster",
    env: ["PURPLE_REDIS_CLUSTER"],
    kind: "switch",
    shown: "off",
    help: "--redis-url names a Redis Cluster (implies the prefixed layout)",
    read: goBoolean,
    fallback: false,
  }),
  redisWaitReplicas: setting<number | undefined>({
    flag: "redis-wait-replicas",
    value: "N",
    env: ["PURPLE_REDIS_WAIT_REPLICAS"],
    kind: "text",
    shown: "0, no wait",
    help: "after each write, wait until N replicas acknowledged it (Redis WAIT)",
    read: (text, from) => wholeNumber(text, from, 0, 1000, "a number of replicas from 0"),
    fallback: undefined,
  }),
  redisWaitTimeoutMs: setting<number | undefined>({
    flag: "redis-wait-timeout-ms",
    value: "N",
    env: ["PURPLE_REDIS_WAIT_TIMEOUT_MS"],
    kind: "text",
    shown: "500",
    help: "a write that replicas did not acknowledge in time fails (503, UNAVAILABLE)",
    read: milliseconds,
    fallback: undefined,
  }),
  workers: setting<number | "auto">({
    flag: "workers",
    scope: "server",
    value: "N",
    env: ["PURPLE_WORKERS"],
    kind: "text",
    shown: "1",
    help: "processes serving the same ports (disk or redis); `auto`: one per core",
    more: ["(Linux: SO_REUSEPORT; a supervisor restarts a worker that dies)"],
    read: (text, from) =>
      text === "auto" ? "auto" : wholeNumber(text, from, 1, MAX_WORKERS, WORKERS_EXPECTED),
    fallback: 1,
  }),
  redisInsecureTls: setting<boolean>({
    flag: "redis-insecure-tls",
    env: ["PURPLE_REDIS_INSECURE_TLS"],
    kind: "switch",
    shown: "off",
    help: "do not check the certificate of a rediss:// Redis (Heroku Redis's is self-signed)",
    read: goBoolean,
    fallback: false,
  }),
  redisStartWaitMs: setting<number>({
    flag: "redis-start-wait-ms",
    scope: "server",
    value: "N",
    env: ["PURPLE_REDIS_START_WAIT_MS"],
    kind: "text",
    shown: "30000",
    help: "at start, retry a Redis that cannot be reached yet for this long (0: fail at once)",
    read: (text, from) =>
      wholeNumber(
        text,
        from,
        0,
        MAX_TIMER_MS,
        `a whole number of milliseconds from 0 to ${MAX_TIMER_MS}`,
      ),
    fallback: 30_000,
  }),
  hostname: setting<string>({
    flag: "host",
    scope: "server",
    value: "ADDR",
    env: ["PURPLE_HOST"],
    kind: "text",
    shown: "127.0.0.1",
    help: "the address both servers bind (loopback only)",
    read: asText,
    fallback: "127.0.0.1",
  }),
  port: setting<number | undefined>({
    flag: "port",
    scope: "server",
    value: "N",
    env: ["PURPLE_PORT"],
    kind: "text",
    shown: "8080 for http, 8081 for grpc",
    help: "the port of `purple http` / `purple grpc`",
    read: port,
    fallback: undefined,
  }),
  httpPort: setting<number>({
    flag: "http-port",
    scope: "server",
    value: "N",
    env: ["PURPLE_HTTP_PORT", "PORT"],
    kind: "text",
    shown: "8080",
    help: "the HTTP port",
    read: port,
    fallback: 8080,
  }),
  grpcPort: setting<number>({
    flag: "grpc-port",
    scope: "server",
    value: "N",
    env: ["PURPLE_GRPC_PORT"],
    kind: "text",
    shown: "8081",
    help: "the gRPC port",
    read: port,
    fallback: 8081,
  }),
  maxKeyBytes: setting<number>({
    flag: "max-key-bytes",
    value: "N",
    env: ["PURPLE_MAX_KEY_BYTES"],
    kind: "text",
    shown: String(DEFAULT_LIMITS.maxKeyBytes),
    help: "the longest key or set name, in UTF-8 bytes",
    read: bytes,
    fallback: DEFAULT_LIMITS.maxKeyBytes,
  }),
  maxValueBytes: setting<number>({
    flag: "max-value-bytes",
    value: "N",
    env: ["PURPLE_MAX_VALUE_BYTES"],
    kind: "text",
    shown: String(DEFAULT_LIMITS.maxValueBytes),
    help: "the largest KV or cache value, in bytes",
    read: bytes,
    fallback: DEFAULT_LIMITS.maxValueBytes,
  }),
  maxItemBytes: setting<number>({
    flag: "max-item-bytes",
    value: "N",
    env: ["PURPLE_MAX_ITEM_BYTES"],
    kind: "text",
    shown: String(DEFAULT_LIMITS.maxItemBytes),
    help: "the longest set item, in UTF-8 bytes",
    read: bytes,
    fallback: DEFAULT_LIMITS.maxItemBytes,
  }),
  maxSetItems: setting<number>({
    flag: "max-set-items",
    value: "N",
    env: ["PURPLE_MAX_SET_ITEMS"],
    kind: "text",
    shown: String(DEFAULT_LIMITS.maxSetItems),
    help: "the most items one set may hold",
    read: count,
    fallback: DEFAULT_LIMITS.maxSetItems,
  }),
  maxConcurrentRequests: setting<number>({
    flag: "max-concurrent-requests",
    scope: "server",
    value: "N",
    env: ["PURPLE_MAX_CONCURRENT_REQUESTS"],
    kind: "text",
    shown: String(DEFAULT_LIMITS.maxConcurrentRequests),
    help: "requests each server handles at once; more get 503",
    more: ["(gRPC: UNAVAILABLE) at once instead of queueing"],
    read: count,
    fallback: DEFAULT_LIMITS.maxConcurrentRequests,
  }),
  backendTimeoutMs: setting<number>({
    flag: "backend-timeout-ms",
    value: "N",
    env: ["PURPLE_BACKEND_TIMEOUT_MS"],
    kind: "text",
    shown: String(DEFAULT_LIMITS.backendTimeoutMs),
    help: "the longest one backend operation may take",
    more: ["(then 503, UNAVAILABLE)"],
    read: milliseconds,
    fallback: DEFAULT_LIMITS.backendTimeoutMs,
  }),
  bodyTimeoutMs: setting<number>({
    flag: "body-timeout-ms",
    scope: "server",
    value: "N",
    env: ["PURPLE_BODY_TIMEOUT_MS"],
    kind: "text",
    shown: String(DEFAULT_LIMITS.bodyTimeoutMs),
    help: "the longest a request body may take to arrive",
    more: ["(then 400, INVALID_ARGUMENT)"],
    read: milliseconds,
    fallback: DEFAULT_LIMITS.bodyTimeoutMs,
  }),
  maxWatchers: setting<number>({
    flag: "max-watchers",
    scope: "server",
    value: "N",
    env: ["PURPLE_MAX_WATCHERS"],
    kind: "text",
    shown: String(DEFAULT_LIMITS.maxWatchers),
    help: "watches open at once (GET /watch, gRPC Watch); more get 503",
    more: ["(gRPC: UNAVAILABLE) at once; open watches hold no request slot"],
    read: count,
    fallback: DEFAULT_LIMITS.maxWatchers,
  }),
  maxWatchKeys: setting<number>({
    flag: "max-watch-keys",
    scope: "server",
    value: "N",
    env: ["PURPLE_MAX_WATCH_KEYS"],
    kind: "text",
    shown: String(DEFAULT_LIMITS.maxWatchKeys),
    help: "the most keys one watch may follow; more get 413",
    more: ["(gRPC: RESOURCE_EXHAUSTED)"],
    read: count,
    fallback: DEFAULT_LIMITS.maxWatchKeys,
  }),
  authTokens: setting<string[]>({
    flag: "auth-token",
    scope: "server",
    value: "TOKEN",
    env: ["PURPLE_AUTH_TOKEN"],
    kind: "list",
    item: "token",
    shown: "none",
    help: "a full-access token; repeat the flag for more",
    read: token,
    fallback: [],
  }),
  readTokens: setting<string[]>({
    flag: "read-token",
    scope: "server",
    value: "TOKEN",
    env: ["PURPLE_READ_TOKEN"],
    kind: "list",
    item: "token",
    shown: "none",
    help: "a read-only token (read operations only)",
    read: token,
    fallback: [],
  }),
  corsOrigins: setting<string[]>({
    flag: "cors-origin",
    scope: "server",
    value: "ORIGIN",
    env: ["PURPLE_CORS_ORIGIN"],
    kind: "list",
    item: "origin",
    shown: "none",
    help: "let web pages of this origin call the HTTP API (`*`: any); repeat for more",
    read: corsOrigin,
    fallback: [],
  }),
  tlsCert: setting<string | undefined>({
    flag: "tls-cert",
    scope: "server",
    value: "FILE",
    env: ["PURPLE_TLS_CERT"],
    kind: "text",
    shown: "none: plaintext",
    help: "serve TLS with this PEM certificate (and chain)",
    read: asText,
    fallback: undefined,
  }),
  tlsKey: setting<string | undefined>({
    flag: "tls-key",
    scope: "server",
    value: "FILE",
    env: ["PURPLE_TLS_KEY"],
    kind: "text",
    shown: "none",
    help: "the certificate's unencrypted PEM private key",
    read: asText,
    fallback: undefined,
  }),
  debug: setting<boolean>({
    flag: "debug",
    scope: "server",
    env: ["PURPLE_DEBUG"],
    kind: "switch",
    shown: "off",
    help: "log one line per request",
    read: goBoolean,
    fallback: false,
  }),
  output: setting<string | undefined>({
    flag: "output",
    scope: "transfer",
    value: "FILE",
    env: ["PURPLE_OUTPUT"],
    kind: "text",
    shown: "stdout",
    help: "`purple export`: write the export to FILE (complete, or not at all)",
    read: asText,
    fallback: undefined,
  }),
  skipBad: setting<boolean>({
    flag: "skip-bad",
    scope: "transfer",
    env: ["PURPLE_SKIP_BAD"],
    kind: "switch",
    shown: "off",
    help: "`purple import`: skip bad lines (export: unreadable keys), count them",
    read: goBoolean,
    fallback: false,
  }),
} as const;

/** The name of a setting. */
export type SettingName = keyof typeof SETTINGS;

/** What a setting resolves to. */
export type SettingValue<Name extends SettingName> = (typeof SETTINGS)[Name]["fallback"];

/** The switches every command takes besides the settings. */
export const COMMAND_SWITCHES = {
  help: { short: "h", help: "print this help (every flag, variable and default)" },
  version: { short: "v", help: "print the version" },
} as const;
