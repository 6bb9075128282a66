// Clients that misbehave, against the real `purple` process: one that disconnects in the middle
// of a request (HTTP: the connection closes while a large PUT streams in; gRPC: the call is
// cancelled or its stream reset) and one that never finishes its body (cut off after
// --body-timeout-ms). The server must stay healthy and hold nothing: its request slots
// (--max-concurrent-requests) come back, its open files go back to where they were, it logs no
// internal error, and it still serves its data.

import assert from "node:assert/strict";
import http2 from "node:http2";
import { UnavailableError } from "@purple/client/errors";
import { GrpcClient } from "@purple/client/grpc";
import { HttpClient } from "@purple/client";
import { startPurple } from "./_purple.ts";
import { grpcFrame, grpcTest, openFds, rawGrpc, rssKiB, settlesTo, sleep } from "./_hardening.ts";
import { messageCodecOf } from "@purple/protocol/wire";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const GRPC_HEADERS = (path: string): http2.OutgoingHttpHeaders => ({
  ":method": "POST",
  ":path": path,
  "content-type": "application/grpc",
  "te": "trailers",
});

/** Opens a TCP connection to `port`, sends `head` and `body`, and leaves it open. */
async function sendPartial(port: number, head: string, body: Uint8Array): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encoder.encode(head));
  await conn.write(body);
  return conn;
}

/** Reads what the server sends on `conn` until it closes or `ms` pass. */
async function readAnswer(conn: Deno.TcpConn, ms: number): Promise<string> {
  const buffer = new Uint8Array(4096);
  let text = "";
  const timer = setTimeout(() => conn.close(), ms);
  try {
    while (!text.includes("\r\n\r\n") || !/\}\s*$/.test(text)) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n));
    }
  } catch {
    // Closed by the timer.
  } finally {
    clearTimeout(timer);
  }
  return text;
}

/** A running purple with a token of data to read back, and its baseline of open files. */
async function purpleWithData(args: string[]) {
  const purple = await startPurple([
    "--backend",
    "memory",
    "--http-port",
    "0",
    "--grpc-port",
    "0",
    ...args,
  ]);
  const pid = purple.child.pid;
  const url = `http://127.0.0.1:${purple.httpPort}`;
  const address = `127.0.0.1:${purple.grpcPort}`;
  const http = new HttpClient(url);
  const grpc = new GrpcClient(address);
  await http.kvPut("known", "still here");
  await grpc.counterIncrement("known", 42);
  const healthy = async () => {
    assert.equal((await fetch(`${url}/ping`)).status, 200);
    assert.equal(decoder.decode(await http.kvGet("known")), "still here");
    assert.equal(await grpc.counterGet("known"), 42n);
  };
  await healthy();
  return { purple, pid, url, address, http, grpc, healthy };
}

function internalErrors(lines: string[]): string[] {
  return lines.filter((line) => /internal error/i.test(line));
}

