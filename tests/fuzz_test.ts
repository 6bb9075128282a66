// Bad input: a seeded fuzzer throws malformed requests at both servers of the real `purple`
// process, over real sockets: raw HTTP/1.1 (random methods, paths, percent-encodings good and
// bad, query strings, headers, bodies, JSON, lengths that lie, broken chunked encodings) and
// raw HTTP/2 gRPC (random paths and headers, truncated, oversized, compressed and mangled
// messages, wrong wire types, huge varints, streams left open). It passes when the process
// never dies, never answers 5xx (HTTP) or UNKNOWN / INTERNAL / UNAVAILABLE / DATA_LOSS (gRPC)
// to garbage, answers every complete request, and after each batch its health checks and a
// read of known data still work.
//
// Reproduce a run with the seed it prints: PURPLE_FUZZ_SEED=<seed>. Bounds: PURPLE_FUZZ_CASES
// (default 3000, half per protocol) and PURPLE_FUZZ_SECONDS (default 25). PURPLE_FUZZ_BACKEND
// picks the backend (default memory).

import { grpcServices, messageCodecOf } from "@purple/protocol/wire";
import assert from "node:assert/strict";
import type http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { HttpClient } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import { startPurple } from "./_purple.ts";
import { grpcFrame, grpcTest, type RawGrpc, rawGrpc } from "./_hardening.ts";

/** The seed of CI runs, so that CI passes or fails the same way every time. */
const CI_SEED = 20261202;
/** PURPLE_FUZZ_SEED, else in CI a fixed seed, else a random one (printed: rerun it with that). */
const SEED = Number(
  Deno.env.get("PURPLE_FUZZ_SEED") ??
    (Deno.env.get("CI") === "true" ? CI_SEED : Math.floor(Math.random() * 2 ** 31)),
);
const CASES = Number(Deno.env.get("PURPLE_FUZZ_CASES") ?? "3000");
const SECONDS = Number(Deno.env.get("PURPLE_FUZZ_SECONDS") ?? "25");
const BACKEND = Deno.env.get("PURPLE_FUZZ_BACKEND") ?? "memory";
const BATCH = 100;
const PARALLEL = 8;
const MAX_VALUE_BYTES = 64 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// A small seeded generator: case i of seed s is the same everywhere.

type Random = {
  (): number;
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
  bytes(n: number): Uint8Array;
};

function random(seed: number, index: number): Random {
  let state = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  const next = (() => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }) as Random;
  next.int = (n) => Math.floor(next() * n);
  next.pick = (items) => items[next.int(items.length)];
  next.chance = (p) => next() < p;
  next.bytes = (n) => Uint8Array.from({ length: n }, () => next.int(256));
  return next;
}

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
};

/** Shows bytes for a failure report: printable ASCII as is, the rest escaped, cut to 300. */
function show(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes.subarray(0, 300)) {
    text += byte >= 0x20 && byte < 0x7f && byte !== 0x5c
      ? String.fromCharCode(byte)
      : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return bytes.length > 300 ? `${text}… (${bytes.length} bytes)` : text;
}

// ---------------------------------------------------------------------------------------------
// HTTP cases.

