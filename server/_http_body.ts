// Reading an HTTP request body under a byte cap and the body time limit. Private to the HTTP
// server; every refusal is a typed error (ValueTooLargeError, InvalidArgumentError), which the
// server's one error handler answers.

import { InvalidArgumentError, ValueTooLargeError } from "@purple/protocol/errors";
import type { Deadlines } from "./_deadlines.ts";

/** The time limit of a body and the server's deadlines, which enforce it. */
export interface BodyTime {
  readonly limits: { readonly bodyTimeoutMs: number };
  readonly deadlines: Deadlines;
  /** Told of each body refused for its size or its time (the metrics count them). */
  readonly refused?: (limit: "body_size" | "body_timeout") => void;
}

/**
 * Reads a request body, refusing it with `ValueTooLargeError` as soon as it is known to be
 * over `maxBytes`: from `Content-Length` before reading anything, or while counting a
 * streamed (chunked) body, which is then cancelled rather than read to its end. A body that
 * has not fully arrived `bodyTimeoutMs` after reading began is cancelled too, and one that
 * breaks off (the client went away) is refused: both with `InvalidArgumentError`.
 */
export async function readBody(
  request: Request,
  maxBytes: number,
  what: string,
  time: BodyTime,
): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    time.refused?.("body_size");
    throw new ValueTooLargeError(
      `Bad ${what}: the body is ${declared} bytes, the limit is ${maxBytes}`,
    );
  }
  if (request.body === null) return new Uint8Array();
  const reader = request.body.getReader();
  const timeoutMs = time.limits.bodyTimeoutMs;
  const deadline = Date.now() + timeoutMs;
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await readBefore(reader, deadline, timeoutMs, what, time);
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      time.refused?.("body_size");
      reader.cancel().catch(() => {});
      throw new ValueTooLargeError(
        `Bad ${what}: the body is over the limit of ${maxBytes} bytes`,
      );
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/**
 * Reads the next chunk of a request body, or throws `InvalidArgumentError` once `deadline`
 * (a `Date.now()` time) has passed; the body is then cancelled, so nothing of it is kept. A body
 * that breaks off (the client went away, or sent a malformed chunked encoding) is an
 * `InvalidArgumentError` too: it is the client's doing, not an internal error.
 */
function readBefore(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  deadline: number,
  timeoutMs: number,
  what: string,
  time: BodyTime,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  const broken = (error: unknown) =>
    new InvalidArgumentError(`Bad ${what}: the request body broke off before its end`, {
      cause: error,
    });
  const late = () => {
    time.refused?.("body_timeout");
    reader.cancel().catch(() => {});
    return new InvalidArgumentError(
      `Bad ${what}: the request body did not arrive within ${timeoutMs} ms`,
    );
  };
  const left = deadline - Date.now();
  if (left <= 0) return Promise.reject(late());
  return time.deadlines.within(
    reader.read().catch((error) => Promise.reject(broken(error))),
    left,
    late,
  );
}
