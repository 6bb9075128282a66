// `purple export` and `purple import`: every entry of a backend to JSON Lines, and back (the
// format: _export_format.ts, docs/export.md). Not network operations: they open the configured
// backend directly, as serving it would. Both stream: an export holds one page of entries at a
// time, an import two batches of lines (one being written while the next is read), so memory
// stays flat whatever the number of entries. Private to the server; cli.ts runs them.

import { PurpleError } from "@purple/protocol/errors";
import { quote } from "@purple/protocol/text";
import { checkEntry, type EntryService, RestoreError, type StoredEntry } from "../backends/mod.ts";
import { type BackendConfig, type ExportConfig, type ImportConfig, VERSION } from "./config.ts";
import {
  describeBackend,
  fail,
  isSystemError,
  openConfiguredBackend,
  seconds,
  type Signals,
  signals,
} from "./serve.ts";
import {
  endLine,
  ENTRY_SERVICES,
  entryLine,
  FormatError,
  headerLine,
  type Line,
  maxLineBytes,
  parseHeader,
  parseLine,
} from "./_export_format.ts";

/** The most entries, and about the most bytes of lines, an import writes at once. */
const BATCH_ENTRIES = 1000;
const BATCH_BYTES = 8 * 1024 * 1024;

/** How often the progress line is redrawn at most, in ms. */
const PROGRESS_MS = 250;

/** How many skipped lines or keys the summary names. */
const NAMED = 5;

/** Output is written in pieces of about this many characters. */
const WRITE_CHARS = 1024 * 1024;

const encoder = new TextEncoder();

/** An export or import that stops: its one line, and exit code 1. */
class Stop extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "Stop";
  }
}

/** Where bytes are written: stdout, or a file. */
interface Sink {
  write(bytes: Uint8Array): Promise<number>;
  close?(): void;
}

/** The progress line on stderr, when stderr is a terminal: redrawn a few times a second. */
class Progress {
  #on = Deno.stderr.isTerminal();
  #shown = false;
  #last = 0;
  #started = performance.now();

