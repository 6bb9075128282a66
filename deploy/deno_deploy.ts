/**
 * Purple on Deno Deploy: the HTTP server, over the disk backend, which on Deploy is the
 * platform's Deno KV (when `DENO_DEPLOYMENT_ID` is set, the disk backend calls `Deno.openKv()`
 * without a path, and Deploy connects it to the KV database assigned to the app). Deploy
 * serves HTTP only, so there is no gRPC here.
 *
 * Settings come from the app's environment variables, as for `purple http`: `PURPLE_BACKEND`
 * (`redis` with `PURPLE_REDIS_URL` also works from Deploy), `PURPLE_MAX_VALUE_BYTES`, ...
 *
 * Elsewhere, this entry is `purple http` (loopback, port 8080, `./data`), to try it locally:
 *
 * ```sh
 * deno run -A deploy/deno_deploy.ts
 * ```
 *
 * @module
 */

import { main } from "../server/cli.ts";
import { parseCli } from "../server/config.ts";
import { createHttpApp } from "../server/http.ts";
import { openBackend } from "../backends/mod.ts";

if (Deno.env.get("DENO_DEPLOYMENT_ID") === undefined) {
  Deno.exit(await main(["http", ...Deno.args]));
}

const command = parseCli(["http"], Deno.env.toObject());
if (command.action !== "serve") throw new Error("Cannot serve: 'purple http' did not resolve");
const { config } = command;
const ops = await openBackend({
  kind: config.backend,
  dataDir: config.dataDir,
  redisUrl: config.redisUrl,
  limits: config.limits,
});
// Deploy chooses the address and port, on the public internet: set PURPLE_AUTH_TOKEN.
Deno.serve(
  createHttpApp(ops, { limits: config.limits, debug: config.debug, auth: config.auth }).fetch,
);
