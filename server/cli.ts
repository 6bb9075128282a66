/**
 * The `purple` command: parses flags and environment variables ({@linkcode parseCli}, pure),
 * then opens one backend and serves it over HTTP, gRPC or both until SIGINT or SIGTERM
 * ({@linkcode main}).
 *
 * @example Reading a configuration without starting anything
 * ```ts
 * import { parseCli } from "@purple/server";
 *
 * const command = parseCli(["http", "--backend", "memory"], { PORT: "3000" });
 * if (command.action === "serve") console.log(command.config.http); // 3000
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { PurpleError } from "@purple/client/errors";
import {
  BACKEND_KINDS,
  type BackendKind,
  type BackendOptions,
  DEFAULT_DATA_DIR,
  DEFAULT_LIMITS,
  DEFAULT_REDIS_URL,
  type Limits,
  openBackend,
  REDIS_LAYOUTS,
  resolveLayoutName,
} from "../backends/mod.ts";
import { startHttpServer } from "./http.ts";
import type { RunningServer, ServeOptions } from "./options.ts";
import { accessLines, tokenProblem } from "./_auth.ts";
import { type LoadedTls, loadTls, TlsConfigError, tlsLines } from "./_tls.ts";
import denoJson from "../deno.json" with { type: "json" };

/**
 * The version of Purple, from `deno.json`.
 *
 * @example
 * ```ts
 * import { VERSION } from "@purple/server";
 *
 * console.log(VERSION); // "0.1.0"
 * ```
 */
export const VERSION: string = denoJson.version;

/**
 * The default address to bind: loopback only.
 *
 * @example
 * ```ts
 * import { DEFAULT_HOST } from "@purple/server";
 *
 * console.log(DEFAULT_HOST); // "127.0.0.1"
 * ```
 */
export const DEFAULT_HOST = "127.0.0.1";

/**
 * The default HTTP port of the original Purple.
 *
 * @example
 * ```ts
 * import { DEFAULT_HTTP_PORT } from "@purple/server";
 *
 * console.log(DEFAULT_HTTP_PORT); // 8080
 * ```
 */
export const DEFAULT_HTTP_PORT = 8080;

/**
 * The default gRPC port of the original Purple.
 *
 * @example
 * ```ts
 * import { DEFAULT_GRPC_PORT } from "@purple/server";
 *
 * console.log(DEFAULT_GRPC_PORT); // 8081
 * ```
 */
export const DEFAULT_GRPC_PORT = 8081;

/**
 * The text of `purple --help`: every flag, its environment variable and its default.
 *
 * @example
 * ```ts
 * import { HELP } from "@purple/server";
 *
 * console.log(HELP.split("\n")[2]); // "Usage:"
 * ```
 */
