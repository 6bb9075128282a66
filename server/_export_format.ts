// The file format of `purple export` and `purple import`: JSON Lines, version 1, stated in
// docs/export.md. A header line, one line per entry, an end line. Private to the server.
//
//   {"format":"purple-export","version":1,"exportedAt":"...","backend":"disk","source":"...","purple":"0.1.0"}
//   {"service":"cache","key":"greeting","value":"hi","ttlMs":59000}
//   {"service":"counters","key":"hits","value":"42"}
//   {"service":"flags","key":"beta","value":true}
//   {"service":"kv","key":"doc","value":"aGVsbG8="}
//   {"service":"sets","key":"team","value":["ann","bob"]}
//   {"end":"purple-export","entries":5}

import { Buffer } from "node:buffer";
import { clip } from "@purple/protocol/text";
import type { EntryService, Limits, StoredEntry } from "../backends/mod.ts";

/** The format's name, the `format` field of every header. */
export const FORMAT_NAME = "purple-export";

/** The version this Purple writes and reads. */
export const FORMAT_VERSION = 1;

/** The services, in the order an export writes them. */
export const ENTRY_SERVICES: readonly EntryService[] = ["cache", "counters", "flags", "kv", "sets"];

/** The first line of a file. */
export interface ExportHeader {
  format: typeof FORMAT_NAME;
  version: number;
  /** When the export started, ISO 8601 in UTC. */
  exportedAt: string;
  /** The kind of backend exported. */
  backend: string;
  /** Which one, in words (no password). */
  source: string;
  /** The version of the Purple that wrote it. */
  purple: string;
}

/** A line that is not what the format says, or says what this Purple cannot read. */
export class FormatError extends Error {
  /**
   * @param message What is wrong with the line, in one line.
   */
  constructor(message: string) {
    super(message);
    this.name = "FormatError";
  }
}

/** The header line (without its newline). */
export function headerLine(header: Omit<ExportHeader, "format" | "version">): string {
  return JSON.stringify({ format: FORMAT_NAME, version: FORMAT_VERSION, ...header });
}

/** The end line: how many entry lines come before it. */
export function endLine(entries: number): string {
  return JSON.stringify({ end: FORMAT_NAME, entries });
}

/** The line of an entry (without its newline). */
export function entryLine(entry: StoredEntry): string {
  const head = `{"service":"${entry.service}","key":${JSON.stringify(entry.key)},"value":`;
  switch (entry.service) {
    case "cache":
      return `${head}${JSON.stringify(entry.value)},"ttlMs":${entry.ttlMs}}`;
    case "counters":
      return `${head}"${entry.value}"}`;
    case "flags":
      return `${head}${entry.value}}`;
    case "kv": {
      const { buffer, byteOffset, byteLength } = entry.value;
      return `${head}"${Buffer.from(buffer, byteOffset, byteLength).toString("base64")}"}`;
    }
    case "sets":
      return `${head}${JSON.stringify(entry.value)}}`;
  }
}

/**
 * The longest line an entry within `limits` takes (JSON escapes a byte in 6 characters at
 * worst, `\u0001`); a longer line is refused before it is read whole.
 */
export function maxLineBytes(limits: Limits): number {
  const value = Math.max(
    6 * limits.maxValueBytes,
    limits.maxSetItems * (6 * limits.maxItemBytes + 3),
  );
  return 6 * limits.maxKeyBytes + value + 1024;
}

/**
 * Reads the first line: the header of a file this Purple reads.
 * @throws {FormatError} When it is not a header, or of another version.
 */
export function parseHeader(text: string): ExportHeader {
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    header = undefined;
  }
  const fields = (typeof header === "object" && header !== null ? header : {}) as Record<
    string,
    unknown
  >;
  if (fields.format !== FORMAT_NAME) {
    throw new FormatError(
      `it does not start with the header of a Purple export ({"format":"${FORMAT_NAME}","version":${FORMAT_VERSION},...})`,
    );
  }
  if (fields.version !== FORMAT_VERSION) {
    const version = typeof fields.version === "number"
      ? `version ${fields.version}`
      : `an unknown version (${JSON.stringify(fields.version) ?? "none"})`;
    throw new FormatError(
      `it is a Purple export of format ${version}, and this Purple reads version ${FORMAT_VERSION} only (import it with the Purple that wrote it, or a newer one)`,
    );
  }
  return fields as unknown as ExportHeader;
}

/** What a line after the header holds: an entry, or the end. */
export type Line = { entry: StoredEntry } | { end: number };

const DIGITS = /^-?(0|[1-9][0-9]*)$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function field(name: string, expected: string, found: unknown): FormatError {
  const what = found === undefined
    ? "none"
    : typeof found === "string"
    ? JSON.stringify(clip(found, 40))
    : Array.isArray(found)
    ? "a list"
    : found === null
    ? "null"
    : typeof found === "object"
    ? "an object"
    : `${found}`;
  return new FormatError(`"${name}" must be ${expected}, found ${what}`);
}

/**
 * Reads a line after the header: an entry (its shape only; the limits are `checkEntry`'s) or
 * the end line. Fields it does not know are ignored.
 * @throws {FormatError} When it is not an entry or the end line.
 */
export function parseLine(text: string): Line {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new FormatError(`not JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new FormatError("not a JSON object");
  }
  const line = parsed as Record<string, unknown>;
  if (!("service" in line) && "end" in line) {
    if (line.end !== FORMAT_NAME) throw field("end", `"${FORMAT_NAME}"`, line.end);
    const entries = line.entries;
    if (typeof entries !== "number" || !Number.isSafeInteger(entries) || entries < 0) {
      throw field("entries", "a whole number", entries);
    }
    return { end: entries };
  }
  const { service, key, value } = line;
  if (typeof service !== "string" || !(ENTRY_SERVICES as string[]).includes(service)) {
    throw field("service", `one of ${ENTRY_SERVICES.join(", ")}`, service);
  }
  if (typeof key !== "string") throw field("key", "a string", key);
  switch (service as EntryService) {
    case "cache": {
      if (typeof value !== "string") throw field("value", "a string", value);
      const ttlMs = line.ttlMs;
      if (ttlMs !== null && typeof ttlMs !== "number") {
        throw field("ttlMs", "a number of milliseconds, or null", ttlMs);
      }
      return { entry: { service: "cache", key, value, ttlMs } };
    }
    case "counters":
      if (typeof value !== "string" || !DIGITS.test(value)) {
        throw field("value", "a string of decimal digits (an int64)", value);
      }
      return { entry: { service: "counters", key, value: BigInt(value) } };
    case "flags":
      if (typeof value !== "boolean") throw field("value", "true or false", value);
      return { entry: { service: "flags", key, value } };
    case "kv": {
      if (typeof value !== "string" || !BASE64.test(value)) {
        throw field("value", "the bytes in base64", value);
      }
      const bytes = Buffer.from(value, "base64");
      return {
        entry: {
          service: "kv",
          key,
          value: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        },
      };
    }
    case "sets":
      if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
        throw field("value", "a list of strings", value);
      }
      return { entry: { service: "sets", key, value } };
  }
}
