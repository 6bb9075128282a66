/**
 * What the `purple` command serves, resolved from its flags and environment variables by the
 * settings table (`_settings.ts`): {@linkcode parseCli} is pure (it reads nothing but its
 * arguments), {@linkcode HELP} is the text of `purple --help`. `serve.ts` runs what it resolves.
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
import {
  type BackendKind,
  type BackendOptions,
  type Limits,
  resolveLayoutName,
} from "../backends/mod.ts";
import type { AccessTokens } from "./options.ts";
import {
  COMMAND_SWITCHES,
  type Setting,
  type SettingName,
  SETTINGS,
  type SettingValue,
  UsageError,
} from "./_settings.ts";

export { UsageError } from "./_settings.ts";
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
export const DEFAULT_HOST: string = SETTINGS.hostname.fallback;

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
export const DEFAULT_HTTP_PORT: number = SETTINGS.httpPort.fallback;

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
export const DEFAULT_GRPC_PORT: number = SETTINGS.grpcPort.fallback;

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
    | "redisLayout"
    | "redisPrefix"
    | "redisCluster"
    | "redisWaitReplicas"
    | "redisWaitTimeoutMs"
    | "redisInsecureTls"
  >;
  /**
   * How long the redis backend retries, at start, a Redis that cannot be reached yet (a Redis
   * started beside Purple), in milliseconds; 0 fails at once.
   */
  redisStartWaitMs: number;
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
  auth?: AccessTokens;
  /** The TLS certificate and key files; absent for plaintext. */
  tls?: { certFile: string; keyFile: string };
  /**
   * How many processes serve the same ports (`--workers`), when more than one; absent for one.
   * Never set with the memory backend.
   */
  workers?: number;
  /** The origins whose web pages may call the HTTP API (CORS); absent when none is set. */
  corsOrigins?: string[];
}

/**
 * The backend `purple export` and `purple import` work on, as serving names it: the same
 * flags and variables (the limits are those an import holds its entries to).
 *
 * @example
 * ```ts
 * import { type BackendConfig, parseCli } from "@purple/server";
 *
 * const command = parseCli(["export", "--backend", "disk", "--data-dir", "/var/purple"], {});
 * if (command.action === "export") {
 *   const backend: BackendConfig = command.config;
 *   console.log(backend.dataDir); // "/var/purple"
 * }
 * ```
 */
export type BackendConfig = Pick<
  CliConfig,
  "backend" | "dataDir" | "redisUrl" | "redis" | "limits"
>;

/**
 * What `purple export` does: write every entry of the backend to `output` (stdout when absent
 * or `-`).
 *
 * @example
 * ```ts
 * import { parseCli } from "@purple/server";
 *
 * const command = parseCli(["export", "--output", "backup.jsonl"], {});
 * if (command.action === "export") console.log(command.config.output); // "backup.jsonl"
 * ```
 */
export interface ExportConfig extends BackendConfig {
  /** The file to write; stdout when absent or `-`. */
  output?: string;
  /** Leave out (and count) the keys Purple cannot read, instead of stopping at the first. */
  skipBad: boolean;
}

/**
 * What `purple import` does: read the file `input` (stdin when absent or `-`) into the backend.
 *
 * @example
 * ```ts
 * import { parseCli } from "@purple/server";
 *
 * const command = parseCli(["import", "backup.jsonl", "--skip-bad"], {});
 * if (command.action === "import") console.log(command.config.input); // "backup.jsonl"
 * ```
 */
