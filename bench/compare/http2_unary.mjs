/**
 * The transport's ceiling, for the side-by-side comparison: `/proto.Counter/CounterIncrement`
 * answered straight from node:http2, with hand-written gRPC framing and protobuf, no gRPC
 * library at all (no deadlines, metadata, compression or status mapping: not a server to ship,
 * a measure of what grpc-js costs on top of HTTP/2).
 *
 * ```sh
 * node bench/compare/http2_unary.mjs
 * deno run -A bench/compare/http2_unary.mjs            # through the GOAWAY guard
 * deno run -A bench/compare/http2_unary.mjs --native   # Deno's own listener (aborts on GOAWAY)
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import http2 from "node:http2";
import { listen } from "./_listen.mjs";

const counters = new Map();

/** IncrementCounterRequest (after the 5-byte prefix): key (1), amount (2, small values). */
function decode(bytes) {
  let pos = 5;
  let key = "";
  let amount = 0;
  while (pos < bytes.length) {
    const tag = bytes[pos++];
    if (tag === 0x0a) {
      const length = bytes[pos++];
      key = bytes.toString("utf8", pos, pos + length);
      pos += length;
    } else if (tag === 0x10) {
      let shift = 1;
      let byte;
      do {
        byte = bytes[pos++];
        amount += (byte & 0x7f) * shift;
        shift *= 128;
      } while (byte & 0x80);
    } else throw new Error(`Cannot decode the request: unexpected tag ${tag}`);
  }
  return { key, amount };
}

/** A GetCounterResponse frame: prefix, then value (1, small positive values). */
function encode(value) {
  const message = [0x08];
  while (value > 0x7f) {
    message.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  message.push(value);
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

const server = http2.createServer();
server.on("stream", (stream, headers) => {
  const chunks = [];
  stream.on("data", (chunk) => chunks.push(chunk));
  stream.on("end", () => {
    if (headers[":path"] !== "/proto.Counter/CounterIncrement") {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, {
        endStream: true,
      });
      return;
    }
    const { key, amount } = decode(Buffer.concat(chunks));
    const value = (counters.get(key) ?? 0) + amount;
    counters.set(key, value);
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
      waitForTrailers: true,
    });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(encode(value));
  });
});
await listen(server);
