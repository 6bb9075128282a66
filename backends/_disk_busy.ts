// Retries a Deno KV call that found the SQLite file locked. Private to this folder.
//
// When two handles (two backends in one process, or two processes) write one SQLite file at
// the same moment, Deno KV can fail the call with "database is locked" instead of waiting.
// Nothing was written then, so the call is simply made again after a short random pause.

import { UnavailableError } from "@purple/protocol/errors";

/** How long a call keeps retrying before it reports the database unavailable. */
const MAX_WAIT_MS = 10_000;

/** Tells whether an error is SQLite's "database is locked" (SQLITE_BUSY). */
export function isBusy(error: unknown): boolean {
  return error instanceof Error && /database is (locked|busy)/i.test(error.message);
}

/** Runs `call`, running it again while it fails because the database file is locked. */
export async function retryBusy<T>(call: () => Promise<T>): Promise<T> {
  const start = Date.now();
  for (let attempt = 0;; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!isBusy(error)) throw error;
      if (Date.now() - start > MAX_WAIT_MS) {
        throw new UnavailableError(
          `Cannot use the disk backend: the database stayed locked for ${MAX_WAIT_MS} ms`,
          { cause: error },
        );
      }
      const pause = Math.min(50, 2 ** attempt) * (0.5 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}