grpcTest(
  "HTTP: clients that disconnect in the middle of a large PUT leave nothing behind",
  async () => {
    const { purple, pid, url, http, grpc, healthy } = await purpleWithData([
      "--max-concurrent-requests",
      "8",
    ]);
    try {
      const baseline = await openFds(pid);
      const rssBefore = await rssKiB(pid);
      const chunk = new Uint8Array(64 * 1024).fill(120);
      // 40 raw connections: a 1 MiB Content-Length, 64 KiB sent, then the connection closes.
      for (let round = 0; round < 4; round++) {
        const conns = await Promise.all(Array.from({ length: 10 }, () =>
          sendPartial(
            purple.httpPort!,
            "PUT /kv/dropped HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n" +
              "Content-Length: 1048576\r\n\r\n",
            chunk,
          )));
        await sleep(30);
        for (const conn of conns) conn.close();
      }
      // 20 raw connections streaming a chunked body, closed in the middle of a chunk.
      const conns = await Promise.all(Array.from({ length: 20 }, () =>
        sendPartial(
          purple.httpPort!,
          "PUT /kv/chunked HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n" +
            "Transfer-Encoding: chunked\r\n\r\n10000\r\n",
          chunk.subarray(0, 30_000),
        )));
      await sleep(30);
      for (const conn of conns) conn.close();
      // 20 fetches of a 1 MiB value, aborted a few milliseconds in (some may finish first).
      const fetched = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          fetch(`${url}/kv/fetched-${i}`, {
            method: "PUT",
            headers: { "content-type": "application/octet-stream" },
            body: new Uint8Array(1024 * 1024),
            signal: AbortSignal.timeout(1 + (i % 5)),
          }).then((response) => response.body?.cancel())),
      );
      const aborted = fetched.filter((result) => result.status === "rejected").length;
      const fds = await settlesTo(() => openFds(pid), baseline);
      assert.ok(fds <= baseline, `open files back to ${baseline}, found ${fds}`);
      await healthy();
      await assert.rejects(
        http.kvGet("dropped"),
        { name: "NotFoundError" },
        "no partial value stored",
      );
      await assert.rejects(http.kvGet("chunked"), { name: "NotFoundError" });
      // Every request slot came back: 8 at once (the limit) are served.
      const statuses = await Promise.all(
        Array.from({ length: 8 }, () => fetch(`${url}/flags/f`).then((r) => r.status)),
      );
      assert.deepEqual(statuses, Array(8).fill(200));
      assert.deepEqual(internalErrors(purple.lines), [], "a disconnect is not an internal error");
      console.log(
        `${
          80 - 20 + aborted
        } HTTP disconnects mid-PUT: open files ${baseline} before, ${fds} after; RSS ${rssBefore} KiB before, ${await rssKiB(
          pid,
        )} KiB after`,
      );
    } finally {
      await http.close();
      await grpc.close();
      assert.equal((await purple.stop()).code, 0);
    }
  },
);

grpcTest(
  "gRPC: calls cancelled mid-call and streams reset mid-message leave nothing behind",
  async () => {
    const { purple, pid, address, http, grpc, healthy } = await purpleWithData([
      "--max-concurrent-requests",
      "8",
    ]);
    try {
      const baseline = await openFds(pid);
      const big = new Uint8Array(1024 * 1024).fill(7);
      // 40 large KVPut calls through GrpcClient on their own connection, cancelled at once.
      const canceller = new GrpcClient(address);
      const cancelled = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => {
        const controller = new AbortController();
        const call = canceller.kvPut(`cancelled-${i}`, big, { signal: controller.signal });
        setTimeout(() => controller.abort(), 1 + (i % 5));
        return call;
      }));
      await canceller.close();
      // 40 raw streams: headers and half a message, then RST_STREAM (CANCEL).
      const raw = rawGrpc(address);
      const message = messageCodecOf("PutRequest").encode({
        location: { key: "reset" },
        value: { content: big },
      });
      const frame = grpcFrame(message);
      await Promise.all(Array.from({ length: 40 }, async () => {
        const session = http2.connect(`http://${address}`);
        session.on("error", () => {});
        const stream = session.request(GRPC_HEADERS("/proto.KV/KVPut"));
        stream.on("error", () => {});
        stream.write(frame.subarray(0, frame.length / 2));
        await sleep(20);
        stream.close(http2.constants.NGHTTP2_CANCEL);
        await sleep(5);
        session.destroy();
      }));
      raw.close();
      const fds = await settlesTo(() => openFds(pid), baseline);
      assert.ok(fds <= baseline, `open files back to ${baseline}, found ${fds}`);
      await healthy();
      await assert.rejects(
        grpc.kvGet("reset"),
        { name: "NotFoundError" },
        "no partial value stored",
      );
      // Every call slot came back: 8 at once (the limit) are served.
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => grpc.flagGet("f")));
      assert.deepEqual(results.map((result) => result.status), Array(8).fill("fulfilled"));
      assert.deepEqual(internalErrors(purple.lines), []);
      const gone = cancelled.filter((result) => result.status === "rejected").length;
      console.log(
        `gRPC: ${gone} of 40 calls cancelled mid-call, 40 streams reset; open files ${baseline} before, ${fds} after`,
      );
    } finally {
      await http.close();
      await grpc.close();
      assert.equal((await purple.stop()).code, 0);
    }
  },
);

