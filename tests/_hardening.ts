/**
 * Test harness of the hardening tests (limits, faults, fuzz, soak): one backend of each kind,
 * served over HTTP and gRPC at once on free loopback ports, and raw gRPC calls through
 * `node:http2` for what no well-behaved client sends.
 *
 * @module
 */

import http2 from "node:http2";
import { Buffer } from "node:buffer";
import { HttpClient, type Operations } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import { DEFAULT_LIMITS, type Limits, openBackend } from "../backends/mod.ts";
import { startHttpServer } from "../server/http.ts";
import { startGrpcServer } from "../server/grpc.ts";
import type { RunningServer } from "../server/options.ts";
import { REDIS_MISSING, type RedisServer, startRedis } from "./_redis.ts";

/** The backends, each opened by {@linkcode openKind}. */
export const KINDS = ["memory", "disk", "redis"] as const;

/** A backend kind. */
export type Kind = typeof KINDS[number];

/** An open backend and how to drop it (its data directory or its redis-server too). */
export interface Opened {
  ops: Operations;
  /** The disk backend's directory, or the redis-server, for a second handle on the same data. */
  dataDir?: string;
  redis?: RedisServer;
  close(): Promise<void>;
}

/**
 * Opens a fresh backend of `kind` with `limits`: memory; disk in a new temporary directory;
 * redis on a redis-server of its own.
 */
export async function openKind(kind: Kind, limits: Partial<Limits> = {}): Promise<Opened> {
  if (kind === "memory") {
    const ops = await openBackend({ kind, limits });
    return { ops, close: () => ops.close() };
  }
  if (kind === "disk") {
    const dataDir = await Deno.makeTempDir({ prefix: "purple_hardening_" });
    const ops = await openBackend({ kind, dataDir, limits });
    return {
      ops,
      dataDir,
      close: async () => {
        await ops.close();
        await Deno.remove(dataDir, { recursive: true });
      },
    };
  }
  const redis = await startRedis();
  const ops = await openBackend({ kind, redisUrl: redis.url, limits });
  return {
    ops,
    redis,
    close: async () => {
      await ops.close();
      await redis.stop();
    },
  };
}

/** Whether a kind can run here (redis needs redis-server; `_redis.ts` says so loudly). */
export function runs(kind: Kind): boolean {
  return kind !== "redis" || REDIS_MISSING === undefined;
}

/** Both servers over one backend, and a client of each. */
export interface Served {
  http: RunningServer;
  grpc: RunningServer;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** `127.0.0.1:<port>`. */
  address: string;
  httpClient: HttpClient;
  grpcClient: GrpcClient;
  /** Log lines of both servers. */
  lines: string[];
  close(): Promise<void>;
}

/** Serves `ops` over HTTP and gRPC on free loopback ports, with `limits` (defaults filled in). */
export async function serveBoth(ops: Operations, limits: Partial<Limits> = {}): Promise<Served> {
  const lines: string[] = [];
  const options = {
    hostname: "127.0.0.1",
    port: 0,
    limits: { ...DEFAULT_LIMITS, ...limits },
    log: (line: string) => lines.push(line),
  };
  const http = await startHttpServer(ops, options);
  const grpc = await startGrpcServer(ops, options);
  const url = `http://127.0.0.1:${http.port}`;
  const address = `127.0.0.1:${grpc.port}`;
  const httpClient = new HttpClient(url, { timeoutMs: 30_000 });
  const grpcClient = new GrpcClient(address, { timeoutMs: 30_000 });
  return {
    http,
    grpc,
    url,
    address,
    httpClient,
    grpcClient,
    lines,
    close: async () => {
      await httpClient.close();
      await grpcClient.close();
      await Promise.all([http.shutdown(), grpc.shutdown()]);
    },
  };
}

/**
 * A grpc-js (or `node:http2`) test: grpc-js keeps timers and sockets of its own past a test,
 * so the op and resource sanitizers are off; every test still closes what it opened.
 */
