/**
 * The TODO example as a program: a REST API on port 3000 that keeps its todos in a Purple
 * server's sets, through `HttpClient`.
 *
 * ```sh
 * deno run --allow-net --allow-env examples/todo/main.ts
 * ```
 *
 * Settings, from the environment:
 *
 * - `PURPLE_URL`: the Purple HTTP server (default `http://localhost:8080`)
 * - `TODO_PORT`, then `PORT`: the port to listen on (default 3000; 0 picks a free one)
 * - `TODO_HOST`: the address to bind (default `127.0.0.1`; `0.0.0.0` accepts other machines)
 *
 * It prints `TODO app listening on http://HOST:PORT/todos` once it listens, and stops
 * gracefully on SIGINT or SIGTERM.
 *
 * @module
 */

import { HttpClient } from "@purple/client";
import { todoHandler } from "./todo.ts";

const purpleUrl = Deno.env.get("PURPLE_URL") || "http://localhost:8080";
const portText = Deno.env.get("TODO_PORT") || Deno.env.get("PORT") || "3000";
const hostname = Deno.env.get("TODO_HOST") || "127.0.0.1";

const port = Number(portText);
if (!/^[0-9]+$/.test(portText) || port > 65535) {
  console.error(`todo: Bad port: expected a number from 0 to 65535, found '${portText}'`);
  Deno.exit(2);
}

let purple: HttpClient;
let server: Deno.HttpServer<Deno.NetAddr>;
try {
  purple = new HttpClient(purpleUrl);
  server = Deno.serve({
    hostname,
    port,
    onListen: (address) => {
      console.log(
        `TODO app listening on http://${address.hostname}:${address.port}/todos, ` +
          `keeping todos in Purple at ${purpleUrl}`,
      );
    },
  }, todoHandler(purple));
} catch (error) {
  // A bad PURPLE_URL, a port in use, an address that is not this machine's.
  console.error(`todo: Cannot start: ${error instanceof Error ? error.message : error}`);
  Deno.exit(2);
}

const signal = await new Promise<string>((resolve) => {
  for (const name of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(name, () => resolve(name));
    } catch {
      // Windows cannot listen for SIGTERM.
    }
  }
});
console.log(`Received ${signal}: stopping`);
await server.shutdown();
await purple.close();
Deno.exit(0);
