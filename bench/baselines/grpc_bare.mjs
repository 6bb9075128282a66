/**
 * The gRPC baseline: a bare grpc-js server with one unary method,
 * `/proto.Counter/CounterIncrement`, answered from a Map with a few lines of hand-written
 * protobuf, no validation and no backend. Plain JavaScript, so that the same file runs under
 * Deno and under Node:
 *
 * ```sh
 * deno run -A bench/baselines/grpc_bare.mjs
 * node bench/baselines/grpc_bare.mjs            # grpc-js from ./node_modules
 * BENCH_PORT=9090 node bench/baselines/grpc_bare.mjs --workers 2   # node:cluster, 2 processes
 * deno run -A bench/baselines/grpc_bare.mjs --native   # grpc-js binds the port (no guard)
 * ```
 *
 * Under Deno it listens through Purple's GOAWAY guard (server/_grpc_goaway_guard.ts), as
 * Purple does: without it, Deno 2.9's node:http2 aborts the process as soon as h2load closes a
 * connection that carried more than about a hundred calls (denoland/deno#36788), so it could
 * only be measured in h2load's duration mode, one process per run (--native; the bench does
 * that in its side-by-side comparison). Under Node it binds the usual way.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import cluster from "node:cluster";
import { createServer } from "node:net";

const counters = new Map();

/** IncrementCounterRequest: key (1, string), amount (2, int64; small positive values only). */
function decode(bytes) {
  let pos = 0;
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

/** GetCounterResponse: value (1, int64; small positive values only). */
function encode({ value }) {
  if (value === 0) return Buffer.alloc(0);
  const out = [0x08];
  while (value > 0x7f) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return Buffer.from(out);
}

const refuse = () => {
  throw new Error("Cannot serialize on the server side");
};

const SERVICE = {
  CounterIncrement: {
    path: "/proto.Counter/CounterIncrement",
    requestStream: false,
    responseStream: false,
    requestSerialize: refuse,
    requestDeserialize: decode,
    responseSerialize: encode,
    responseDeserialize: refuse,
  },
};

function bareServer() {
  const server = new grpc.Server();
  server.addService(SERVICE, {
    CounterIncrement(call, callback) {
      const { key, amount } = call.request;
      const value = (counters.get(key) ?? 0) + amount;
      counters.set(key, value);
      callback(null, { value });
    },
  });
  return server;
}

function serve(port) {
  const server = bareServer();
  const credentials = grpc.ServerCredentials.createInsecure();
  if (globalThis.Deno === undefined || process.argv.includes("--native")) {
    server.bindAsync(`127.0.0.1:${port}`, credentials, (error, bound) => {
      if (error) throw error;
      console.log(`Starting up the gRPC server on port ${bound}`);
    });
    return;
  }
  import("../../server/_grpc_goaway_guard.ts").then(({ guardSocket }) => {
    const injector = server.createConnectionInjector(credentials);
    const listener = createServer((socket) => {
      socket.setNoDelay(true);
      injector.injectConnection(guardSocket(socket));
    });
    listener.listen(port, "127.0.0.1", () => {
      console.log(`Starting up the gRPC server on port ${listener.address().port}`);
    });
  });
}

const flag = process.argv.indexOf("--workers");
const workers = flag < 0 ? 1 : Number(process.argv[flag + 1]);
if (workers > 1 && cluster.isPrimary) {
  // node:cluster hands the connections of one port to the workers in turn; each worker has its
  // own Map, which is fine for a baseline that only measures calls.
  const port = Number(process.env.BENCH_PORT ?? 0);
  if (port === 0) throw new Error("Cannot start workers on port 0: set BENCH_PORT");
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork({ BENCH_PORT: String(port) }).on("message", () => {
      if (++ready === workers) console.log(`Starting up the gRPC server on port ${port}`);
    });
  }
} else if (cluster.isWorker) {
  bareServer().bindAsync(
    `127.0.0.1:${process.env.BENCH_PORT}`,
    grpc.ServerCredentials.createInsecure(),
    (error) => {
      if (error) throw error;
      process.send("ready");
    },
  );
} else {
  serve(Number(process.env.BENCH_PORT ?? 0));
}