grpcTest("a client that never finishes its body is cut off after --body-timeout-ms", async () => {
  const { purple, pid, url, address, http, grpc, healthy } = await purpleWithData([
    "--max-concurrent-requests",
    "4",
    "--body-timeout-ms",
    "500",
  ]);
  try {
    const baseline = await openFds(pid);
    // HTTP: four requests whose body stops after 10 of 1000 bytes hold the four slots...
    const start = performance.now();
    const stalled = await Promise.all(Array.from({ length: 4 }, () =>
      sendPartial(
        purple.httpPort!,
        "PUT /kv/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n" +
          "Content-Length: 1000\r\n\r\n",
        new Uint8Array(10),
      )));
    await sleep(100);
    const busy = await fetch(`${url}/flags/f`);
    assert.equal(busy.status, 503, "the stalled bodies hold their slots while they may still come");
    await busy.body?.cancel();
    // ...until the body timeout answers each 400 and frees its slot.
    const answers = await Promise.all(stalled.map((conn) => readAnswer(conn, 3000)));
    const ms = performance.now() - start;
    for (const answer of answers) {
      assert.match(answer, /^HTTP\/1\.1 400 /);
      assert.match(answer, /"Bad KV value: the request body did not arrive within 500 ms"/);
    }
    assert.ok(ms >= 450 && ms < 2000, `answered after ${ms.toFixed(0)} ms`);
    assert.equal((await fetch(`${url}/flags/f`)).status, 200, "the slots are free again");
    await assert.rejects(http.kvGet("slow"), { name: "NotFoundError" });
    // Deno.serve keeps a connection open until its client closes it (it has no connection
    // timeouts, denoland/deno#3515): the request is gone, the socket goes when the client does.
    const whileOpen = await openFds(pid);
    for (const conn of stalled) conn.close();
    const fds = await settlesTo(() => openFds(pid), baseline);
    assert.ok(fds <= baseline, `open files back to ${baseline}, found ${fds}`);

    // gRPC: four calls whose message stops halfway hold the four slots...
    const raw = rawGrpc(address);
    const message = messageCodecOf("PutRequest").encode({
      location: { key: "slow" },
      value: { content: new Uint8Array(1000) },
    });
    const frame = grpcFrame(message);
    const grpcStart = performance.now();
    const calls = Array.from(
      { length: 4 },
      () =>
        raw.call(GRPC_HEADERS("/proto.KV/KVPut"), [frame.subarray(0, 100)], {
          end: false,
          waitMs: 3000,
        }),
    );
    await sleep(100);
    await assert.rejects(grpc.flagGet("f"), UnavailableError);
    // ...until the body timeout answers each INVALID_ARGUMENT and frees its slot.
    for (const answer of await Promise.all(calls)) {
      assert.equal(answer.grpcStatus, 3, JSON.stringify(answer));
      assert.equal(
        answer.grpcMessage,
        "Bad request: the request message did not arrive within 500 ms",
      );
    }
    const grpcMs = performance.now() - grpcStart;
    assert.ok(grpcMs >= 450 && grpcMs < 2000, `answered after ${grpcMs.toFixed(0)} ms`);
    assert.equal(await grpc.flagGet("f"), false, "the slots are free again");
    raw.close();
    await healthy();
    assert.deepEqual(internalErrors(purple.lines), []);
    console.log(
      `slow bodies: HTTP 400 after ${ms.toFixed(0)} ms, gRPC INVALID_ARGUMENT after ${
        grpcMs.toFixed(0)
      } ms; open files ${baseline} before, ${whileOpen} while the clients kept their sockets, ${fds} after`,
    );
  } finally {
    await http.close();
    await grpc.close();
    assert.equal((await purple.stop()).code, 0);
  }
});
