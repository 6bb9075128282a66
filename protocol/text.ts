/**
 * Small text helpers that the clients, the servers and the backends all need, kept once: the
 * UTF-8 length of a string, quoting untrusted text for a message, the booleans Go's
 * `strconv.ParseBool` accepts (the original Purple's flags), and base64 in every runtime.
 *
 * @example
 * ```ts
 * import { clip, parseGoBool, quote, utf8Length } from "@purple/protocol/text";
 *
 * console.log(utf8Length("é")); // 2
 * console.log(quote("player1")); // "'player1'"
 * console.log(clip("x".repeat(100)).length); // 65
 * console.log(parseGoBool("T")); // true
 * ```
 *
 * @module
 */

/**
 * Counts the UTF-8 bytes of a string without encoding it, as `TextEncoder` writes them (a lone
 * surrogate becomes U+FFFD, 3 bytes; Purple refuses such strings before counting anyway).
 *
 * @param value Any string.
 * @returns Its length in UTF-8 bytes.
 *
 * @example
 * ```ts
 * import { utf8Length } from "@purple/protocol/text";
 *
 * console.log(utf8Length("a€😀")); // 8
 * ```
 */
export function utf8Length(value: string): number {
  let bytes = value.length;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) bytes += 1;
    else if (unit >= 0xd800 && unit <= 0xdbff && isLowSurrogate(value.charCodeAt(i + 1))) {
      bytes += 2; // Two units, four bytes.
      i++;
    } else bytes += 2;
  }
  return bytes;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/**
 * Shortens untrusted text for a message: at most `max` characters, then `…`.
 *
 * @param text The text.
 * @param max The most characters kept. Default 64.
 * @returns The text, or its beginning and `…`.
 *
 * @example
 * ```ts
 * import { clip } from "@purple/protocol/text";
 *
 * console.log(clip("abcdef", 3)); // "abc…"
 * ```
 */
export function clip(text: string, max = 64): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/**
 * Quotes a key (or any name) for a message, cut to a readable length.
 *
 * @param key The key.
 * @returns `'key'`, with at most 64 characters of it.
 *
 * @example
 * ```ts
 * import { quote } from "@purple/protocol/text";
 *
 * console.log(quote("player1")); // "'player1'"
 * ```
 */
export function quote(key: string): string {
  return `'${clip(key)}'`;
}

const GO_TRUE: ReadonlySet<string> = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const GO_FALSE: ReadonlySet<string> = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/**
 * The texts Go's `strconv.ParseBool` accepts, as the original Purple read flags, in its order.
 *
 * @example
 * ```ts
 * import { GO_BOOLEANS } from "@purple/protocol/text";
 *
 * console.log(GO_BOOLEANS.join(" ")); // "1 t T TRUE true True 0 f F FALSE false False"
 * ```
 */
export const GO_BOOLEANS: readonly string[] = Object.freeze([...GO_TRUE, ...GO_FALSE]);

/**
 * Reads a boolean as Go's `strconv.ParseBool` does.
 *
 * @param text The text.
 * @returns `true` or `false`, or `undefined` when the text is neither.
 *
 * @example
 * ```ts
 * import { parseGoBool } from "@purple/protocol/text";
 *
 * console.log(parseGoBool("FALSE"), parseGoBool("yes")); // false undefined
 * ```
 */
export function parseGoBool(text: string): boolean | undefined {
  if (GO_TRUE.has(text)) return true;
  if (GO_FALSE.has(text)) return false;
  return undefined;
}

/**
 * Bytes as standard base64 (with padding), as the JSON of batches and watch changes carries KV
 * values. Works in every runtime (no `Buffer`), on values of any size.
 *
 * @example
 * ```ts
 * import { toBase64 } from "@purple/protocol/text";
 *
 * console.log(toBase64(new Uint8Array([1, 2, 255]))); // "AQL/"
 * ```
 */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * The bytes of standard base64 text (the inverse of {@linkcode toBase64}).
 * @throws {DOMException} When the text is not base64.
 *
 * @example
 * ```ts
 * import { fromBase64 } from "@purple/protocol/text";
 *
 * console.log(fromBase64("AQL/")); // Uint8Array(3) [ 1, 2, 255 ]
 * ```
 */
export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
