/**
 * Protocol Buffers wire format, the small part Purple's messages need: varints (uint32, int32,
 * int64 as `bigint`, bool), length-delimited fields (strings, bytes, messages) and skipping of
 * unknown fields. Shared by the gRPC server and `GrpcClient`; see `_grpc_messages.ts`.
 *
 * Writers are sized exactly before writing (each message computes its size first), so a
 * message is one allocation. Readers throw `InvalidArgumentError` on anything malformed:
 * truncated input, a bad wire type, a string that is not UTF-8.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { InvalidArgumentError } from "./errors.ts";

/** Bytes a varint of a uint32 takes. */
export function uint32Size(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

/** Bytes an int32 takes (a negative one is sign-extended to 10 bytes). */
export function int32Size(value: number): number {
  return value < 0 ? 10 : uint32Size(value);
}

/** Bytes an int64 takes. */
export function int64Size(value: bigint): number {
  if (value >= 0n && value < 0x10000000n) return uint32Size(Number(value));
  let rest = BigInt.asUintN(64, value);
  let size = 1;
  while (rest > 0x7fn) {
    rest >>= 7n;
    size++;
  }
  return size;
}

/**
 * Counts the UTF-8 bytes of a string as `TextEncoder` would write them (a lone surrogate
 * becomes U+FFFD, 3 bytes; callers refuse such strings before encoding anyway).
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

/** Bytes a length-delimited field of `length` bytes takes, key included. */
export function lenFieldSize(length: number): number {
  return 1 + uint32Size(length) + length;
}

const encoder = new TextEncoder();
const LONG_STRING = 48;

/** Writes fields into a buffer of the exact size of the message. */
export class Writer {
  /** The message; `Buffer` because grpc-js frames it with Buffer methods. */
  readonly buffer: Buffer;
  #pos = 0;

  /** @param size The exact size of the message, in bytes. */
  constructor(size: number) {
    this.buffer = Buffer.allocUnsafe(size);
  }

  /** Returns the message, checking that it was filled exactly. */
  finish(): Buffer {
    if (this.#pos !== this.buffer.length) {
      throw new Error(
        `Cannot encode message: sized ${this.buffer.length} bytes, wrote ${this.#pos}`,
      );
    }
    return this.buffer;
  }

  /** Writes a varint of a uint32 (tags, lengths, non-negative int32, enums, bools). */
  uint32(value: number): void {
    const buffer = this.buffer;
    let pos = this.#pos;
    while (value > 0x7f) {
      buffer[pos++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buffer[pos++] = value;
    this.#pos = pos;
  }

  /** Writes an int32 varint (a negative one as 10 bytes, as protobuf requires). */
  int32(value: number): void {
    if (value >= 0) this.uint32(value);
    else this.int64(BigInt(value));
  }

  /** Writes an int64 varint, exactly. */
  int64(value: bigint): void {
    if (value >= 0n && value <= 0x7fffffffn) return this.uint32(Number(value));
    let rest = BigInt.asUintN(64, value);
    const buffer = this.buffer;
    while (rest > 0x7fn) {
      buffer[this.#pos++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    buffer[this.#pos++] = Number(rest);
  }

  /** Writes a string's length and UTF-8 bytes; `length` is its {@linkcode utf8Length}. */
  string(value: string, length: number): void {
    this.uint32(length);
    const buffer = this.buffer;
    let pos = this.#pos;
    if (length === value.length && length < LONG_STRING) {
      for (let i = 0; i < length; i++) buffer[pos++] = value.charCodeAt(i);
    } else {
      encoder.encodeInto(value, buffer.subarray(pos, pos + length));
      pos += length;
    }
    this.#pos = pos;
  }

  /** Writes a byte string's length and content. */
  bytes(value: Uint8Array): void {
    this.uint32(value.length);
    this.buffer.set(value, this.#pos);
    this.#pos += value.length;
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Reads fields from a message (or from an embedded message within one). */
export class Reader {
  /** The bytes being read. */
  readonly bytes: Uint8Array;
  /** Where the next field starts. */
  pos: number;
  /** Where this (embedded) message ends. */
  readonly end: number;

  /**
   * @param bytes The bytes.
   * @param start Where the message starts.
   * @param end Where it ends.
   */
  constructor(bytes: Uint8Array, start = 0, end: number = bytes.length) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
  }

  /** Whether fields remain. */
  more(): boolean {
    return this.pos < this.end;
  }

  #byte(): number {
    if (this.pos >= this.end) throw malformed("truncated varint");
    return this.bytes[this.pos++];
  }

  /** Reads a varint and returns its low 32 bits, unsigned (tags, lengths, enums). */
  uint32(): number {
    let value = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      const byte = this.#byte();
      if (shift < 32) value |= (byte & 0x7f) << shift;
      if (byte < 0x80) return value >>> 0;
    }
    throw malformed("varint longer than 10 bytes");
  }

  /** Reads an int32 varint (the low 32 bits, signed). */
  int32(): number {
    return this.uint32() | 0;
  }

  /** Reads an int64 varint, exactly. */
  int64(): bigint {
    const start = this.pos;
    const first = this.uint32();
    if (this.pos - start <= 4) return BigInt(first); // At most 28 bits: a small positive value.
    let value = 0n;
    for (let i = start, shift = 0n; i < this.pos; i++, shift += 7n) {
      value |= BigInt(this.bytes[i] & 0x7f) << shift;
    }
    return BigInt.asIntN(64, value);
  }

  /** Reads a bool varint: anything but 0 is true. */
  bool(): boolean {
    let any = 0;
    for (let i = 0; i < 10; i++) {
      const byte = this.#byte();
      any |= byte & 0x7f;
      if (byte < 0x80) return any !== 0;
    }
    throw malformed("varint longer than 10 bytes");
  }

  /** Reads a length and returns where the content ends, after checking it is all there. */
  #len(): number {
    const length = this.uint32();
    const end = this.pos + length;
    if (end > this.end) throw malformed("truncated length-delimited field");
    return end;
  }

  /** Reads a UTF-8 string; refuses bytes that are not UTF-8. */
  string(): string {
    const end = this.#len();
    const bytes = this.bytes;
    let start = this.pos;
    this.pos = end;
    if (end - start < LONG_STRING) {
      let ascii = "";
      for (; start < end && bytes[start] < 0x80; start++) {
        ascii += String.fromCharCode(bytes[start]);
      }
      if (start === end) return ascii;
      return ascii + utf8(bytes.subarray(start, end));
    }
    return utf8(bytes.subarray(start, end));
  }

  /** Reads a byte string, as a view of the message (no copy). */
  bytesView(): Uint8Array {
    const end = this.#len();
    const view = new Uint8Array(
      this.bytes.buffer,
      this.bytes.byteOffset + this.pos,
      end - this.pos,
    );
    this.pos = end;
    return view;
  }

  /** Reads an embedded message's bounds: a reader over its content. */
  message(): Reader {
    const end = this.#len();
    const reader = new Reader(this.bytes, this.pos, end);
    this.pos = end;
    return reader;
  }

  /** Skips the value of a field this reader does not know. */
  skip(key: number): void {
    switch (key & 7) {
      case 0:
        this.uint32();
        return;
      case 1:
        this.#advance(8);
        return;
      case 2:
        this.pos = this.#len();
        return;
      case 5:
        this.#advance(4);
        return;
      default:
        throw malformed(`unsupported wire type ${key & 7}`);
    }
  }

  #advance(count: number): void {
    if (this.pos + count > this.end) throw malformed("truncated fixed-size field");
    this.pos += count;
  }
}

function utf8(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch (cause) {
    throw new InvalidArgumentError("Bad message: a string field is not valid UTF-8", { cause });
  }
}

function malformed(detail: string): InvalidArgumentError {
  return new InvalidArgumentError(`Bad message: ${detail}`);
}