export const HELP: string =
  `Purple ${VERSION}: a cache, counters, flags, key/value and sets over HTTP and gRPC

Usage:
  purple [flags]             HTTP on --http-port and gRPC on --grpc-port, one shared backend
  purple http [flags]        HTTP only, on --port
  purple grpc [flags]        gRPC only, on --port

Flags (a flag wins over its environment variable, shown in brackets):
  --backend KIND       memory, disk or redis          [PURPLE_BACKEND] (default: disk)
  --data-dir DIR       the disk backend's directory   [PURPLE_DATA_DIR] (default: ${DEFAULT_DATA_DIR})
  --redis-url URL      the redis backend's server     [PURPLE_REDIS_URL] (default: ${DEFAULT_REDIS_URL})
                       (with --redis-cluster: seed node URLs, comma-separated)
  --redis-layout NAME  databases (one per service,    [PURPLE_REDIS_LAYOUT] (default: databases;
                       the original's) or prefixed                  prefixed with --redis-cluster)
  --redis-prefix P     put in front of every Redis    [PURPLE_REDIS_PREFIX] (default: none)
                       key (several deployments, one Redis)
  --redis-cluster      --redis-url names a Redis      [PURPLE_REDIS_CLUSTER] (default: off)
                       Cluster (implies prefixed)
  --redis-wait-replicas N                             [PURPLE_REDIS_WAIT_REPLICAS] (default: 0, no wait)
                       after each write, wait until N replicas acknowledged it (Redis WAIT)
  --redis-wait-timeout-ms N                           [PURPLE_REDIS_WAIT_TIMEOUT_MS] (default: 500)
                       a write not acknowledged in time fails (503, UNAVAILABLE)
  --host ADDR          the address to bind            [PURPLE_HOST] (default: ${DEFAULT_HOST}, loopback only)
  --port N             the port of 'purple http' or   [PURPLE_PORT] (default: ${DEFAULT_HTTP_PORT} for http,
                       of 'purple grpc'                             ${DEFAULT_GRPC_PORT} for grpc)
  --http-port N        the HTTP port                  [PURPLE_HTTP_PORT, then PORT] (default: ${DEFAULT_HTTP_PORT})
  --grpc-port N        the gRPC port                  [PURPLE_GRPC_PORT] (default: ${DEFAULT_GRPC_PORT})
  --max-key-bytes N    the longest key or set name    [PURPLE_MAX_KEY_BYTES] (default: ${DEFAULT_LIMITS.maxKeyBytes})
  --max-value-bytes N  the largest KV or cache value  [PURPLE_MAX_VALUE_BYTES] (default: ${DEFAULT_LIMITS.maxValueBytes})
  --max-item-bytes N   the longest set item           [PURPLE_MAX_ITEM_BYTES] (default: ${DEFAULT_LIMITS.maxItemBytes})
  --max-set-items N    the most items in one set      [PURPLE_MAX_SET_ITEMS] (default: ${DEFAULT_LIMITS.maxSetItems})
  --max-concurrent-requests N                         [PURPLE_MAX_CONCURRENT_REQUESTS] (default: ${DEFAULT_LIMITS.maxConcurrentRequests})
                       requests each server handles at once; more are refused (503, UNAVAILABLE)
  --backend-timeout-ms N                              [PURPLE_BACKEND_TIMEOUT_MS] (default: ${DEFAULT_LIMITS.backendTimeoutMs})
                       the longest one backend call may take (then 503, UNAVAILABLE)
  --body-timeout-ms N  the longest a request body     [PURPLE_BODY_TIMEOUT_MS] (default: ${DEFAULT_LIMITS.bodyTimeoutMs})
                       may take to arrive (then 400, INVALID_ARGUMENT)
  --auth-token TOKEN   a full-access token; repeat    [PURPLE_AUTH_TOKEN, comma-separated] (default: none)
                       it for several
  --read-token TOKEN   a read-only token (get         [PURPLE_READ_TOKEN, comma-separated] (default: none)
                       operations only); repeatable
  --tls-cert FILE      serve TLS with this PEM        [PURPLE_TLS_CERT] (default: none, plaintext)
                       certificate (and chain)
  --tls-key FILE       the certificate's PEM key      [PURPLE_TLS_KEY] (default: none)
  --debug              log one line per request       [PURPLE_DEBUG] (default: off)
  -h, --help           show this help
  -v, --version        show the version

Port 0 picks any free port; the start-up lines say which. Sizes are in bytes.
With a token set, every request but GET /ping and gRPC health needs 'Authorization: Bearer
TOKEN'; tokens are 16 or more visible ASCII characters. Flags replace their variable's tokens.
Without --host, Purple binds 127.0.0.1 only, with or without tokens.
'purple http' takes --port, then --http-port, PURPLE_PORT, PURPLE_HTTP_PORT, PORT.
'purple grpc' takes --port, then --grpc-port, PURPLE_PORT, PURPLE_GRPC_PORT.
SIGINT or SIGTERM stops Purple gracefully: requests in flight finish, then the backend closes.
Exit codes: 0 after a graceful stop, 2 for bad flags or a backend that cannot be opened.`;

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
   * @param message What was wrong, as one line.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/**
 * What `purple` serves, once flags and variables are resolved.
 *
 * @example
 * ```ts
 * import { type CliConfig, parseCli } from "@purple/server";
 *
 * const command = parseCli(["grpc", "--backend", "memory"], {});
 * if (command.action === "serve") {
 *   const config: CliConfig = command.config;
 *   console.log(config.grpc, config.http); // 8081 undefined
 * }
 * ```
 */