const PREFIXES = ["/cache/", "/counters/", "/flags/", "/kv/", "/sets/"];
const METHODS = [
  "GET",
  "PUT",
  "DELETE",
  "HEAD",
  "POST",
  "PATCH",
  "OPTIONS",
  "TRACE",
  "get",
  "PuT",
  "PURGE",
  "M-SEARCH",
  "X".repeat(40),
];
const KEY_PARTS = [
  "a",
  "key",
  "%41",
  "%zz",
  "%",
  "%4",
  "%%",
  "%C0%80",
  "%C0%AF",
  "%E0%80%80",
  "%ED%A0%80",
  "%F4%90%80%80",
  "%FF%FE",
  "%00",
  "%2F",
  "%25",
  "%2e%2e",
  ".",
  "..",
  "%20",
  "+",
  "caf%C3%A9",
  "%F0%9F%92%A9",
  "%u0041",
  "~!$&'()*,;=:@",
  "a/b",
  "//",
  "%0D%0A",
  "%3F",
  "%23",
];
const QUERY_NAMES = [
  "value",
  "ttl",
  "increment",
  "item",
  "x",
  "",
  "va%6Cue",
  "value[]",
  "%zz",
  "kv",
  "flags",
];
const QUERY_VALUES = [
  "1",
  "0",
  "-1",
  "+5",
  "-0",
  "1e3",
  "0x10",
  " 5",
  "5 ",
  "9223372036854775807",
  "9223372036854775808",
  "-9223372036854775809",
  "99999999999999999999999999",
  "2147483648",
  "true",
  "True",
  "yes",
  "",
  "%zz",
  "%C0%80",
  "%00",
  "%ED%A0%80",
  "a+b",
  "%2B",
  "NaN",
  "Infinity",
  "1.5",
  "x".repeat(70_000),
];
const CONTENT_TYPES = [
  "application/json",
  "application/octet-stream",
  "text/plain",
  "text/plain; charset=utf-8",
  "APPLICATION/OCTET-STREAM",
  "application/octet-stream; x=1",
  "multipart/form-data; boundary=x",
  "application/x-www-form-urlencoded",
  "",
  "\u00ff\u00fe",
];
const JSON_BODIES = [
  '{"content": "hello"}',
  '{"content": ""}',
  '{"content": 5}',
  '{"content": null}',
  '{"content": ["a"]}',
  '{"content": {"a": 1}}',
  '{"content": "\\ud800"}',
  '{"content": "\\u0000"}',
  '{"content": "a", "content": "b"}',
  '{"contents": "a"}',
  "[]",
  "null",
  '"content"',
  "{",
  '{"content": "unterminated',
  '\ufeff{"content": "bom"}',
  '{"content": "' + "\\u0041".repeat(20_000) + '"}',
  '{"operations": [{"op": "counterIncrement", "key": "k", "amount": "1"}]}',
  '{"operations": [{"op": "kvPut", "key": "k", "value": {"base64": "!!"}}], "atomic": true}',
  '{"operations": [{"op": "kvList"}], "atomic": "yes"}',
  '{"operations": [{"op": "setAdd", "set": "", "item": "\ud800"}]}',
  '{"operations": "all"}',
  JSON.stringify({ operations: Array(1001).fill({ op: "flagGet", key: "f" }) }),
  "[".repeat(100_000),
  '{"a":'.repeat(50_000),
  "1".repeat(400_000),
];

interface HttpCase {
  index: number;
  bytes: Uint8Array;
  /** The request is whole: the server must answer it (or close the connection). */
  complete: boolean;
}

