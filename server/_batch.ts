// What both servers do around a batch, beyond running it: check that the caller's token may run
// every operation it holds, and log the internal errors its outcomes answer without details.

import type {
  BatchableName,
  BatchOperation,
  BatchOptions,
  BatchOutcome,
  Operations,
} from "@purple/protocol";
import { InternalError } from "@purple/protocol/errors";
import { type Access, assertBatchAccess } from "./_auth.ts";

/**
 * Runs a batch for a caller.
 * @param ops The operations served.
 * @param operations The batch's operations.
 * @param options `atomic`.
 * @param access The caller's token's access, or `undefined` when tokens are not required.
 * @param log Where an operation's internal error goes, with its stack.
 * @returns The outcomes, in order.
 * @throws {PermissionDeniedError} When a read-only token's batch holds an operation that writes.
 */
export async function runBatch(
  ops: Operations,
  operations: readonly BatchOperation[],
  options: BatchOptions | undefined,
  access: Access | undefined,
  log: (line: string) => void,
): Promise<BatchOutcome<BatchableName>[]> {
  assertBatchAccess(operations, access);
  const outcomes = await ops.batch(operations, options) as BatchOutcome<BatchableName>[];
  for (const outcome of outcomes) {
    if (!outcome.ok && outcome.error instanceof InternalError && outcome.error.cause) {
      log(`Internal error in a batch: ${(outcome.error.cause as Error)?.stack}`);
    }
  }
  return outcomes;
}
