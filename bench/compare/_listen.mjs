// How the side-by-side servers listen (plain JavaScript, for Deno and Node alike). Private to
// the bench.
//
// Under Node, or under Deno with --native, the HTTP/2 server binds the port itself. Under Deno
// otherwise, connections go through Purple's GOAWAY guard first, as in Purple's gRPC server:
// Deno 2.9's node:http2 aborts when a client closes a connection that carried more than about a
// hundred calls (denoland/deno#36788).

import { createServer } from "node:net";

/**
 * Listens with an HTTP/2 server on BENCH_PORT (default any free port) and prints the port.
 * @param {import("node:http2").Http2Server} server
 */
export async function listen(server) {
  const port = Number(process.env.BENCH_PORT ?? 0);
  const native = globalThis.Deno === undefined || process.argv.includes("--native");
  if (native) {
    server.on("connection", (socket) => socket.setNoDelay?.(true));
    server.listen(port, "127.0.0.1", () => {
      console.log(`Starting up the gRPC server on port ${server.address().port}`);
    });
    return;
  }
  const { guardSocket } = await import("../../server/_grpc_goaway_guard.ts");
  const listener = createServer((socket) => {
    socket.setNoDelay(true);
    server.emit("connection", guardSocket(socket));
  });
  listener.listen(port, "127.0.0.1", () => {
    console.log(`Starting up the gRPC server on port ${listener.address().port}`);
  });
}