export interface CliConfig {
  /** The HTTP port, or `undefined` when HTTP is not served (`purple grpc`). */
  http?: number;
  /** The gRPC port, or `undefined` when gRPC is not served (`purple http`). */
  grpc?: number;
  /** The backend. */
  backend: BackendKind;
  /** The disk backend's directory. */
  dataDir: string;
  /** The redis backend's URL (with a cluster, seed URLs, comma-separated). */
  redisUrl: string;
  /** The redis backend's layout, prefix, cluster and WAIT settings; absent when none is set. */
  redis?: Pick<
    BackendOptions,
    "redisLayout" | "redisPrefix" | "redisCluster" | "redisWaitReplicas" | "redisWaitTimeoutMs"
  >;
  /** The address to bind. */
  hostname: string;
  /** The size limits. */
  limits: Limits;
  /** Log one line per request. */
  debug: boolean;
  /**
   * The access tokens, full-access and read-only; absent when none is set (then no request
   * needs one).
   */
  auth?: { full: readonly string[]; read: readonly string[] };
  /** The TLS certificate and key files; absent for plaintext. */
  tls?: { certFile: string; keyFile: string };
}

/**
 * What the command line asks for.
 *
 * @example
 * ```ts
 * import { type CliCommand, parseCli } from "@purple/server";
 *
 * const command: CliCommand = parseCli(["--version"], {});
 * console.log(command.action); // "version"
 * ```
 */
export type CliCommand =
  | { action: "help" }
  | { action: "version" }
  | { action: "serve"; config: CliConfig };

const OPTIONS = {
  "backend": { type: "string" },
  "data-dir": { type: "string" },
  "redis-url": { type: "string" },
  "redis-layout": { type: "string" },
  "redis-prefix": { type: "string" },
  "redis-cluster": { type: "boolean" },
  "redis-wait-replicas": { type: "string" },
  "redis-wait-timeout-ms": { type: "string" },
  "host": { type: "string" },
  "port": { type: "string" },
  "http-port": { type: "string" },
  "grpc-port": { type: "string" },
  "max-key-bytes": { type: "string" },
  "max-value-bytes": { type: "string" },
  "max-item-bytes": { type: "string" },
  "max-set-items": { type: "string" },
  "max-concurrent-requests": { type: "string" },
  "backend-timeout-ms": { type: "string" },
  "body-timeout-ms": { type: "string" },
  "auth-token": { type: "string", multiple: true },
  "read-token": { type: "string", multiple: true },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "debug": { type: "boolean" },
  "help": { type: "boolean", short: "h" },
  "version": { type: "boolean", short: "v" },
} as const;

type Flags = { [name in keyof typeof OPTIONS]?: string | boolean | string[] };
type Env = Record<string, string | undefined>;

/** A value and where it came from (`--flag` or `VARIABLE`), for error messages. */
interface Setting {
  value: string;
  from: string;
}

/** The first setting given: flags first (in order), then variables (in order); empty is unset. */
function pick(flags: Flags, env: Env, names: string[], vars: string[]): Setting | undefined {
  for (const name of names) {
    const value = flags[name as keyof Flags];
    if (typeof value === "string") return { value, from: `--${name}` };
  }
  for (const name of vars) {
    const value = env[name];
    if (value !== undefined && value !== "") return { value, from: name };
  }
  return undefined;
}

function wholeNumber(setting: Setting, min: number, max: number, what: string): number {
  const value = Number(setting.value);
  if (!/^[0-9]+$/.test(setting.value) || value < min || value > max) {
    throw new UsageError(`Bad ${setting.from}: expected ${what}, found '${setting.value}'`);
  }
  return value;
}

