/**
 * Purple's gRPC server over the memory backend, started without the `purple` command, for the
 * side-by-side comparison under Node: the bench bundles this file with `deno bundle` (the npm
 * packages left external, found in ./node_modules) and runs the bundle with `node`. It runs
 * under Deno as it is.
 *
 * @module
 */

import { startGrpcServer } from "../../server/grpc.ts";
import { DEFAULT_LIMITS, openBackend } from "../../backends/mod.ts";

const ops = await openBackend({ kind: "memory" });
await startGrpcServer(ops, {
  hostname: "127.0.0.1",
  port: Number(globalThis.process?.env.BENCH_PORT ?? 0),
  limits: DEFAULT_LIMITS,
});
