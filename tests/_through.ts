/**
 * Test harness: registers the conformance suite against one backend three ways, directly and
 * through the HTTP and the gRPC server, as `conformanceThrough()` does for the default targets
 * (for targets it does not know, such as a Redis Cluster).
 *
 * @module
 */

import type { Operations } from "@purple/client";
import { HttpClient } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import { DEFAULT_LIMITS } from "../backends/mod.ts";
import { startHttpServer } from "../server/http.ts";
import { startGrpcServer } from "../server/grpc.ts";
import { conformance } from "./conformance.ts";
import type { ListingKind } from "./_conformance_kit.ts";

/** How the suite reaches the backend. */
export type Transport = "backend" | "http" | "grpc";

/** Serves `ops` over a transport; returns the client and a function that stops both. */
async function serve(
  transport: Transport,
  ops: Operations,
): Promise<{ client: Operations; stop: () => Promise<void> }> {
  if (transport === "backend") return { client: ops, stop: async () => {} };
  const options = { hostname: "127.0.0.1", port: 0, limits: DEFAULT_LIMITS, log: () => {} };
  if (transport === "http") {
    const server = await startHttpServer(ops, options);
    const client = new HttpClient(`http://127.0.0.1:${server.port}`);
    return {
      client,
      stop: async () => {
        await client.close();
        await server.shutdown();
      },
    };
  }
  const server = await startGrpcServer(ops, options);
  const client = new GrpcClient(`127.0.0.1:${server.port}`);
  return {
    client,
    stop: async () => {
      await client.close();
      await server.shutdown();
    },
  };
}

/** A store for one conformance target: how to open a backend on it, and how to remove it. */
export interface Store {
  /** Opens a backend on the store (again after a reopen). */
  open: () => Promise<Operations>;
  /** Removes the store once the target is done. */
  cleanup: () => Promise<void>;
}

/**
 * Registers `conformance: <target>`, `conformance: http → <target>` and
 * `conformance: grpc → <target>`, each on a store of its own from `store()`; the suite's
 * `reopen` opens a new backend on the same store.
 *
 * @param target The backend's name, such as `redis cluster`.
 * @param store Makes a store for one target.
 * @param options `ignore` skips the three (say why loudly before calling); `listing`: how the
 * backend lists keys.
 */
export function conformanceThreeWays(
  target: string,
  store: () => Promise<Store>,
  options: { ignore?: boolean; listing: ListingKind },
): void {
  for (const transport of ["backend", "http", "grpc"] as const) {
    const name = transport === "backend" ? target : `${transport} → ${target}`;
    conformance(name, async () => {
      const { open, cleanup } = await store();
      let ops = await open();
      let served = await serve(transport, ops);
      const stop = async () => {
        await served.stop();
        await ops.close();
      };
      return {
        ops: served.client,
        listing: options.listing,
        reopen: async () => {
          await stop();
          ops = await open();
          served = await serve(transport, ops);
          return served.client;
        },
        close: async () => {
          await stop();
          await cleanup();
        },
      };
    }, options);
  }
}