function port(setting: Setting | undefined, fallback: number): number {
  return setting === undefined
    ? fallback
    : wholeNumber(setting, 0, 65535, "a port from 0 to 65535");
}

function size(flags: Flags, env: Env, flag: string, variable: string, fallback: number): number {
  const setting = pick(flags, env, [flag], [variable]);
  if (setting === undefined) return fallback;
  return wholeNumber(setting, 1, Number.MAX_SAFE_INTEGER, "a whole number of bytes, 1 or more");
}

/** The largest delay a timer takes (2^31 - 1 ms, about 24 days); a longer one fires at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** A count (`unit` undefined) or a duration in milliseconds (`unit` "ms"), 1 or more. */
function limit(
  flags: Flags,
  env: Env,
  flag: string,
  variable: string,
  fallback: number,
  unit?: "ms",
): number {
  const setting = pick(flags, env, [flag], [variable]);
  if (setting === undefined) return fallback;
  if (unit === "ms") {
    const what = `a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`;
    return wholeNumber(setting, 1, MAX_TIMEOUT_MS, what);
  }
  return wholeNumber(setting, 1, Number.MAX_SAFE_INTEGER, "a whole number, 1 or more");
}

const TRUE = ["1", "t", "T", "TRUE", "true", "True"];
const FALSE = ["0", "f", "F", "FALSE", "false", "False"];

function debugSetting(flags: Flags, env: Env): boolean {
  if (flags.debug === true) return true;
  const value = env.PURPLE_DEBUG;
  if (value === undefined || value === "" || FALSE.includes(value)) return false;
  if (TRUE.includes(value)) return true;
  throw new UsageError(`Bad PURPLE_DEBUG: expected true or false, found '${value}'`);
}

/** The redis backend's settings beyond its URL (the names of `openBackend`'s options). */
type RedisSettings = NonNullable<CliConfig["redis"]>;

/** --redis-layout, --redis-prefix, --redis-cluster, --redis-wait-*: absent when none is set. */
function redisSettings(flags: Flags, env: Env): Pick<CliConfig, "redis"> {
  const settings: RedisSettings = {};
  const cluster = flags["redis-cluster"] === true
    ? true
    : booleanVariable(env, "PURPLE_REDIS_CLUSTER");
  if (cluster) settings.redisCluster = true;
  const layout = pick(flags, env, ["redis-layout"], ["PURPLE_REDIS_LAYOUT"]);
  if (layout !== undefined) {
    if (!(REDIS_LAYOUTS as readonly string[]).includes(layout.value)) {
      throw new UsageError(
        `Bad ${layout.from}: expected databases or prefixed, found '${layout.value}'`,
      );
    }
    try {
      settings.redisLayout = resolveLayoutName(layout.value, cluster);
    } catch (error) {
      throw new UsageError(`Bad ${layout.from}: ${(error as Error).message}`);
    }
  }
  const prefix = pick(flags, env, ["redis-prefix"], ["PURPLE_REDIS_PREFIX"]);
  if (prefix !== undefined) settings.redisPrefix = prefix.value; // openBackend checks it
  const replicas = pick(flags, env, ["redis-wait-replicas"], ["PURPLE_REDIS_WAIT_REPLICAS"]);
  if (replicas !== undefined) {
    settings.redisWaitReplicas = wholeNumber(replicas, 0, 1000, "a number of replicas from 0");
  }
  const waitTimeout = pick(
    flags,
    env,
    ["redis-wait-timeout-ms"],
    ["PURPLE_REDIS_WAIT_TIMEOUT_MS"],
  );
  if (waitTimeout !== undefined) {
    const what = `a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`;
    settings.redisWaitTimeoutMs = wholeNumber(waitTimeout, 1, MAX_TIMEOUT_MS, what);
  }
  return Object.keys(settings).length === 0 ? {} : { redis: settings };
}

