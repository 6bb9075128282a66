// The cursors of listings: opaque to clients, of each backend's own making. A cursor is the
// base64url of a small JSON object tagged with the backend that made it; anything else (a
// cursor of another backend, a corrupted one) is refused with InvalidArgumentError, a 400.
// Private to this folder.

import { InvalidArgumentError } from "@purple/protocol/errors";
import { clip, fromBase64, toBase64 } from "@purple/protocol/text";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function base64url(bytes: Uint8Array): string {
  return toBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array {
  return fromBase64(text.replaceAll("-", "+").replaceAll("_", "/"));
}

/** A cursor of `backend` that carries `state`. */
export function encodeCursor(backend: string, state: Record<string, unknown>): string {
  return base64url(encoder.encode(JSON.stringify({ b: backend, ...state })));
}

/**
 * The state a cursor of `backend` carries, checked by `valid`.
 * @throws {InvalidArgumentError} When it is not such a cursor.
 */
export function decodeCursor<T extends Record<string, unknown>>(
  backend: string,
  cursor: string,
  valid: (state: Record<string, unknown>) => state is T,
): T {
  let state: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error("not base64url");
    state = JSON.parse(decoder.decode(fromBase64url(cursor)));
  } catch {
    throw badCursor(cursor);
  }
  if (
    typeof state !== "object" || state === null ||
    (state as Record<string, unknown>).b !== backend || !valid(state as Record<string, unknown>)
  ) {
    throw badCursor(cursor);
  }
  return state as T;
}

function badCursor(cursor: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `Bad cursor '${clip(cursor)}': not a cursor of this listing (pass back the cursor of the ` +
      "previous page as it came)",
  );
}

/** A cursor that carries the last key of a page: listings in key order. */
export interface AfterKey extends Record<string, unknown> {
  /** The last key of the previous page. */
  k: string;
}

/** Whether a cursor's state carries a last key. */
export function isAfterKey(state: Record<string, unknown>): state is AfterKey {
  return typeof state.k === "string";
}
