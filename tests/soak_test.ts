// The soak in its short form, for CI: the real purple under mixed HTTP and gRPC load on every
// service for 10 s of warm-up and 20 s measured (PURPLE_SOAK_SECONDS to change the 20); no
// error, and memory levels off (see tests/soak.ts; `deno task soak` runs the 3-minute form).

import assert from "node:assert/strict";
import { describeSoak, soak } from "./soak.ts";
import { grpcTest } from "./_hardening.ts";

const SECONDS = Number(Deno.env.get("PURPLE_SOAK_SECONDS") ?? "20");

grpcTest(`soak: ${SECONDS} s of mixed load, no error, memory levels off`, async () => {
  const result = await soak({ seconds: SECONDS, warmupSeconds: 10, reportEverySeconds: 0 });
  console.log(describeSoak(result));
  assert.equal(result.errors, 0, `errors: ${result.firstErrors.join("; ")}`);
  assert.ok(result.calls > SECONDS * 100, `${result.calls} calls in ${SECONDS} s`);
  assert.ok(
    result.growthMiB <= 16,
    `median RSS grew ${result.growthMiB.toFixed(1)} MiB from the middle to the last third`,
  );
  assert.ok(result.passed);
});