function booleanVariable(env: Env, name: string): boolean {
  const value = env[name];
  if (value === undefined || value === "" || FALSE.includes(value)) return false;
  if (TRUE.includes(value)) return true;
  throw new UsageError(`Bad ${name}: expected true or false, found '${value}'`);
}

function text(setting: Setting | undefined, fallback: string): string {
  return setting === undefined ? fallback : setting.value;
}

/** The tokens of one kind: the flag's (repeated), else the variable's (comma-separated). */
function tokens(flags: Flags, env: Env, flag: string, variable: string): string[] {
  const given = flags[flag as keyof Flags];
  const value = env[variable];
  const [list, from] = Array.isArray(given)
    ? [given, `--${flag}`]
    : [(value ?? "").split(",").map((token) => token.trim()).filter((token) => token), variable];
  if (!Array.isArray(given) && value !== undefined && value.trim() !== "" && list.length === 0) {
    throw new UsageError(`Bad ${variable}: it holds no token, only commas and spaces`);
  }
  for (const token of list) {
    const problem = tokenProblem(token); // Never quotes the token.
    if (problem !== undefined) throw new UsageError(`Bad ${from}: ${problem}`);
  }
  return [...new Set(list)];
}

function accessSetting(flags: Flags, env: Env): Pick<CliConfig, "auth"> {
  const full = tokens(flags, env, "auth-token", "PURPLE_AUTH_TOKEN");
  const read = tokens(flags, env, "read-token", "PURPLE_READ_TOKEN");
  if (read.some((token) => full.includes(token))) {
    throw new UsageError(
      "Bad access tokens: one token is both full-access and read-only (--read-token, " +
        "PURPLE_READ_TOKEN); give each token one kind",
    );
  }
  return full.length + read.length === 0 ? {} : { auth: { full, read } };
}

function tlsSetting(flags: Flags, env: Env): { tls?: { certFile: string; keyFile: string } } {
  const cert = pick(flags, env, ["tls-cert"], ["PURPLE_TLS_CERT"]);
  const key = pick(flags, env, ["tls-key"], ["PURPLE_TLS_KEY"]);
  if (cert === undefined && key === undefined) return {};
  if (cert === undefined) {
    throw new UsageError(`Bad ${key?.from}: TLS needs a certificate too (--tls-cert)`);
  }
  if (key === undefined) throw new UsageError(`Bad ${cert.from}: TLS needs a key too (--tls-key)`);
  return { tls: { certFile: cert.value, keyFile: key.value } };
}

function parseFlags(args: string[]): { flags: Flags; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: OPTIONS,
      strict: true,
      allowPositionals: true,
    });
    return { flags: values as Flags, positionals };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === undefined || !code.startsWith("ERR_PARSE_ARGS_")) throw error;
    const flag = /'(-[^' ]+)/.exec((error as Error).message)?.[1] ?? "flag";
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      throw new UsageError(`Unknown flag '${flag}' (see 'purple --help')`);
    }
    if ((error as Error).message.includes("does not take an argument")) {
      throw new UsageError(`Bad ${flag}: it takes no value`);
    }
    throw new UsageError(`Bad ${flag}: a value is missing`);
  }
}