function httpCase(seed: number, index: number): HttpCase {
  const r = random(seed, index);
  let complete = true;
  const method = r.chance(0.85) ? r.pick(["GET", "PUT", "DELETE", "POST"]) : r.pick(METHODS);
  let path = r.chance(0.9) ? r.pick(PREFIXES) : r.pick([
    "/ping",
    "/",
    "/nowhere",
    "/kv",
    "/ping/x",
    "/batch",
    "/sets",
    "/batch/x",
    "/watch",
    "/watch/x",
  ]);
  const parts = r.int(4);
  for (let i = 0; i < parts; i++) path += r.pick(KEY_PARTS);
  if (r.chance(0.05)) path += "k".repeat(r.pick([511, 512, 513, 2000, 9000]));
  if (r.chance(0.03)) path = "*";
  if (r.chance(0.03)) path = `http://127.0.0.1${path}`;
  let query = "";
  const params = r.int(4);
  for (let i = 0; i < params; i++) {
    query += `${i > 0 ? r.pick(["&", ";", "&&"]) : ""}${r.pick(QUERY_NAMES)}${
      r.chance(0.9) ? "=" : ""
    }${r.pick(QUERY_VALUES)}`;
  }
  const target = query === "" && r.chance(0.8) ? path : `${path}?${query}`;
  const version = r.chance(0.95)
    ? "HTTP/1.1"
    : r.pick(["HTTP/1.0", "HTTP/2.0", "HTTP/9", "HTP/1.1"]);
  const headers: string[] = ["Host: 127.0.0.1", "Connection: close"];
  if (r.chance(0.5)) headers.push(`Content-Type: ${r.pick(CONTENT_TYPES)}`);
  if (r.chance(0.2)) {
    headers.push(
      `Accept: ${r.pick(["application/octet-stream", "*/*", "application/octet-stream;q=0", "x"])}`,
    );
  }
  if (r.chance(0.05)) headers.push(`X-Big: ${"h".repeat(r.pick([1000, 20_000]))}`);
  if (r.chance(0.03)) headers.push("Bad Header: x", "x\u0001y: z");
  let body: Uint8Array = new Uint8Array();
  if (method !== "GET" || r.chance(0.1)) {
    const kind = r.int(5);
    if (kind === 0) body = r.bytes(r.int(200));
    else if (kind === 1) body = encoder.encode(r.pick(JSON_BODIES));
    else if (kind === 2) body = new Uint8Array(MAX_VALUE_BYTES + r.pick([0, 1, 100]));
    else if (kind === 3) {
      body = concat(encoder.encode('{"content": "'), r.bytes(50), encoder.encode('"}'));
    }
  }
  const framing = r.int(10);
  if (framing < 6) {
    headers.push(`Content-Length: ${body.length}`);
  } else if (framing === 6) {
    // A length that lies: more than is sent (the client then goes away), or less.
    const declared = r.chance(0.5) ? body.length + 1 + r.int(1000) : Math.max(0, body.length - 1);
    headers.push(`Content-Length: ${declared}`);
    if (declared > body.length) complete = false;
  } else if (framing === 7) {
    headers.push(
      `Content-Length: ${r.pick(["-1", "abc", "1e3", "99999999999999999999", " 5", "5, 6"])}`,
    );
  } else if (framing === 8) {
    headers.push("Transfer-Encoding: chunked");
    const chunked = r.chance(0.5)
      ? concat(
        encoder.encode(`${body.length.toString(16)}\r\n`),
        body,
        encoder.encode("\r\n0\r\n\r\n"),
      )
      : concat(
        encoder.encode(
          r.pick([
            "zz\r\n",
            "ffffffffffffffff\r\n",
            "5\r\nab",
            "-1\r\n",
            "3;x\r\nabc\r\n0\r\n\r\n",
          ]),
        ),
        body,
      );
    body = chunked;
    if (r.chance(0.3)) headers.push(`Content-Length: ${body.length}`);
  } else {
    headers.push("Transfer-Encoding: gzip, chunked");
  }
  const head = encoder.encode(`${method} ${target} ${version}\r\n${headers.join("\r\n")}\r\n\r\n`);
  return { index, bytes: concat(head, body), complete };
}

/** What a raw HTTP exchange gave: a status, the server closing, or nothing in time. */
type HttpResult = { status: number; head: string } | { closed: true } | { silent: true };

async function sendHttp(port: number, bytes: Uint8Array, waitMs: number): Promise<HttpResult> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn.close();
    } catch { /* closed already */ }
  }, waitMs);
  let text = "";
  try {
    // Written while reading: a server that stops reading a bad body may answer before the
    // rest of it fits in the socket buffers.
    (async () => {
      for (let at = 0; at < bytes.length; at += 16 * 1024) {
        await conn.write(bytes.subarray(at, at + 16 * 1024));
      }
    })().catch(() => {});
    const buffer = new Uint8Array(16 * 1024);
    while (!text.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n));
    }
  } catch {
    // Reset by the server, or closed by the timer.
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed already */ }
  }
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  if (match) return { status: Number(match[1]), head: text.split("\r\n\r\n")[0] };
  return timedOut && text === "" ? { silent: true } : { closed: true };
}