export function grpcTest(name: string, fn: () => Promise<void>, ignore = false): void {
  Deno.test({ name, ignore, sanitizeOps: false, sanitizeResources: false, fn });
}

/** Frames one gRPC message: compressed flag, 4-byte big-endian length, the bytes. */
export function grpcFrame(message: Uint8Array, compressed = false, length?: number): Uint8Array {
  const frame = new Uint8Array(5 + message.length);
  frame[0] = compressed ? 1 : 0;
  new DataView(frame.buffer).setUint32(1, length ?? message.length);
  frame.set(message, 5);
  return frame;
}

/** What a raw gRPC call got: the HTTP status, the gRPC status (if any) and its message. */
export interface RawAnswer {
  httpStatus: number;
  grpcStatus?: number;
  grpcMessage?: string;
  /** The response body bytes (framed messages). */
  body: Uint8Array;
  /** The stream was reset or the session failed, with this error. */
  error?: string;
}

/** A raw HTTP/2 connection to a gRPC server. */
export interface RawGrpc {
  /**
   * Sends one request: `headers` (pseudo-headers included) and then `chunks` of body; `end`
   * false leaves the stream open (a client that never finishes). Resolves with what came back
   * within `waitMs`.
   */
  call(
    headers: http2.OutgoingHttpHeaders,
    chunks: Uint8Array[],
    options?: { end?: boolean; waitMs?: number },
  ): Promise<RawAnswer>;
  close(): void;
}

/** Connects to a gRPC server with `node:http2`, without grpc-js. */
export function rawGrpc(address: string): RawGrpc {
  const session = http2.connect(`http://${address}`);
  let sessionError: string | undefined;
  session.on("error", (error) => sessionError = String(error));
  return {
    call: (headers, chunks, options = {}) =>
      new Promise((resolve) => {
        const answer: RawAnswer = { httpStatus: 0, body: new Uint8Array() };
        const parts: Uint8Array[] = [];
        let settled = false;
        const finish = (error?: string) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          answer.body = Buffer.concat(parts);
          if (error !== undefined) answer.error = error;
          resolve(answer);
        };
        const timer = setTimeout(() => {
          finish(`no answer within ${options.waitMs ?? 5000} ms`);
          stream.close(http2.constants.NGHTTP2_CANCEL);
        }, options.waitMs ?? 5000);
        let stream: http2.ClientHttp2Stream;
        try {
          stream = session.request(headers, { endStream: false });
        } catch (error) {
          finish(`request failed: ${error}`);
          return;
        }
        const read = (fields: http2.IncomingHttpHeaders) => {
          if (fields[":status"] !== undefined) answer.httpStatus = Number(fields[":status"]);
          if (fields["grpc-status"] !== undefined) {
            answer.grpcStatus = Number(fields["grpc-status"]);
            answer.grpcMessage = decodeURIComponent(String(fields["grpc-message"] ?? ""));
          }
        };
        stream.on("response", read);
        stream.on("trailers", read);
        stream.on("data", (chunk: Uint8Array) => parts.push(chunk));
        stream.on("end", () => setTimeout(() => finish(), 50)); // trailers may follow "end"
        stream.on("close", () => finish(sessionError));
        stream.on("error", (error) => finish(String(error)));
        for (const chunk of chunks) stream.write(chunk);
        if (options.end ?? true) stream.end();
      }),
    close: () => session.destroy(),
  };
}

/** Sleeps `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** How many file descriptors a process holds (Linux: `/proc/<pid>/fd`). */
export async function openFds(pid: number): Promise<number> {
  let count = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) count++;
  return count;
}

/** A process's resident memory in KiB (Linux: `VmRSS` of `/proc/<pid>/status`). */
export async function rssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]);
}

/** Waits until `read()` gives at most `target`, polling; returns the last value read. */
export async function settlesTo(
  read: () => Promise<number>,
  target: number,
  ms = 3000,
): Promise<number> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (value > target && Date.now() < deadline) {
    await sleep(50);
    value = await read();
  }
  return value;
}