  /** Redraws the line, unless it was drawn less than `PROGRESS_MS` ago. */
  update(verb: string, entries: number, bytes: number): void {
    if (!this.#on) return;
    const now = performance.now();
    if (now - this.#last < PROGRESS_MS) return;
    this.#last = now;
    const rate = entries / Math.max((now - this.#started) / 1000, 0.001);
    this.#write(`\r${verb} ${count(entries)} entries, ${count(rate)}/s, ${megabytes(bytes)}\x1b[K`);
    this.#shown = true;
  }

  /** Erases the line (before the summary or an error). */
  clear(): void {
    if (this.#shown) this.#write("\r\x1b[K");
    this.#shown = false;
  }

  #write(text: string): void {
    try {
      Deno.stderr.writeSync(encoder.encode(text));
    } catch {
      this.#on = false;
    }
  }
}

/** `1 entry`, `2 entries`. */
function entriesText(entries: number): string {
  return `${count(entries)} ${entries === 1 ? "entry" : "entries"}`;
}

function count(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Entries by service, as the summary says them. */
function byService(counts: Record<EntryService, number>): string {
  return ENTRY_SERVICES.map((service) => `${service} ${count(counts[service])}`).join(", ");
}

function zeroCounts(): Record<EntryService, number> {
  return { cache: 0, counters: 0, flags: 0, kv: 0, sets: 0 };
}

/**
 * SIGINT and SIGTERM, as serving takes them (`signals()` of serve.ts): the first is noted for the
 * loops to stop at; a second exits at once, but for the same Ctrl+C delivered again by a launcher.
 * Its line goes to stderr (stdout may carry the export), after the progress line is erased.
 */
function stopSignals(progress: Progress): Signals {
  return signals((line) => {
    progress.clear();
    console.error(line);
  });
}

/** Writes all of `bytes`. */
async function writeAll(writer: Sink, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await writer.write(bytes.subarray(at));
}

/**
 * Where an export goes: stdout, or a file written under a temporary name beside it and renamed
 * once complete (a failed export leaves no file behind).
 */
class Output {
  /** What it is, for messages. */
  readonly name: string;
  /** Bytes written so far. */
  bytes = 0;
  #writer: Sink;
  #temp?: string;
  #target?: string;
  #parts: string[] = [];
  #chars = 0;

  private constructor(name: string, writer: Sink, temp?: string, target?: string) {
    this.name = name;
    this.#writer = writer;
    this.#temp = temp;
    this.#target = target;
  }

  static async open(path: string | undefined): Promise<Output> {
    if (path === undefined || path === "-") return new Output("stdout", Deno.stdout);
    const temp = `${path}.partial-${Deno.pid}`;
    const file = await Deno.open(temp, { write: true, create: true, truncate: true });
    return new Output(quote(path), file, temp, path);
  }

  async line(text: string): Promise<void> {
    this.#parts.push(text, "\n");
    this.#chars += text.length + 1;
    if (this.#chars >= WRITE_CHARS) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#parts.length === 0) return;
    const bytes = encoder.encode(this.#parts.join(""));
    this.#parts = [];
    this.#chars = 0;
    await writeAll(this.#writer, bytes);
    this.bytes += bytes.length;
  }

  /** Writes what is left, and gives the file its name. */
  async finish(): Promise<void> {
    await this.flush();
    if (this.#temp === undefined) return;
    this.#writer.close?.();
    await Deno.rename(this.#temp, this.#target!);
    this.#temp = undefined;
  }

  /** Removes the temporary file, if any. */
  async abort(): Promise<void> {
    if (this.#temp === undefined) return;
    try {
      this.#writer.close?.();
    } catch { /* already closed */ }
    await Deno.remove(this.#temp).catch(() => {});
    this.#temp = undefined;
  }
}

/**
 * Runs `purple export`: writes the header, every entry of the backend, and the end line, to
 * stdout or the `--output` file; the summary on stderr.
 *
 * @param config The backend, the output, `--skip-bad`.
 * @returns 0 when complete; 1 when it stopped (a key Purple cannot read, without
 * `--skip-bad`; a backend or output failure); 2 when the backend or the file cannot be opened.
 */
export async function runExport(config: ExportConfig): Promise<number> {
  const started = performance.now();
  const exportedAt = new Date().toISOString();
  let output: Output;
  try {
    output = await Output.open(config.output);
  } catch (error) {
    if (isSystemError(error)) {
      return fail(`Cannot write ${quote(config.output!)}: ${error.message}`);
    }
    throw error;
  }
  const missing = await missingDatabase(config);
  if (missing !== undefined) {
    await output.abort();
    return fail(missing);
  }
  const ops = await openConfiguredBackend(config);
  if (typeof ops === "number") {
    await output.abort();
    return ops;
  }
  const counts = zeroCounts();
  const skipped: string[] = [];
  let entries = 0;
  const progress = new Progress();
  const stop = stopSignals(progress);
  try {
    await output.line(headerLine({
      exportedAt,
      backend: config.backend,
      source: describeBackend(config),
      purple: VERSION,
    }));
    for await (const page of ops.exportEntries()) {
      for (const { service, key, reason } of page.unreadable) {
        if (!config.skipBad) {
          throw new Stop(
            `Cannot export ${service} key ${
              quote(key)
            }: ${reason} (with --skip-bad, such keys are left out and counted)`,
          );
        }
        skipped.push(`${service} ${quote(key)} (${reason})`);
      }
      for (const entry of page.entries) {
        await output.line(entryLine(entry));
        counts[entry.service]++;
        entries++;
      }
      progress.update("Exported", entries, output.bytes);
      const signal = stop.first();
      if (signal !== undefined) {
        throw new Stop(
          `Stopped by ${signal}: the export is not complete (${count(entries)} entries read)`,
        );
      }
    }
    await output.line(endLine(entries));
    await output.finish();
  } catch (error) {
    progress.clear();
    await output.abort();
    await ops.close().catch(() => {});
    stop.dispose();
    if (error instanceof Stop) return fail(error.message, 1);
    if (error instanceof PurpleError) return fail(`Cannot export: ${error.message}`, 1);
    if (isSystemError(error)) {
      return fail(`Cannot write the export to ${output.name}: ${error.message}`, 1);
    }
    throw error;
  }
  progress.clear();
  stop.dispose();
  await ops.close();
  const elapsed = performance.now() - started;
  const rate = entries / Math.max(elapsed / 1000, 0.001);
  console.error(
    `Exported ${entriesText(entries)} (${byService(counts)}) from the ${
      describeBackend(config)
    } to ${output.name} in ${seconds(elapsed)}: ${count(rate)} entries/s, ${
      megabytes(output.bytes)
    }${leftOut(skipped, "left out", "key")}`,
  );
  return 0;
}

/**
 * Why an export of the disk backend would read nothing: its database file is missing (opening
 * it would create an empty one, and a mistyped `--data-dir` would export nothing).
 */
async function missingDatabase(config: BackendConfig): Promise<string | undefined> {
  if (config.backend !== "disk") return undefined;
  // Imported here, as backends/mod.ts does: only the disk backend needs its module.
  const { DISK_FILE_NAME } = await import("../backends/disk.ts");
  const file = `${config.dataDir}/${DISK_FILE_NAME}`;
  try {
    await Deno.stat(file);
    return undefined;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) return undefined; // Opening it will say why.
    return `Cannot export the disk backend in ${config.dataDir}: there is no database there (${
      quote(file)
    } does not exist)`;
  }
}

/** The summary's note of what was skipped, naming the first few. */
function leftOut(skipped: string[], verb: string, what: string): string {
  if (skipped.length === 0) return "";
  const more = skipped.length > NAMED ? `, and ${skipped.length - NAMED} more` : "";
  return `; ${verb} ${count(skipped.length)} ${what}${skipped.length === 1 ? "" : "s"}: ${
    skipped.slice(0, NAMED).join(", ")
  }${more}`;
}

/** One line of the input: its bytes, or only its length when longer than the limit. */
interface InputLine {
  bytes?: Uint8Array;
  length: number;
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

/**
 * The lines of a stream, without their newlines; a line longer than `maxBytes` is not kept
 * (only its length), so that memory stays bounded whatever the input.
 */
async function* readLines(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
): AsyncGenerator<InputLine> {
  let parts: Uint8Array[] = [];
  let length = 0;
  let tooLong = false;
  for await (const chunk of stream) {
    let start = 0;
    while (start <= chunk.length) {
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline;
      if (!tooLong && length + end - start > maxBytes) {
        tooLong = true;
        parts = [];
      }
      // A piece that continues in the next chunk is copied: the stream may reuse its buffer.
      if (!tooLong && end > start) {
        parts.push(newline === -1 ? chunk.slice(start, end) : chunk.subarray(start, end));
      }
      length += end - start;
      if (newline === -1) break;
      yield tooLong ? { length } : { bytes: concat(parts, length), length };
      parts = [];
      length = 0;
      tooLong = false;
      start = newline + 1;
    }
  }
  if (length > 0) yield tooLong ? { length } : { bytes: concat(parts, length), length };
}

/** Opens the input: stdin, or a file. */
async function openInput(
  input: string | undefined,
): Promise<{ name: string; stream: ReadableStream<Uint8Array> }> {
  if (input === undefined || input === "-") return { name: "stdin", stream: Deno.stdin.readable };
  const file = await Deno.open(input, { read: true });
  return { name: quote(input), stream: file.readable };
}

/**
 * Runs `purple import [FILE]`: checks the header, then each line (its shape, then the limits,
 * as the operations check their input) and writes the entries in batches; the summary on
 * stderr.
 *
 * @param config The backend (and its limits), the input, `--skip-bad`.
 * @returns 0 when every line was imported (or skipped with `--skip-bad`); 1 when it stopped
 * (a bad line, a refused entry, an unknown version, a file cut short, a backend failure);
 * 2 when the file or the backend cannot be opened.
 */
export async function runImport(config: ImportConfig): Promise<number> {
  const started = performance.now();
  if ((config.input === undefined || config.input === "-") && Deno.stdin.isTerminal()) {
    return fail(
      "Cannot import from stdin: it is a terminal; give FILE, or pipe an export in (purple export | purple import)",
    );
  }
  let input: { name: string; stream: ReadableStream<Uint8Array> };
  try {
    input = await openInput(config.input);
  } catch (error) {
    if (isSystemError(error)) return fail(`Cannot read ${quote(config.input!)}: ${error.message}`);
    throw error;
  }
  const ops = await openConfiguredBackend(config);
  if (typeof ops === "number") {
    await input.stream.cancel().catch(() => {});
    return ops;
  }
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const limits = config.limits;
  const maxBytes = maxLineBytes(limits);
  const counts = zeroCounts();
  const skipped: string[] = [];
  let imported = 0;
  let bytesRead = 0;
  let entryLines = 0;
  let end: { line: number; entries: number } | undefined;
  let lineNumber = 0;
  // The batch being read, and the one being written.
  let batch: StoredEntry[] = [];
  let batchLines: number[] = [];
  let batchBytes = 0;
  let writing: Promise<void> | undefined;
  let failure: Stop | undefined;
  const progress = new Progress();
  const stop = stopSignals(progress);

  const imports = () =>
    `${entriesText(imported)} before it ${imported === 1 ? "was" : "were"} imported`;

  /** Waits for the batch being written; a failure stops the import. */
  const settle = async () => {
    await writing;
    writing = undefined;
    if (failure !== undefined) throw failure;
  };
  /** Writes the batch read so far (while the next one is read). */
  const flush = async () => {
    await settle();
    if (batch.length === 0) return;
    const [entries, lines] = [batch, batchLines];
    [batch, batchLines, batchBytes] = [[], [], 0];
    writing = ops.restore(entries).then(() => {
      for (const entry of entries) counts[entry.service]++;
      imported += entries.length;
    }, (error) => {
      if (!(error instanceof RestoreError) || !(error.cause instanceof PurpleError)) {
        const message = `Cannot import ${input.name}: ${(error as Error).message}`;
        failure = new Stop(message, { cause: error });
        return;
      }
      imported += error.index; // The entries of the batch before it were written.
      const last = lines.at(-1)!;
      failure = new Stop(
        `Cannot import line ${
          lines[error.index]
        } of ${input.name}: ${error.cause.message} (the ${imports()}; lines after it, up to line ${last}, may be too)`,
      );
    });
  };
  /** A line that cannot be imported: skipped with --skip-bad, else the import stops there. */
  const bad = async (reason: string) => {
    if (config.skipBad) {
      skipped.push(`line ${lineNumber} (${reason})`);
      return;
    }
    await flush();
    await settle();
    throw new Stop(
      `Cannot import line ${lineNumber} of ${input.name}: ${reason}; the ${imports()}`,
    );
  };

  try {
    for await (const { bytes, length } of readLines(input.stream, maxBytes)) {
      lineNumber++;
      bytesRead += length + 1;
      let text: string;
      if (bytes === undefined) {
        if (lineNumber === 1) {
          throw new Stop(`Cannot import ${input.name}: its first line is not a header`);
        }
        entryLines++;
        await bad(
          `it is longer than ${maxBytes} bytes, more than any entry within the limits takes`,
        );
        continue;
      }
      try {
        text = decoder.decode(bytes);
      } catch {
        if (lineNumber === 1) throw new Stop(`Cannot import ${input.name}: it is not UTF-8 text`);
        if (end === undefined) entryLines++;
        await bad("it is not UTF-8");
        continue;
      }
      if (lineNumber === 1) {
        try {
          parseHeader(text);
        } catch (error) {
          if (error instanceof FormatError) {
            throw new Stop(`Cannot import ${input.name}: ${error.message}`);
          }
          throw error;
        }
        continue;
      }
      if (text.trim() === "") continue;
      if (end !== undefined) {
        await bad(`it comes after the end line (line ${end.line})`);
        continue;
      }
      let line: Line;
      try {
        line = parseLine(text);
      } catch (error) {
        if (!(error instanceof FormatError)) throw error;
        entryLines++;
        await bad(error.message);
        continue;
      }
      if ("end" in line) {
        end = { line: lineNumber, entries: line.end };
        continue;
      }
      entryLines++;
      let entry: StoredEntry;
      try {
        entry = checkEntry(line.entry, limits);
      } catch (error) {
        if (!(error instanceof PurpleError)) throw error;
        await bad(error.message);
        continue;
      }
      batch.push(entry);
      batchLines.push(lineNumber);
      batchBytes += length;
      if (batch.length >= BATCH_ENTRIES || batchBytes >= BATCH_BYTES) {
        await flush();
        progress.update("Imported", imported, bytesRead);
        const signal = stop.first();
        if (signal !== undefined) {
          await settle();
          throw new Stop(
            `Stopped by ${signal} at line ${lineNumber} of ${input.name}: the ${imports()}`,
          );
        }
      }
    }
    await flush();
    await settle();
    if (lineNumber === 0) {
      throw new Stop(
        `Cannot import ${input.name}: it is empty (a Purple export starts with its header line)`,
      );
    }
    if (end === undefined) {
      throw new Stop(
        `Cannot import ${input.name}: it ends at line ${lineNumber} without its end line ({"end":"purple-export",...}): it was cut short (${
          entriesText(imported)
        } imported)`,
      );
    }
    if (end.entries !== entryLines) {
      throw new Stop(
        `Cannot import ${input.name}: its end line (line ${end.line}) counts ${
          count(end.entries)
        } entries, but ${
          count(entryLines)
        } entry lines come before it: lines are missing or added (${
          entriesText(imported)
        } imported)`,
      );
    }
  } catch (error) {
    progress.clear();
    await writing;
    await input.stream.cancel().catch(() => {});
    await ops.close().catch(() => {});
    stop.dispose();
    if (error instanceof Stop) return fail(error.message, 1);
    if (error instanceof PurpleError) {
      return fail(`Cannot import ${input.name}: ${error.message}`, 1);
    }
    if (isSystemError(error)) return fail(`Cannot read ${input.name}: ${error.message}`, 1);
    throw error;
  }
  progress.clear();
  stop.dispose();
  await ops.close();
  const elapsed = performance.now() - started;
  const rate = imported / Math.max(elapsed / 1000, 0.001);
  const dryRun = config.backend === "memory"
    ? " (the memory backend keeps nothing once this process ends: the file was checked, no more)"
    : "";
  console.error(
    `Imported ${entriesText(imported)} (${byService(counts)}) from ${input.name} into the ${
      describeBackend(config)
    } in ${seconds(elapsed)}: ${count(rate)} entries/s, ${megabytes(bytesRead)}${
      leftOut(skipped, "skipped", "bad line")
    }${dryRun}`,
  );
  return 0;
}