function ports(mode: string | undefined, flags: Flags, env: Env): { http?: number; grpc?: number } {
  if (mode === "http" || mode === "grpc") {
    const other = mode === "http" ? "grpc-port" : "http-port";
    if (flags[other] !== undefined) {
      throw new UsageError(`Bad --${other}: 'purple ${mode}' serves only ${mode.toUpperCase()}`);
    }
  }
  if (mode === "http") {
    const setting = pick(flags, env, ["port", "http-port"], [
      "PURPLE_PORT",
      "PURPLE_HTTP_PORT",
      "PORT",
    ]);
    return { http: port(setting, DEFAULT_HTTP_PORT) };
  }
  if (mode === "grpc") {
    const setting = pick(flags, env, ["port", "grpc-port"], ["PURPLE_PORT", "PURPLE_GRPC_PORT"]);
    return { grpc: port(setting, DEFAULT_GRPC_PORT) };
  }
  const single = pick(flags, env, ["port"], ["PURPLE_PORT"]);
  if (single !== undefined) {
    throw new UsageError(
      `Bad ${single.from}: it sets the port of 'purple http' or 'purple grpc'; ` +
        "to serve both, set the HTTP and gRPC ports apart",
    );
  }
  const http = port(
    pick(flags, env, ["http-port"], ["PURPLE_HTTP_PORT", "PORT"]),
    DEFAULT_HTTP_PORT,
  );
  const grpc = port(pick(flags, env, ["grpc-port"], ["PURPLE_GRPC_PORT"]), DEFAULT_GRPC_PORT);
  if (http === grpc && http !== 0) {
    throw new UsageError(`Bad ports: HTTP and gRPC cannot both listen on port ${http}`);
  }
  return { http, grpc };
}

/**
 * Resolves the command line and the environment into what to do. Precedence: a flag, then
 * its `PURPLE_*` variable, then `PORT` (for the HTTP port), then the default. Pure: it reads
 * nothing but its arguments.
 *
 * @param args The arguments after the program name (`Deno.args`).
 * @param env The environment variables.
 * @returns Help, version, or the configuration to serve.
 * @throws {UsageError} For an unknown flag or command, or a value out of range.
 *
 * @example
 * ```ts
 * import { parseCli } from "@purple/server";
 *
 * const command = parseCli(["--backend", "memory", "--http-port", "0"], {
 *   PURPLE_GRPC_PORT: "9091",
 * });
 * if (command.action === "serve") {
 *   console.log(command.config.http, command.config.grpc); // 0 9091
 * }
 * ```
 */
export function parseCli(args: string[], env: Record<string, string | undefined>): CliCommand {
  const { flags, positionals } = parseFlags(args);
  if (flags.help) return { action: "help" };
  if (flags.version) return { action: "version" };
  const [mode, ...extra] = positionals;
  if (mode !== undefined && mode !== "http" && mode !== "grpc") {
    throw new UsageError(`Unknown command '${mode}': expected 'http', 'grpc' or none`);
  }
  if (extra.length > 0) throw new UsageError(`Unexpected argument '${extra[0]}'`);

  const backendSetting = pick(flags, env, ["backend"], ["PURPLE_BACKEND"]);
  const backend = text(backendSetting, "disk");
  if (!(BACKEND_KINDS as readonly string[]).includes(backend)) {
    throw new UsageError(
      `Bad ${backendSetting?.from}: expected memory, disk or redis, found '${backend}'`,
    );
  }
  const redisSetting = pick(flags, env, ["redis-url"], ["PURPLE_REDIS_URL"]);
  const redisUrl = text(redisSetting, DEFAULT_REDIS_URL);
  const redis = redisSettings(flags, env);
  const redisUrls = redis.redis?.redisCluster
    ? redisUrl.split(",").map((url) => url.trim())
    : [redisUrl];
  for (const url of redisUrls) {
    if (!/^rediss?:\/\/[^\s]+$/.test(url) || !URL.canParse(url)) {
      const what = redisUrls.length > 1
        ? "redis:// or rediss:// URLs, comma-separated"
        : "a redis:// or rediss:// URL";
      throw new UsageError(`Bad ${redisSetting?.from}: expected ${what}, found '${redisUrl}'`);
    }
  }
  return {
    action: "serve",
    config: {
      ...ports(mode, flags, env),
      backend: backend as BackendKind,
      dataDir: text(pick(flags, env, ["data-dir"], ["PURPLE_DATA_DIR"]), DEFAULT_DATA_DIR),
      redisUrl,
      ...redis,
      hostname: text(pick(flags, env, ["host"], ["PURPLE_HOST"]), DEFAULT_HOST),
      limits: {
        maxKeyBytes: size(
          flags,
          env,
          "max-key-bytes",
          "PURPLE_MAX_KEY_BYTES",
          DEFAULT_LIMITS.maxKeyBytes,
        ),
        maxValueBytes: size(
          flags,
          env,
          "max-value-bytes",
          "PURPLE_MAX_VALUE_BYTES",
          DEFAULT_LIMITS.maxValueBytes,
        ),
        maxItemBytes: size(
          flags,
          env,
          "max-item-bytes",
          "PURPLE_MAX_ITEM_BYTES",
          DEFAULT_LIMITS.maxItemBytes,
        ),
        maxSetItems: limit(
          flags,
          env,
          "max-set-items",
          "PURPLE_MAX_SET_ITEMS",
          DEFAULT_LIMITS.maxSetItems,
        ),
        maxConcurrentRequests: limit(
          flags,
          env,
          "max-concurrent-requests",
          "PURPLE_MAX_CONCURRENT_REQUESTS",
          DEFAULT_LIMITS.maxConcurrentRequests,
        ),
        backendTimeoutMs: limit(
          flags,
          env,
          "backend-timeout-ms",
          "PURPLE_BACKEND_TIMEOUT_MS",
          DEFAULT_LIMITS.backendTimeoutMs,
          "ms",
        ),
        bodyTimeoutMs: limit(
          flags,
          env,
          "body-timeout-ms",
          "PURPLE_BODY_TIMEOUT_MS",
          DEFAULT_LIMITS.bodyTimeoutMs,
          "ms",
        ),
      },
      debug: debugSetting(flags, env),
      ...accessSetting(flags, env),
      ...tlsSetting(flags, env),
    },
  };
}

