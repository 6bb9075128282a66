/**
 * The Docker image's health check: asks the `purple` of the container whether it serves, on
 * whatever ports, protocol and address its command line and environment gave it (PID 1's, read
 * from `/proc`, resolved by the same `parseCli()` as Purple's). With HTTP: `GET /ping` over
 * plain HTTP, or over TLS with `--tls-cert` (the certificate is not checked: the check asks this
 * very process, by its loopback address), answered 200. gRPC alone (`purple grpc`): a connection
 * to its port is accepted. Exit 0 when healthy, 1 (with one line saying why) when not.
 *
 * ```sh
 * deno run -A bin/healthcheck.ts        # PID 1
 * deno run -A bin/healthcheck.ts 4242   # another process
 * ```
 *
 * (`-A`: Deno reads another process's `/proc/PID/cmdline` and `environ` with every permission
 * only.)
 *
 * @module
 */

import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { parseCli } from "../server/config.ts";

/** How long the whole check may take, in ms (the HEALTHCHECK's own timeout is 3 s). */
const TIMEOUT_MS = 2_500;

/** What a process was started with: its arguments after `mod.ts`, and its environment. */
async function commandOf(pid: string): Promise<{ args: string[]; env: Record<string, string> }> {
  const split = (text: string) => text.split("\0").filter((part) => part !== "");
  const argv = split(await Deno.readTextFile(`/proc/${pid}/cmdline`));
  const main = argv.findIndex((arg) => /(^|\/)mod\.ts$/.test(arg));
  if (main < 0) throw new Error(`process ${pid} is not purple: ${argv.join(" ")}`);
  const env: Record<string, string> = {};
  for (const entry of split(await Deno.readTextFile(`/proc/${pid}/environ`))) {
    const equals = entry.indexOf("=");
    if (equals > 0) env[entry.slice(0, equals)] = entry.slice(equals + 1);
  }
  return { args: argv.slice(main + 1), env };
}

/** The address to ask for a server bound to `hostname`: loopback for every-interface binds. */
function loopbackFor(hostname: string): string {
  if (hostname === "0.0.0.0" || hostname === "") return "127.0.0.1";
  if (hostname === "::" || hostname === "[::]") return "::1";
  return hostname.replace(/^\[(.*)\]$/, "$1");
}

/** Opens a connection (TLS without checking the certificate, or plain TCP). */
function open(host: string, port: number, tls: boolean): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket: Socket = tls
      ? connectTls(
        { host, port, rejectUnauthorized: false, servername: undefined },
        () => resolve(socket),
      )
      : connectTcp({ host, port }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** `GET /ping` over HTTP/1.1: resolves with the status line. */
async function ping(host: string, port: number, tls: boolean): Promise<string> {
  const socket = await open(host, port, tls);
  return await new Promise((resolve, reject) => {
    let text = "";
    socket.on("data", (chunk: Uint8Array) => {
      text += new TextDecoder().decode(chunk);
      const end = text.indexOf("\r\n");
      if (end >= 0) {
        socket.destroy();
        resolve(text.slice(0, end));
      }
    });
    socket.once("error", reject);
    socket.once("close", () => reject(new Error("the connection closed without an answer")));
    socket.write(`GET /ping HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

/**
 * Checks the purple process `pid`.
 *
 * @param pid The process, `1` in a container.
 * @returns Why it is unhealthy, or `undefined` when it serves.
 */
export async function check(pid: string): Promise<string | undefined> {
  const { args, env } = await commandOf(pid);
  const command = parseCli(args, env);
  if (command.action !== "serve") return `purple ${args.join(" ")} does not serve`;
  const { config } = command;
  const host = loopbackFor(config.hostname);
  if (config.http !== undefined) {
    const status = await ping(host, config.http, config.tls !== undefined);
    return /^HTTP\/1\.1 200 /.test(status) ? undefined : `GET /ping answered ${status}`;
  }
  const socket = await open(host, config.grpc!, config.tls !== undefined);
  socket.destroy();
  return undefined;
}

if (import.meta.main) {
  const pid = Deno.args[0] ?? "1";
  const timer = setTimeout(() => {
    console.error(`unhealthy: no answer within ${TIMEOUT_MS} ms`);
    Deno.exit(1);
  }, TIMEOUT_MS);
  try {
    const problem = await check(pid);
    if (problem !== undefined) {
      console.error(`unhealthy: ${problem}`);
      Deno.exit(1);
    }
  } catch (error) {
    console.error(`unhealthy: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
  clearTimeout(timer);
}
