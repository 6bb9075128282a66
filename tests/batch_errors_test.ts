/**
 * A batch's operation that fails inside the backend (not a Purple error): its outcome says only
 * "Internal server error", as a single call's answer does, and the server's log gets the details.
 */

import assert from "node:assert/strict";
import { HttpClient, InternalError } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";
import { checked, DEFAULT_LIMITS, MemoryBackend } from "../backends/mod.ts";
import { startGrpcServer, startHttpServer } from "../mod.ts";

Deno.test({
  name:
    "a batch's internal error is answered without details and logged with its stack, both protocols",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const memory = new MemoryBackend();
    const failing = new Proxy(memory, {
      get(target, property) {
        const value = Reflect.get(target, property);
        if (property === "counterGet") {
          return () => Promise.reject(new Error("the disk is on fire"));
        }
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const ops = checked(failing, DEFAULT_LIMITS);
    const lines: string[] = [];
    const options = {
      hostname: "127.0.0.1",
      port: 0,
      limits: DEFAULT_LIMITS,
      log: (line: string) => lines.push(line),
    };
    const http = await startHttpServer(ops, options);
    const grpc = await startGrpcServer(ops, options);
    const clients = [
      new HttpClient(`http://127.0.0.1:${http.port}`),
      new GrpcClient(`127.0.0.1:${grpc.port}`),
    ];
    try {
      for (const client of clients) {
        lines.length = 0;
        const [incremented, got] = await client.batch([
          { op: "counterIncrement", args: [client.constructor.name, 1] },
          { op: "counterGet", args: [client.constructor.name] },
        ]);
        assert.deepEqual(incremented, { ok: true, value: 1n }, client.constructor.name);
        assert.ok(!got.ok && got.error instanceof InternalError, client.constructor.name);
        assert.equal(got.error.message, "Internal server error", client.constructor.name);
        const logged = lines.filter((line) => line.startsWith("Internal error in a batch: "));
        assert.equal(logged.length, 1, `${client.constructor.name}: ${lines.join("\n")}`);
        assert.match(logged[0], /Error: the disk is on fire\n\s+at /);
      }
    } finally {
      await Promise.all(clients.map((client) => client.close()));
      await Promise.all([http.shutdown(), grpc.shutdown()]);
      await ops.close();
    }
  },
});