export interface ImportConfig extends BackendConfig {
  /** The file to read; stdin when absent or `-`. */
  input?: string;
  /** Skip (and count) bad lines instead of stopping at the first. */
  skipBad: boolean;
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
  | { action: "serve"; config: CliConfig }
  | { action: "export"; config: ExportConfig }
  | { action: "import"; config: ImportConfig };

type AnySetting = Setting<unknown>;
type Env = Record<string, string | undefined>;
type Flags = Record<string, string | boolean | string[] | undefined>;

const ALL_SETTINGS = Object.values(SETTINGS) as AnySetting[];

/** The `parseArgs` options: every setting's flag, and the command switches. */
const OPTIONS: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> =
  {};
for (const { flag, kind } of ALL_SETTINGS) {
  OPTIONS[flag] = { type: kind === "switch" ? "boolean" : "string", multiple: kind === "list" };
}
for (const [flag, { short }] of Object.entries(COMMAND_SWITCHES)) {
  OPTIONS[flag] = { type: "boolean", short };
}

/** Whether a flag takes a value (so that `--port -1` reads `-1` as its value). */
function takesValue(arg: string): boolean {
  const name = /^--([a-z-]+)$/.exec(arg)?.[1];
  return name !== undefined && OPTIONS[name]?.type === "string";
}

function parseFlags(args: string[]): { flags: Flags; positionals: string[] } {
  // A value that starts with a dash (`--port -1`) would read as a flag: join it to its flag, so
  // that the value is checked and refused for what it is.
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const next = args[i + 1];
    if (takesValue(args[i]) && next !== undefined && /^-[^-]/.test(next)) {
      joined.push(`${args[i]}=${next}`);
      i++;
    } else joined.push(args[i]);
  }
  try {
    const { values, positionals } = parseArgs({
      args: joined,
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

/** Where a setting is given: the flag's text(s), or its first variable that is set. */
interface Given {
  texts: string[];
  from: string;
}

/**
 * Reads settings from flags and variables, each when first asked for (a setting the command
 * does not use is not read, so a bad value there does not stop it).
 */
class Resolver {
  #flags: Flags;
  #env: Env;

  constructor(flags: Flags, env: Env) {
    this.#flags = flags;
    this.#env = env;
  }

  /**
   * Where a setting is given: its flag (repeated, for a list: the flags replace the variable's
   * values), else its first variable that is set (an empty variable is unset; a list's
   * variable holds values separated by commas), else `undefined`.
   */
  given(name: SettingName): Given | undefined {
    const setting: AnySetting = SETTINGS[name];
    const flag = this.#flags[setting.flag];
    if (Array.isArray(flag)) return { texts: flag, from: `--${setting.flag}` };
    if (typeof flag === "string") return { texts: [flag], from: `--${setting.flag}` };
    if (flag === true) return { texts: ["true"], from: `--${setting.flag}` };
    for (const from of setting.env) {
      const text = this.#env[from];
      // An empty variable is unset (for a list, one of spaces too).
      if (text === undefined || (setting.kind === "list" ? text.trim() : text) === "") continue;
      if (setting.kind !== "list") return { texts: [text], from };
      const texts = text.split(",").map((item) => item.trim()).filter((item) => item !== "");
      if (texts.length === 0) {
        const item = setting.item ?? "value";
        throw new UsageError(`Bad ${from}: it holds no ${item}, only commas and spaces`);
      }
      return { texts, from };
    }
    return undefined;
  }

  /** A setting's value: what is given, read and checked, else its default. */
  value<Name extends SettingName>(name: Name): SettingValue<Name> {
    const setting: AnySetting = SETTINGS[name];
    const given = this.given(name);
    if (given === undefined) return setting.fallback as SettingValue<Name>;
    const values = given.texts.map((text) => setting.read(text, given.from));
    return (setting.kind === "list" ? [...new Set(values)] : values[0]) as SettingValue<Name>;
  }
}

/** The ports of the command: `purple http` and `purple grpc` take `--port`, plain `purple` not. */
function ports(mode: string | undefined, s: Resolver): { http?: number; grpc?: number } {
  if (mode === "http" || mode === "grpc") {
    const own = mode === "http" ? "httpPort" : "grpcPort";
    const other = s.given(mode === "http" ? "grpcPort" : "httpPort");
    if (other?.from.startsWith("--")) {
      throw new UsageError(`Bad ${other.from}: 'purple ${mode}' serves only ${mode.toUpperCase()}`);
    }
    // --port, then the server's own flag, then PURPLE_PORT, then the server's own variables.
    const port = s.given("port");
    const ownGiven = s.given(own);
    const usePort = port !== undefined &&
      (port.from.startsWith("--") || !ownGiven?.from.startsWith("--"));
    const value = usePort ? s.value("port")! : s.value(own);
    return mode === "http" ? { http: value } : { grpc: value };
  }
  const single = s.given("port");
  if (single !== undefined) {
    throw new UsageError(
      `Bad ${single.from}: it sets the port of 'purple http' or 'purple grpc'; ` +
        "to serve both, set the HTTP and gRPC ports apart",
    );
  }
  const http = s.value("httpPort");
  const grpc = s.value("grpcPort");
  if (http === grpc && http !== 0) {
    throw new UsageError(`Bad ports: HTTP and gRPC cannot both listen on port ${http}`);
  }
  return { http, grpc };
}

/** The Redis URL(s), checked: one URL, or with a cluster seed URLs separated by commas. */
function redisUrl(s: Resolver, cluster: boolean): string {
  const text = s.value("redisUrl");
  const urls = cluster ? text.split(",").map((url) => url.trim()) : [text];
  for (const url of urls) {
    if (!/^rediss?:\/\/[^\s]+$/.test(url) || !URL.canParse(url)) {
      const what = cluster
        ? "redis:// or rediss:// URLs, comma-separated"
        : "a redis:// or rediss:// URL";
      const from = s.given("redisUrl")?.from ?? "--redis-url";
      throw new UsageError(`Bad ${from}: expected ${what}, found '${text}'`);
    }
  }
  return text;
}

/** The redis backend's settings beyond its URL: absent when none is set. */
function redis(s: Resolver, cluster: boolean): Pick<CliConfig, "redis"> {
  const settings: NonNullable<CliConfig["redis"]> = {};
  if (cluster) settings.redisCluster = true;
  const layout = s.value("redisLayout");
  if (layout !== undefined) {
    try {
      settings.redisLayout = resolveLayoutName(layout, cluster);
    } catch (error) {
      throw new UsageError(`Bad ${s.given("redisLayout")!.from}: ${(error as Error).message}`);
    }
  }
  const prefix = s.value("redisPrefix");
  if (prefix !== undefined) settings.redisPrefix = prefix; // openBackend checks it
  const replicas = s.value("redisWaitReplicas");
  if (replicas !== undefined) settings.redisWaitReplicas = replicas;
  const waitTimeoutMs = s.value("redisWaitTimeoutMs");
  if (waitTimeoutMs !== undefined) settings.redisWaitTimeoutMs = waitTimeoutMs;
  if (s.value("redisInsecureTls")) settings.redisInsecureTls = true;
  return Object.keys(settings).length === 0 ? {} : { redis: settings };
}

/**
 * The worker processes: absent for one; `auto` is one per core. More than one cannot serve the
 * memory backend, whose data lives in one process.
 */
function workers(s: Resolver, backend: string, cores: number): { workers?: number } {
  const value = s.value("workers");
  const count = value === "auto" ? Math.max(1, cores) : value;
  if (count === 1) return {};
  if (backend === "memory") {
    const from = s.given("workers")!.from;
    const what = value === "auto" ? `${from} (auto: ${count} cores)` : from;
    throw new UsageError(
      `Bad ${what}: the memory backend lives inside one process, so ${count} workers cannot ` +
        "share its data; use --backend disk or redis, or one worker",
    );
  }
  return { workers: count };
}

function access(s: Resolver): { auth?: AccessTokens } {
  const full = s.value("authTokens");
  const read = s.value("readTokens");
  if (read.some((token) => full.includes(token))) {
    throw new UsageError(
      "Bad access tokens: one token is both full-access and read-only (--read-token, " +
        "PURPLE_READ_TOKEN); give each token one kind",
    );
  }
  return full.length + read.length === 0 ? {} : { auth: { full, read } };
}

function cors(s: Resolver): { corsOrigins?: string[] } {
  const origins = s.value("corsOrigins");
  return origins.length === 0 ? {} : { corsOrigins: origins };
}

function tls(s: Resolver): { tls?: { certFile: string; keyFile: string } } {
  const cert = s.given("tlsCert");
  const key = s.given("tlsKey");
  if (cert === undefined && key === undefined) return {};
  if (cert === undefined) {
    throw new UsageError(`Bad ${key!.from}: TLS needs a certificate too (--tls-cert)`);
  }
  if (key === undefined) throw new UsageError(`Bad ${cert.from}: TLS needs a key too (--tls-key)`);
  return { tls: { certFile: s.value("tlsCert")!, keyFile: s.value("tlsKey")! } };
}

/**
 * Resolves the command line and the environment into what to do. Precedence: a flag, then
 * its `PURPLE_*` variable, then `PORT` (for the HTTP port), then the default. Pure: it reads
 * nothing but its arguments (`--workers auto` takes the number of cores from `cores`).
 *
 * @param args The arguments after the program name (`Deno.args`).
 * @param env The environment variables.
 * @param cores The number of cores, for `--workers auto` (default: this machine's).
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
export function parseCli(
  args: string[],
  env: Record<string, string | undefined>,
  cores: number = navigator.hardwareConcurrency,
): CliCommand {
  const { flags, positionals } = parseFlags(args);
  if (flags.help) return { action: "help" };
  if (flags.version) return { action: "version" };
  const [mode, ...extra] = positionals;
  const s = new Resolver(flags, env);
  if (mode === "export" || mode === "import") return transfer(mode, extra, s);
  if (mode !== undefined && mode !== "http" && mode !== "grpc") {
    throw new UsageError(
      `Unknown command '${mode}': expected 'http', 'grpc', 'export', 'import' or none`,
    );
  }
  if (extra.length > 0) throw new UsageError(`Unexpected argument '${extra[0]}'`);
  for (const name of TRANSFER_ONLY) {
    const given = s.given(name);
    if (given?.from.startsWith("--")) {
      throw new UsageError(
        `Bad ${given.from}: it is a flag of 'purple export' and 'purple import'`,
      );
    }
  }
  const cluster = s.value("redisCluster");
  const backend = s.value("backend") as BackendKind;
  return {
    action: "serve",
    config: {
      ...ports(mode, s),
      backend,
      dataDir: s.value("dataDir"),
      redisUrl: redisUrl(s, cluster),
      ...redis(s, cluster),
      redisStartWaitMs: s.value("redisStartWaitMs"),
      hostname: s.value("hostname"),
      limits: limits(s),
      debug: s.value("debug"),
      ...access(s),
      ...tls(s),
      ...workers(s, backend, cores),
      ...cors(s),
    },
  };
}

function limits(s: Resolver): Limits {
  return {
    maxKeyBytes: s.value("maxKeyBytes"),
    maxValueBytes: s.value("maxValueBytes"),
    maxItemBytes: s.value("maxItemBytes"),
    maxSetItems: s.value("maxSetItems"),
    maxConcurrentRequests: s.value("maxConcurrentRequests"),
    backendTimeoutMs: s.value("backendTimeoutMs"),
    bodyTimeoutMs: s.value("bodyTimeoutMs"),
    maxWatchers: s.value("maxWatchers"),
    maxWatchKeys: s.value("maxWatchKeys"),
  };
}

/** The settings that only `purple export` and `purple import` read. */
const TRANSFER_ONLY = settingNamesOf("transfer");

/** The settings that only the servers read: `purple export` and `purple import` refuse them. */
const SERVER_ONLY = settingNamesOf("server");

function settingNamesOf(scope: "server" | "transfer"): readonly SettingName[] {
  return (Object.keys(SETTINGS) as SettingName[]).filter((name) => SETTINGS[name].scope === scope);
}

/** `purple export` and `purple import [FILE]`: the backend's settings, and their own. */
function transfer(mode: "export" | "import", extra: string[], s: Resolver): CliCommand {
  const allowed = mode === "import" ? 1 : 0;
  if (extra.length > allowed) throw new UsageError(`Unexpected argument '${extra[allowed]}'`);
  for (const name of SERVER_ONLY) {
    const given = s.given(name);
    if (given?.from.startsWith("--")) {
      throw new UsageError(
        `Bad ${given.from}: it is a flag of the servers; 'purple ${mode}' reads and writes the backend directly`,
      );
    }
  }
  const output = s.given("output");
  if (mode === "import" && output?.from.startsWith("--")) {
    throw new UsageError(
      `Bad ${output.from}: it is a flag of 'purple export'; 'purple import' reads FILE, or stdin`,
    );
  }
  const cluster = s.value("redisCluster");
  const backend: BackendConfig = {
    backend: s.value("backend") as BackendKind,
    dataDir: s.value("dataDir"),
    redisUrl: redisUrl(s, cluster),
    ...redis(s, cluster),
    limits: limits(s),
  };
  const skipBad = s.value("skipBad");
  if (mode === "import") {
    return {
      action: "import",
      config: { ...backend, ...(extra[0] && { input: extra[0] }), skipBad },
    };
  }
  const file = s.value("output");
  return { action: "export", config: { ...backend, ...(file && { output: file }), skipBad } };
}

/** The flag as `--help` and docs/cli.md show it: `--data-dir DIR`. */
export function flagUsage(setting: AnySetting): string {
  return `--${setting.flag}${setting.value === undefined ? "" : ` ${setting.value}`}`;
}

/** The variables as `--help` shows them: `[PURPLE_HTTP_PORT, then PORT]`. */
function variablesUsage(setting: AnySetting): string {
  const list = setting.kind === "list" ? ", comma-separated" : "";
  return `[${setting.env.join(", then ")}${list}]`;
}

const COLUMN = 31;

function helpLines(): string[] {
  const lines: string[] = [];
  for (const setting of ALL_SETTINGS) {
    const usage = `  ${flagUsage(setting)}`.padEnd(COLUMN);
    lines.push(`${usage}${variablesUsage(setting)} (default: ${setting.shown})`);
    for (const text of [setting.help, ...setting.more ?? []]) {
      lines.push(`${" ".repeat(COLUMN)}${text.replaceAll("`", "'")}`);
    }
  }
  for (const [flag, { short, help }] of Object.entries(COMMAND_SWITCHES)) {
    lines.push(`${`  -${short}, --${flag}`.padEnd(COLUMN)}${help}`);
  }
  return lines;
}

/**
 * The text of `purple --help`: every flag, its environment variables and its default, from the
 * settings table.
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
  purple export [flags]      write every entry of the backend as JSON Lines (stdout, or --output)
  purple import [FILE]       read such a file (stdin without FILE, or with '-') into the backend

Flags (a flag wins over its environment variable, shown in brackets; an empty variable is unset):
${helpLines().join("\n")}

Port 0 picks any free port; the start-up lines say which. Sizes are in bytes.
With a token set, every request but GET /ping and gRPC health needs 'Authorization: Bearer
TOKEN'; tokens are 16 or more visible ASCII characters. Flags replace their variable's tokens.
Without --host, Purple binds 127.0.0.1 only, with or without tokens.
'purple http' takes --port, then --http-port, PURPLE_PORT, PURPLE_HTTP_PORT, PORT.
'purple grpc' takes --port, then --grpc-port, PURPLE_PORT, PURPLE_GRPC_PORT.
SIGINT or SIGTERM stops Purple gracefully: requests in flight finish, then the backend closes.
With --workers N, N processes serve the same ports (Linux); the memory backend takes one.
'purple export' and 'purple import' take the backend's flags (as serving it); they print a
progress line on a terminal and a summary on stderr. See docs/export.md for the file format.
Exit codes: 0 after a graceful stop or a complete export or import; 1 when an export or import
stops (a bad line, a refused entry: the line and the reason in one line); 2 for bad flags, a
file that cannot be opened or a backend that cannot be opened.`;

/**
 * The table of the settings in docs/cli.md (Markdown rows, without the header), as
 * `tests/readme_test.ts` expects to find them.
 *
 * @returns One row per setting: flag, variables, default, what it does.
 */
export function settingsTableRows(): string[] {
  const code = (text: string) => `\`${text}\``;
  const rows = ALL_SETTINGS.map((setting) => {
    // A default that is the value itself is code; a description of it ("none") is not.
    const shown = String(setting.fallback) === setting.shown ? code(setting.shown) : setting.shown;
    return [code(flagUsage(setting)), setting.env.map(code).join(", "), shown, setting.help];
  });
  for (const [flag, { short, help }] of Object.entries(COMMAND_SWITCHES)) {
    rows.push([`${code(`-${short}`)}, ${code(`--${flag}`)}`, "", "", help]);
  }
  return rows.map((cells) => `| ${cells.join(" | ")} |`);
}
