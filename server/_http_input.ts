// Reading the parts of an HTTP request: keys from the path, values from the query string and
// headers. Private to the HTTP server. Every helper throws InvalidArgumentError, which the
// server's one error handler answers (request bodies: _http_body.ts).

import { InvalidArgumentError } from "@purple/protocol/errors";
import { clip, GO_BOOLEANS, parseGoBool } from "@purple/protocol/text";

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

/** Whether the query names a parameter, even without a value (`?item=` or `?item`). */
export function hasQueryParam(url: string, name: string): boolean {
  for (const pair of rawQuery(url).split("&")) {
    const equals = pair.indexOf("=");
    const rawName = (equals < 0 ? pair : pair.slice(0, equals)).replaceAll("+", " ");
    if ((rawName.includes("%") ? decode("query parameter name", rawName) : rawName) === name) {
      return true;
    }
  }
  return false;
}

/**
 * Every parameter of the query, in order, each name and value decoded once as form values (`+`
 * is a space), a parameter without `=` having the value "".
 */
export function queryPairs(url: string): Array<[name: string, value: string]> {
  const query = rawQuery(url);
  if (query === "") return [];
  return query.split("&").filter((pair) => pair !== "").map((pair) => {
    const equals = pair.indexOf("=");
    const rawName = (equals < 0 ? pair : pair.slice(0, equals)).replaceAll("+", " ");
    const name = decode("query parameter name", rawName);
    const value = equals < 0 ? "" : decode(name, pair.slice(equals + 1).replaceAll("+", " "));
    return [name, value];
  });
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

/** Parses a flag value with the set Go's `strconv.ParseBool` accepts. */
export function parseBool(text: string): boolean {
  const value = parseGoBool(text);
  if (value !== undefined) return value;
  throw new InvalidArgumentError(
    `Bad flag value: expected one of ${GO_BOOLEANS.join(" ")}, found '${clip(text)}'`,
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

/**
 * The KV write conditions of a request's `If-Match` and `If-None-Match` headers: `If-Match`
 * takes one entity tag (`"version"`) or `*`; `If-None-Match` only `*`. A weak tag (`W/"..."`)
 * never matches a strong comparison, so it is refused rather than silently failing.
 */
export function writeConditions(
  headers: Headers,
): { ifMatch?: string; ifNoneMatch?: "*" } | undefined {
  const ifMatch = headers.get("if-match");
  const ifNoneMatch = headers.get("if-none-match");
  if (ifMatch === null && ifNoneMatch === null) return undefined;
  const options: { ifMatch?: string; ifNoneMatch?: "*" } = {};
  if (ifMatch !== null) {
    const value = ifMatch.trim();
    const tag = /^"([\x21\x23-\x7e]*)"$/.exec(value);
    if (value === "*") options.ifMatch = "*";
    else if (tag !== null && tag[1] !== "") options.ifMatch = tag[1];
    else {
      throw new InvalidArgumentError(
        `Bad If-Match: expected one entity tag in quotes ("version", from an ETag) or *, found '${
          clip(value)
        }'`,
      );
    }
  }
  if (ifNoneMatch !== null) {
    if (ifNoneMatch.trim() !== "*") {
      throw new InvalidArgumentError(
        `Bad If-None-Match: only * is taken (the key must not exist), found '${clip(ifNoneMatch)}'`,
      );
    }
    options.ifNoneMatch = "*";
  }
  return options;
}

/** The `ETag` of a KV value's version. */
export function etag(version: string): string {
  return `"${version}"`;
}

/** The options of a listing from the query: `prefix`, `limit` (an integer) and `cursor`. */
export function listOptions(url: string): { prefix?: string; limit?: number; cursor?: string } {
  const options: { prefix?: string; limit?: number; cursor?: string } = {};
  const prefix = queryParam(url, "prefix");
  const limit = queryParam(url, "limit");
  const cursor = queryParam(url, "cursor");
  if (prefix !== undefined) options.prefix = prefix;
  if (limit !== undefined) {
    if (!/^[0-9]{1,9}$/.test(limit)) {
      throw new InvalidArgumentError(`Bad limit: expected a whole number, found '${clip(limit)}'`);
    }
    options.limit = Number(limit);
  }
  if (cursor !== undefined) options.cursor = cursor;
  return options;
}