// ---------------------------------------------------------------------------------------------
// gRPC cases.

/** Every method Purple serves, from the operation table. */
const METHOD_PATHS = Object.values(grpcServices()).flatMap((methods) =>
  Object.values(methods).map((method) => method.path)
);
/** The methods that answer a stream (a watch): a valid request stays open, headers sent. */
const STREAMING_PATHS = new Set(
  Object.values(grpcServices()).flatMap((methods) =>
    Object.values(methods).filter((method) => method.responseStream).map((method) => method.path)
  ),
);
const ODD_PATHS = [
  "/proto.KV/Nope",
  "/proto.KV",
  "/",
  "/grpc.health.v1.Health/Check",
  "/grpc.health.v1.Health/Nope",
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "//proto.KV/KVGet",
  "/proto.kv/kvget",
  "/%70roto.KV/KVGet",
];

/** A valid request message of the method at `path`, with random contents. */
function validMessage(r: Random, path: string): Uint8Array {
  const key = r.pick(["a", "known", "", "\u0000", "k".repeat(600), "caf\u00e9", "\ud83d\udca9"]);
  const text = r.pick(["v", "", "x".repeat(2000)]);
  const method = path.split("/").pop()!;
  switch (method) {
    case "CacheSet":
      return messageCodecOf("CacheSetRequest").encode({
        key,
        item: { value: text, ttl: r.pick([0, 5, -1, 2 ** 31 - 1]) },
      });
    case "CounterIncrement":
    case "IncrementCounter":
      return messageCodecOf("IncrementCounterRequest").encode({
        key,
        amount: r.pick([1n, -1n, 0n, 2n ** 63n - 1n, -(2n ** 63n)]),
      });
    case "FlagSet":
      return messageCodecOf("FlagSetRequest").encode({ key, value: r.chance(0.5) });
    case "KVPut":
      return messageCodecOf("PutRequest").encode({
        location: { key },
        value: {
          content: r.chance(0.1) ? new Uint8Array(MAX_VALUE_BYTES + 1) : r.bytes(r.int(100)),
        },
      });
    case "SetAdd":
    case "SetRemove":
      return messageCodecOf("ModifySetRequest").encode({ set: key, item: text });
    case "CacheList":
    case "CounterList":
    case "FlagList":
    case "KVList":
    case "SetList":
      return messageCodecOf("ListRequest").encode({
        prefix: r.pick(["", key]),
        limit: r.pick([0, 1, 1000, 1001, -1, 2 ** 31 - 1]),
        cursor: r.pick(["", "nonsense", "eyJiIjoibWVtb3J5IiwiayI6ImEifQ"]),
      });
    case "Watch":
      return messageCodecOf("WatchRequest").encode({
        kv: [key],
        flags: r.chance(0.2) ? Array.from({ length: 101 }, (_, i) => `f${i}`) : [],
        sets: r.chance(0.2) ? [key, key] : [],
      });
    case "Batch":
      return messageCodecOf("BatchRequest").encode({
        atomic: r.chance(0.5),
        operations: Array.from({ length: r.pick([0, 1, 3, 1001]) }, () =>
          r.pick([
            { operation: { case: "counterIncrement", value: { key, amount: 1n } } },
            { operation: { case: "kvGetEntry", value: { key } } },
            { operation: { case: "kvPut", value: { location: { key }, ifMatch: "v" } } },
            { operation: { case: "setDelete", value: { set: key } } },
            {},
          ])),
      } as never);
    default:
      return messageCodecOf("Location").encode({ key });
  }
}

