// Reading the parts of an HTTP request: keys from the path, values from the query string, and
// request bodies under a byte cap. Private to the HTTP server. Every helper throws a typed error
// (InvalidArgumentError, ValueTooLargeError), which the server's one error handler answers.

import { InvalidArgumentError, ValueTooLargeError } from "@purple/client/errors";
import { readBefore } from "./_limits.ts";

/** Shortens untrusted text for an error message. */
export function clip(text: string, max = 64): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The path of a request URL exactly as sent (still percent-encoded), without the query. */
export function rawPath(url: string): string {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  if (start < 0) return "/";
  let end = url.indexOf("?", start);
  const hash = url.indexOf("#", start);
  if (hash >= 0 && (end < 0 || hash < end)) end = hash;
  return end < 0 ? url.slice(start) : url.slice(start, end);
}

/** The query string of a request URL as sent, without the `?`. */
function rawQuery(url: string): string {
  const start = url.indexOf("?");
  if (start < 0) return "";
  const end = url.indexOf("#", start);
  return end < 0 ? url.slice(start + 1) : url.slice(start + 1, end);
}

function decode(what: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new InvalidArgumentError(
      `Bad ${what}: malformed percent-encoding (not UTF-8) in '${clip(text)}'`,
    );
  }
}

/**
 * The key after `prefix` in the path (such as `/cache/`), percent-decoded exactly once: `%2F`
 * gives `/`, `%25` gives `%`, and `+` stays `+`. The rest of the path is the key, so an
 * unencoded `/` is part of it too.
 */
export function keyFromPath(url: string, prefix: string): string {
  const path = rawPath(url);
  const encoded = path.startsWith(prefix) ? path.slice(prefix.length) : "";
  if (encoded === "") {
    throw new InvalidArgumentError(`Bad key: expected a non-empty key after '${prefix}'`);
  }
  return decode("key", encoded);
}

/**
 * The value of a query parameter, decoded once as a form value (`+` is a space, as in Go's
 * `url.ParseQuery`), the first one when repeated; `undefined` when absent or empty.
 */
export function queryParam(url: string, name: string): string | undefined {
  for (const pair of rawQuery(url).split("&")) {
    const equals = pair.indexOf("=");
    const rawName = equals < 0 ? pair : pair.slice(0, equals);
    // A name without % decodes to itself: only compared, it need not be copied.
    const spaced = rawName.replaceAll("+", " ");
    if ((rawName.includes("%") ? decode("query parameter name", spaced) : spaced) !== name) {
      continue;
    }
    const value = equals < 0 ? "" : decode(name, pair.slice(equals + 1).replaceAll("+", " "));
    return value === "" ? undefined : value;
  }
  return undefined;
}

const TRUE = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const FALSE = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/** Parses a flag value with the set Go's `strconv.ParseBool` accepts. */
export function parseBool(text: string): boolean {
  if (TRUE.has(text)) return true;
  if (FALSE.has(text)) return false;
  throw new InvalidArgumentError(
    `Bad flag value: expected one of 1 t T TRUE true True 0 f F FALSE false False, found '${
      clip(text)
    }'`,
  );
}

/** Parses an optional sign and decimal digits into a bigint (range is checked by the caller). */
export function parseInteger(name: string, text: string): bigint {
  if (!/^[+-]?[0-9]+$/.test(text)) {
    throw new InvalidArgumentError(`Bad ${name}: expected an integer, found '${clip(text)}'`);
  }
  return BigInt(text);
}

/** Parses a TTL in whole seconds; absent means the default (range is checked by the backend). */
export function parseTtl(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[+-]?[0-9]+$/.test(text)) {
    throw new InvalidArgumentError(`Bad ttl: expected whole seconds, found '${clip(text)}'`);
  }
  return Number(text);
}

/**
 * Reads a request body, refusing it with `ValueTooLargeError` as soon as it is known to be
 * over `maxBytes`: from `Content-Length` before reading anything, or while counting a
 * streamed (chunked) body, which is then cancelled rather than read to its end. A body that
 * has not fully arrived `timeoutMs` after reading began is cancelled too, and one that breaks
 * off (the client went away) is refused: both with `InvalidArgumentError`.
 */
export async function readBody(
  request: Request,
  maxBytes: number,
  what: string,
  timeoutMs = Infinity,
): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    throw new ValueTooLargeError(
      `Bad ${what}: the body is ${declared} bytes, the limit is ${maxBytes}`,
    );
  }
  if (request.body === null) return new Uint8Array();
  const reader = request.body.getReader();
  const deadline = Date.now() + timeoutMs;
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await readBefore(reader, deadline, timeoutMs, what);
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
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

/** Whether an `Accept` header asks for raw bytes (`application/octet-stream`, q above 0). */
export function acceptsBytes(accept: string | null): boolean {
  if (accept === null) return false;
  return accept.split(",").some((range) => {
    const [type, ...params] = range.split(";").map((part) => part.trim().toLowerCase());
    if (type !== "application/octet-stream") return false;
    const q = params.find((param) => param.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/** Whether a `Content-Type` header says the body is raw bytes. */
export function isBytes(contentType: string | null): boolean {
  return contentType?.split(";")[0].trim().toLowerCase() === "application/octet-stream";
}