/** Prints the one line of a failure that is the user's or the environment's, not a bug. */
function fail(reason: string): number {
  console.error(`purple: ${reason.replace(/\s*\n\s*/g, " ")}`);
  return 2;
}

/** Whether an error is the operating system's (a port taken, a directory not writable). */
function isSystemError(error: unknown): error is Error {
  return Object.values(Deno.errors).some((kind) => error instanceof kind);
}

/** Whether an error from binding a port is the environment's (port taken, bad address). */
function isListenError(error: unknown): error is Error {
  return isSystemError(error) || error instanceof Error && /lookup address/.test(error.message);
}

function describeBackend(config: CliConfig): string {
  if (config.backend === "disk") return `disk backend in ${config.dataDir}`;
  if (config.backend === "redis") {
    const urls = config.redisUrl.split(",").map((text) => {
      const url = new URL(text.trim());
      if (url.password) url.password = "***";
      return url.href;
    });
    const redis = config.redis ?? {};
    const layout = resolveLayoutName(redis.redisLayout, redis.redisCluster === true);
    const parts = [
      redis.redisCluster
        ? `redis backend on the Redis Cluster at ${urls.join(",")}`
        : `redis backend at ${urls[0]}`,
      redis.redisCluster ? `${layout} layout (a cluster implies prefixed)` : `${layout} layout`,
    ];
    if (redis.redisPrefix) parts.push(`key prefix '${redis.redisPrefix}'`);
    if (redis.redisWaitReplicas) {
      parts.push(
        `writes wait for ${redis.redisWaitReplicas} replica(s) (${
          redis.redisWaitTimeoutMs ?? 500
        } ms)`,
      );
    }
    return parts.join(", ");
  }
  return "memory backend";
}

function describeHost(hostname: string): string {
  const loopback = hostname === "localhost" || hostname === "::1" || hostname.startsWith("127.");
  return loopback
    ? `${hostname} (loopback only; --host 0.0.0.0 accepts other machines)`
    : `${hostname}`;
}