/** Protobuf bytes that break the rules: wrong wire types, huge varints, lengths that lie. */
function badProtobuf(r: Random): Uint8Array {
  const parts: number[] = [];
  const fields = 1 + r.int(4);
  for (let i = 0; i < fields; i++) {
    const field = r.pick([1, 2, 3, 15, 16, 536870911, 0]);
    const wire = r.pick([0, 1, 2, 3, 4, 5, 6, 7]);
    let tag = field * 8 + wire;
    do {
      parts.push((tag & 0x7f) | (tag > 0x7f ? 0x80 : 0));
      tag = Math.floor(tag / 128);
    } while (tag > 0);
    const shape = r.int(6);
    if (shape === 0) parts.push(...Array(11).fill(0xff)); // a varint longer than 10 bytes
    else if (shape === 1) parts.push(0xff, 0xff, 0xff, 0xff, 0x0f); // length 4 GiB
    else if (shape === 2) parts.push(r.int(128), ...r.bytes(r.int(20)));
    else if (shape === 3) parts.push(0x05, 0xc3, 0x28, 0xa0, 0xa1, 0xed); // invalid UTF-8
    else if (shape === 4) parts.push(0x03, 0xed, 0xa0, 0x80); // UTF-8 of a lone surrogate
    else parts.push(...r.bytes(r.int(8)));
  }
  return Uint8Array.from(parts);
}

function mutate(r: Random, bytes: Uint8Array): Uint8Array {
  const out = Uint8Array.from(bytes);
  const kind = r.int(4);
  if (kind === 0 && out.length > 0) out[r.int(out.length)] ^= 1 << r.int(8);
  if (kind === 1) return out.subarray(0, r.int(out.length + 1));
  if (kind === 2) return concat(out, r.bytes(1 + r.int(10)));
  if (kind === 3 && out.length > 0) out[r.int(out.length)] = r.int(256);
  return out;
}

interface GrpcCase {
  index: number;
  headers: http2.OutgoingHttpHeaders;
  chunks: Uint8Array[];
  end: boolean;
  description: string;
}

function grpcCase(seed: number, index: number): GrpcCase {
  const r = random(seed, 1_000_000 + index);
  const path = r.chance(0.9) ? r.pick(METHOD_PATHS) : r.pick(ODD_PATHS);
  const headers: http2.OutgoingHttpHeaders = {
    ":method": r.chance(0.95) ? "POST" : r.pick(["GET", "PUT"]),
    ":path": path,
  };
  if (r.chance(0.9)) {
    headers["content-type"] = r.chance(0.85) ? "application/grpc" : r.pick([
      "application/grpc+proto",
      "application/grpc+json",
      "application/json",
      "text/plain",
      "application/grpcx",
    ]);
  }
  if (r.chance(0.85)) headers["te"] = "trailers"; // node:http2 sends no other value
  const encoding = r.chance(0.8)
    ? undefined
    : r.pick(["identity", "gzip", "deflate", "snappy", "x"]);
  if (encoding !== undefined) headers["grpc-encoding"] = encoding;
  if (r.chance(0.15)) {
    headers["grpc-timeout"] = r.pick([
      "1S",
      "100m",
      "abc",
      "-1S",
      "99999999H",
      "1",
      "1Z",
      "",
      "0n",
    ]);
  }
  if (r.chance(0.1)) headers["x-meta-bin"] = r.pick(["!!!", "AAAA", "=", "a".repeat(5000)]);
  if (r.chance(0.05)) headers["authorization"] = r.pick(["Bearer x", "Basic", "\u00ff"]);
  const messages = r.chance(0.1) ? r.int(4) : 1;
  const chunks: Uint8Array[] = [];
  const parts: string[] = [];
  for (let m = 0; m < messages; m++) {
    const shape = r.int(10);
    let message: Uint8Array;
    if (shape < 4) message = validMessage(r, path);
    else if (shape < 6) message = mutate(r, validMessage(r, path));
    else if (shape < 8) message = badProtobuf(r);
    else message = r.bytes(r.int(64));
    let compressed = r.chance(0.1);
    if (compressed && (encoding === "gzip" || r.chance(0.5))) {
      message = r.chance(0.7) ? gzipSync(message) : r.bytes(20);
      if (!encoding) compressed = r.chance(0.5);
    }
    const lie = r.int(10);
    const length = lie === 0
      ? message.length + 1 + r.int(100)
      : lie === 1
      ? r.pick([0xffffffff, 0x7fffffff, MAX_VALUE_BYTES * 4])
      : undefined;
    let frame = grpcFrame(message, compressed, length);
    if (r.chance(0.05)) frame = frame.subarray(0, r.int(5)); // a cut-off prefix
    chunks.push(frame);
    parts.push(`${compressed ? "compressed " : ""}${show(frame)}`);
  }
  const end = r.chance(0.95);
  return {
    index,
    headers,
    chunks,
    end,
    description: `${JSON.stringify(headers)} ${end ? "" : "(left open) "}${parts.join(" | ")}`,
  };
}

