// Bad input that tests/fuzz_test.ts found answered as a server fault, kept as plain
// regression tests: each answer must blame the client (4xx, INVALID_ARGUMENT), never the server.

import assert from "node:assert/strict";
import type http2 from "node:http2";
import { LOCATION } from "../client/_grpc_messages.ts";
import { openBackend } from "../backends/mod.ts";
import { grpcFrame, grpcTest, type RawGrpc, rawGrpc, serveBoth } from "./_hardening.ts";

async function withGrpc(fn: (raw: RawGrpc) => Promise<void>): Promise<void> {
  const ops = await openBackend({ kind: "memory" });
  const served = await serveBoth(ops);
  const raw = rawGrpc(served.address);
  try {
    await fn(raw);
  } finally {
    raw.close();
    await served.close();
    await ops.close();
  }
}

const KV_GET = {
  ":method": "POST",
  ":path": "/proto.KV/KVGet",
  "content-type": "application/grpc",
  "te": "trailers",
};

grpcTest("gRPC: a request that is not application/grpc is answered HTTP 415, not 200", async () => {
  await withGrpc(async (raw) => {
    for (const type of [undefined, "text/plain", "application/json"]) {
      const headers: http2.OutgoingHttpHeaders = { ...KV_GET };
      if (type === undefined) delete headers["content-type"];
      else headers["content-type"] = type;
      const answer = await raw.call(headers, [grpcFrame(LOCATION.encode({ key: "a" }))]);
      assert.equal(answer.httpStatus, 415, `${type}: ${JSON.stringify(answer)}`);
    }
  });
});