/** Resolves with the first SIGINT or SIGTERM; a second one exits at once. */
function signals(log: (line: string) => void): { received: Promise<string>; dispose(): void } {
  const listeners: Array<[Deno.Signal, () => void]> = [];
  let first = true;
  const received = new Promise<string>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const listener = () => {
        if (!first) {
          log(`Received ${signal} again: exiting without waiting`);
          Deno.exit(1);
        }
        first = false;
        resolve(signal);
      };
      try {
        Deno.addSignalListener(signal, listener);
        listeners.push([signal, listener]);
      } catch {
        // Windows cannot listen for SIGTERM; SIGINT (Ctrl+C) still works.
      }
    }
  });
  return {
    received,
    dispose: () => listeners.forEach(([signal, fn]) => Deno.removeSignalListener(signal, fn)),
  };
}

async function serve(config: CliConfig): Promise<number> {
  const log = (line: string) => console.log(line);
  log(`Purple ${VERSION}, ${describeBackend(config)}, binding ${describeHost(config.hostname)}`);
  let tls: LoadedTls | undefined;
  try {
    tls = config.tls && await loadTls(config.tls.certFile, config.tls.keyFile);
  } catch (error) {
    if (error instanceof TlsConfigError) return fail(error.message);
    throw error;
  }
  if (tls && config.tls) tlsLines(tls, config.tls.certFile).forEach((line) => log(line));
  accessLines(config.hostname, config.auth, tls !== undefined).forEach((line) => log(line));
  if (config.backend === "disk" && typeof Deno.openKv !== "function") {
    return fail(
      "Cannot open the disk backend: Deno KV is unavailable; run Deno with --unstable-kv",
    );
  }
  let ops;
  try {
    ops = await openBackend({
      kind: config.backend,
      dataDir: config.dataDir,
      redisUrl: config.redisUrl,
      ...config.redis,
      limits: config.limits,
    });
  } catch (error) {
    if (error instanceof PurpleError) return fail(error.message);
    if (isSystemError(error)) {
      return fail(`Cannot open the ${config.backend} backend: ${error.message}`);
    }
    throw error;
  }
  const stop = signals(log);
  const servers: RunningServer[] = [];
  const options = (port: number): ServeOptions => ({
    hostname: config.hostname,
    port,
    limits: config.limits,
    debug: config.debug,
    log,
    auth: config.auth,
    tls: tls && { cert: tls.cert, key: tls.key },
  });
  try {
    if (config.http !== undefined) {
      servers.push(await startHttpServer(ops, options(config.http)));
    }
    if (config.grpc !== undefined) {
      const { startGrpcServer } = await import("./grpc.ts");
      servers.push(await startGrpcServer(ops, options(config.grpc)));
    }
  } catch (error) {
    stop.dispose();
    await Promise.all(servers.map((server) => server.shutdown()));
    await ops.close();
    if (isListenError(error) || error instanceof PurpleError) {
      return fail(`Cannot listen on ${config.hostname}: ${error.message}`);
    }
    throw error;
  }
  const signal = await stop.received;
  log(
    `Received ${signal}: finishing requests in flight, then closing the ${config.backend} backend`,
  );
  await Promise.all(servers.map((server) => server.shutdown()));
  await ops.close();
  stop.dispose();
  log("Stopped");
  return 0;
}

/**
 * Runs the `purple` command: prints help or the version, or serves until SIGINT or SIGTERM.
 * A bad flag, an unknown backend, a Redis that cannot be reached or a port that cannot be
 * bound prints one line (`purple: <reason>`) on stderr and returns 2; any other error is a
 * bug and is thrown.
 *
 * @param args The arguments after the program name (`Deno.args`).
 * @returns The exit code: 0 after `--help`, `--version` or a graceful stop; 2 for a usage or
 * start-up failure.
 *
 * @example
 * ```ts
 * import { main } from "@purple/server";
 *
 * console.log(await main(["--version"])); // 0, after printing "purple 0.1.0"
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let command: CliCommand;
  try {
    command = parseCli(args, Deno.env.toObject());
  } catch (error) {
    if (error instanceof UsageError) return fail(error.message);
    throw error;
  }
  if (command.action === "help") {
    console.log(HELP);
    return 0;
  }
  if (command.action === "version") {
    console.log(`purple ${VERSION}`);
    return 0;
  }
  return await serve(command.config);
}