/** gRPC status codes that blame the server: UNKNOWN, INTERNAL, UNAVAILABLE, DATA_LOSS. */
const SERVER_FAULTS = new Set([2, 13, 14, 15]);

// ---------------------------------------------------------------------------------------------
// The run.

grpcTest(
  `fuzz: malformed HTTP and gRPC requests never crash purple nor get a 5xx (seed ${SEED})`,
  async () => {
    console.log(`fuzz seed ${SEED} (reproduce with PURPLE_FUZZ_SEED=${SEED}), backend ${BACKEND}`);
    const dataDir = BACKEND === "disk"
      ? await Deno.makeTempDir({ prefix: "purple_fuzz_" })
      : undefined;
    const purple = await startPurple([
      "--backend",
      BACKEND,
      ...(dataDir ? ["--data-dir", dataDir] : []),
      "--http-port",
      "0",
      "--grpc-port",
      "0",
      "--max-value-bytes",
      String(MAX_VALUE_BYTES),
      "--body-timeout-ms",
      "1000",
    ]);
    let alive = true;
    purple.child.status.then(() => alive = false);
    const port = purple.httpPort!;
    const address = `127.0.0.1:${purple.grpcPort}`;
    const http = new HttpClient(`http://127.0.0.1:${port}`);
    const grpc = new GrpcClient(address);
    await http.kvPut("sentinel", "known value");
    await grpc.setAdd("sentinel", "member");
    const failures: string[] = [];
    const counts = {
      http: 0,
      grpc: 0,
      httpStatuses: new Map<string, number>(),
      grpcStatuses: new Map<string, number>(),
    };
    const tally = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
    const deadline = Date.now() + SECONDS * 1000;
    let raw: RawGrpc = rawGrpc(address);

    const runHttp = async (index: number) => {
      const test = httpCase(SEED, index);
      const result = await sendHttp(port, test.bytes, test.complete ? 5000 : 300);
      counts.http++;
      if ("status" in result) {
        tally(counts.httpStatuses, String(result.status));
        if (result.status >= 500) {
          failures.push(
            `HTTP case ${index}: ${result.status} for ${show(test.bytes)}\n  ${
              result.head.split("\r\n").join("\n  ")
            }`,
          );
        }
      } else if ("silent" in result) {
        tally(counts.httpStatuses, test.complete ? "no answer" : "left open");
        if (test.complete) {
          failures.push(
            `HTTP case ${index}: no answer in 5 s to ${show(test.bytes)}`,
          );
        }
      } else tally(counts.httpStatuses, "closed");
    };
    const runGrpc = async (index: number) => {
      const test = grpcCase(SEED, index);
      const streaming = STREAMING_PATHS.has(String(test.headers[":path"]));
      const answer = await raw.call(test.headers, test.chunks, {
        end: test.end,
        waitMs: test.end && !streaming ? 5000 : 300,
      });
      counts.grpc++;
      const label = answer.grpcStatus !== undefined
        ? `grpc-status ${answer.grpcStatus}`
        : answer.httpStatus
        ? `HTTP ${answer.httpStatus}`
        : test.end
        ? `reset: ${answer.error}`
        : "left open";
      tally(counts.grpcStatuses, label.replace(/ \d+ ms/, ""));
      if (Deno.env.get("FUZZ_DEBUG") && (label.startsWith("reset") || label.startsWith("HTTP"))) {
        console.log(label, answer.error, test.description.slice(0, 300));
      }
      if (
        answer.httpStatus >= 500 ||
        (answer.grpcStatus !== undefined && SERVER_FAULTS.has(answer.grpcStatus))
      ) {
        failures.push(
          `gRPC case ${index}: ${label} "${answer.grpcMessage}" for ${test.description}`,
        );
      }
      if (
        test.end && answer.httpStatus === 0 && /no answer/.test(answer.error ?? "") && !streaming
      ) {
        failures.push(`gRPC case ${index}: no answer in 5 s to ${test.description}`);
      }
      if (answer.error !== undefined && /session|GOAWAY|ERR_HTTP2/.test(answer.error)) {
        raw.close();
        raw = rawGrpc(address);
      }
    };
    const healthy = async (after: string) => {
      assert.ok(alive, `purple died ${after}`);
      assert.equal((await fetch(`http://127.0.0.1:${port}/ping`)).status, 200, `/ping ${after}`);
      assert.equal(
        decoder.decode(await http.kvGet("sentinel")),
        "known value",
        `HTTP read ${after}`,
      );
      assert.deepEqual(await grpc.setGet("sentinel"), ["member"], `gRPC read ${after}`);
      const probe = rawGrpc(address);
      try {
        const health = await probe.call({
          ":method": "POST",
          ":path": "/grpc.health.v1.Health/Check",
          "content-type": "application/grpc",
          "te": "trailers",
        }, [grpcFrame(new Uint8Array())]);
        assert.equal(health.grpcStatus, 0, `gRPC health ${after}`);
      } finally {
        probe.close();
      }
    };

    const start = performance.now();
    let sent = 0;
    try {
      const perProtocol = Math.ceil(CASES / 2);
      for (let batch = 0; batch * BATCH < perProtocol && Date.now() < deadline; batch++) {
        const first = batch * BATCH;
        const last = Math.min(first + BATCH, perProtocol);
        // PARALLEL workers per protocol, each taking the next case as soon as it is free.
        let nextHttp = first;
        let nextGrpc = first;
        await Promise.all(
          Array.from({ length: PARALLEL }, async () => {
            while (nextHttp < last) await runHttp(nextHttp++);
            while (nextGrpc < last) await runGrpc(nextGrpc++);
          }).concat(Array.from({ length: PARALLEL }, async () => {
            while (nextGrpc < last) await runGrpc(nextGrpc++);
            while (nextHttp < last) await runHttp(nextHttp++);
          })),
        );
        sent = last * 2;
        await healthy(`after batch ${batch + 1} (cases ${first}..${last - 1} of each protocol)`);
      }
    } catch (error) {
      failures.unshift(`stopped by: ${error}`);
    } finally {
      raw.close();
      await http.close();
      await grpc.close();
      const seconds = ((performance.now() - start) / 1000).toFixed(1);
      console.log(
        `fuzz: ${counts.http} HTTP and ${counts.grpc} gRPC cases in ${seconds} s, seed ${SEED}\n` +
          `  HTTP answers: ${JSON.stringify(Object.fromEntries(counts.httpStatuses))}\n` +
          `  gRPC answers: ${JSON.stringify(Object.fromEntries(counts.grpcStatuses))}`,
      );
      const internal = purple.lines.filter((line) => /internal error/i.test(line));
      const { code } = await purple.stop();
      if (dataDir) await Deno.remove(dataDir, { recursive: true });
      assert.deepEqual(failures.slice(0, 20), [], `${failures.length} failures (seed ${SEED})`);
      assert.deepEqual(internal.slice(0, 5), [], "purple logged no internal error");
      assert.equal(code, 0, "purple stops gracefully after the fuzz");
      assert.ok(sent >= Math.min(CASES, 1000), `sent ${sent} cases within ${SECONDS} s`);
    }
  },
);
