/**
 * The HTTP baseline: a bare `Deno.serve` answering every request with a constant small JSON
 * (the size of a counter answer), with no routing, no parsing and no backend. What Purple's HTTP
 * server reaches is compared with what this reaches on the same machine, in the same run.
 *
 * ```sh
 * deno run --allow-net bench/baselines/http_bare.ts   # prints the port it listens on
 * ```
 *
 * @module
 */

const BODY = '{"counter":"bench-counter","value":1}';

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`Starting up the HTTP server on port ${port}`),
}, () => new Response(BODY, { headers: { "content-type": "application/json" } }));
