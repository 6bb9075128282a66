// A TypeScript user of @purple/client in Node. tests/node_client_test.ts type-checks it with tsc
// against the built package (the .d.ts files), and `deno check` against the sources: both must
// see the same API. The @ts-expect-error lines fail if the types were missing (`any`).

import { HttpClient, NotFoundError, type Operations } from "@purple/client";
import { type GrpcCallOptions, GrpcClient } from "@purple/client/grpc";
import { ValueTooLargeError } from "@purple/client/errors";

export const clients: Operations[] = [
  new HttpClient("http://localhost:8080", { timeoutMs: 2_000 }),
  new GrpcClient("localhost:8081", { timeoutMs: 2_000 }),
];

export async function visits(purple: Operations): Promise<bigint> {
  return await purple.counterIncrement("visits", 1n);
}

export function describe(error: unknown): string {
  if (error instanceof NotFoundError) return error.code;
  if (error instanceof ValueTooLargeError) return "too large";
  return "other";
}

const options: GrpcCallOptions = { deadlineMs: 500 };
export const avatar: Promise<Uint8Array> = new GrpcClient("localhost:8081").kvGet("a", options);

// @ts-expect-error A flag is a boolean.
export const wrongFlag: Promise<void> = clients[0].flagSet("beta", "yes");
// @ts-expect-error A counter comes back as a bigint.
export const wrongCounter: Promise<number> = clients[0].counterGet("visits");
