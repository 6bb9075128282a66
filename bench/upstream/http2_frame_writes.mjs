/**
 * Reproduction for an upstream report to Deno (see README.md beside this file): Deno's
 * `node:http2` server writes each HTTP/2 frame of a response with a system call of its own,
 * where Node writes a response's frames together. A unary gRPC call is three frames (HEADERS,
 * DATA, trailing HEADERS): three `sendto` calls a call under Deno 2.9.6, one `writev` under
 * Node 20. The same script also shows denoland/deno#36788 (the process aborts when the client
 * sends GOAWAY after a couple of thousand streams on one connection).
 *
 * No dependency; the server exits by itself after LIFE_MS (default 4000) so that `strace -c`
 * prints its table. It listens on 127.0.0.1 only.
 *
 * ```sh
 * printf '\x00\x00\x00\x00\x02\x0a\x00' > /tmp/frame.bin   # a gRPC frame: prefix + 2-byte message
 * PORT=45555 strace -f -qq -c -o /tmp/deno.txt deno run -A bench/upstream/http2_frame_writes.mjs &
 * sleep 1.5
 * h2load -n2000 -c1 -m1 -d /tmp/frame.bin -H 'content-type: application/grpc' \
 *   -H 'te: trailers' http://127.0.0.1:45555/x
 * wait; grep -E 'sendto|writev|write$' /tmp/deno.txt
 * # the same with: strace ... node bench/upstream/http2_frame_writes.mjs
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import http2 from "node:http2";
import process from "node:process";

/** The reply of every call: a 5-byte gRPC prefix and a 2-byte message. */
const reply = Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]);

const server = http2.createServer();
server.on("stream", (stream) => {
  stream.on("data", () => {});
  stream.on("end", () => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
      waitForTrailers: true,
    });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(reply);
  });
});
setTimeout(() => process.exit(0), Number(process.env.LIFE_MS ?? 4000));
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`port ${server.address().port}`);
});
