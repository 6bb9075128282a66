/**
 * Batches in JSON, as `POST /batch` carries them: each operation an object naming the operation
 * and its arguments by their names in the operation table (`params`), each outcome `{ "value":
 * ... }` or `{ "error": { "code": ..., "message": ... } }`. The types follow the table's
 * `ParamType` and `ResultType`: int64 values are strings of digits (exact), bytes are
 * `{ "base64": "..." }` (a KV value may also be a string, its UTF-8 bytes).
 *
 * Used by the HTTP server and `HttpClient`; it has no dependency.
 *
 * @example
 * ```ts
 * import { batchToJson } from "@purple/protocol/batch-json";
 *
 * console.log(JSON.stringify(batchToJson([{ op: "counterIncrement", args: ["hits", 2n] }])));
 * // {"operations":[{"op":"counterIncrement","key":"hits","amount":"2"}]}
 * ```
 *
 * @module
 */

import type {
  BatchableName,
  BatchOperation,
  BatchOptions,
  BatchOutcome,
  KeyPage,
  KvEntry,
} from "./operations.ts";
import { OPERATIONS, type OperationSpec, type ResultType } from "./operation_table.ts";
import {
  type ErrorCode,
  errorFromCode,
  HTTP_STATUS,
  InternalError,
  InvalidArgumentError,
} from "./errors.ts";
import { fromBase64, toBase64 } from "./text.ts";
import { describe } from "./validate.ts";

/**
 * A batch as JSON: `{ "operations": [...], "atomic": true }`.
 *
 * @example
 * ```ts
 * import type { BatchJson } from "@purple/protocol/batch-json";
 *
 * const body: BatchJson = { operations: [{ op: "flagGet", key: "beta" }] };
 * console.log(body);
 * ```
 */
export interface BatchJson {
  /** The operations, each `{ "op": name, ...arguments }`. */
  operations: Array<Record<string, unknown>>;
  /** All or nothing. */
  atomic?: boolean;
}

/**
 * The outcomes of a batch as JSON: `{ "results": [{ "value": ... } | { "error": ... }] }`.
 *
 * @example
 * ```ts
 * import type { OutcomesJson } from "@purple/protocol/batch-json";
 *
 * const body: OutcomesJson = { results: [{ value: "3" }, { error: { code: "NOT_FOUND", message: "gone" } }] };
 * console.log(body.results.length); // 2
 * ```
 */
export interface OutcomesJson {
  /** One per operation, in order. */
  results: Array<{ value: unknown } | { error: { code: string; message: string } }>;
}

/** The bytes of a batch's base64 text, or `InvalidArgumentError` naming what it is. */
function bytesOf(text: string, what: string): Uint8Array {
  try {
    return fromBase64(text);
  } catch {
    throw new InvalidArgumentError(`Bad batch: ${what} is not base64`);
  }
}

/** An argument as JSON (the client's side). */
function argumentToJson(value: unknown): unknown {
  if (value instanceof Uint8Array) return { base64: toBase64(value) };
  if (typeof value === "bigint") return String(value);
  return value;
}

/** An argument from JSON (the server's side; the operation's own checks come after). */
function argumentFromJson(value: unknown, type: string, what: string): unknown {
  if (type === "int64" && typeof value === "string" && /^[+-]?[0-9]{1,20}$/.test(value)) {
    return BigInt(value);
  }
  if (type === "bytes" && typeof value === "object" && value !== null && "base64" in value) {
    const text = (value as { base64: unknown }).base64;
    if (typeof text !== "string") throw new InvalidArgumentError(`Bad batch: ${what}.base64`);
    return bytesOf(text, what);
  }
  return value;
}

function spec(op: string): OperationSpec {
  return OPERATIONS[op as BatchableName];
}

/**
 * A batch as JSON, as `HttpClient` sends it.
 *
 * @param operations The operations (checked by the caller).
 * @param options `atomic`.
 * @returns The request body.
 *
 * @example
 * ```ts
 * import { batchToJson } from "@purple/protocol/batch-json";
 *
 * const body = batchToJson([{ op: "kvPut", args: ["k", new Uint8Array([1])] }], { atomic: true });
 * console.log(body.atomic, body.operations[0].value); // true { base64: "AQ==" }
 * ```
 */
export function batchToJson(
  operations: readonly BatchOperation[],
  options?: BatchOptions,
): BatchJson {
  const json: BatchJson = {
    operations: operations.map(({ op, args }) => {
      const object: Record<string, unknown> = { op };
      spec(op).params.forEach(([name], i) => {
        if (args[i] !== undefined) object[name] = argumentToJson(args[i]);
      });
      return object;
    }),
  };
  if (options?.atomic) json.atomic = true;
  return json;
}

/**
 * A batch from JSON, as the HTTP server reads it: each operation's arguments by name, in the
 * order of its parameters; an unknown operation or argument is refused.
 *
 * @param body The parsed request body.
 * @returns The operations and the options.
 * @throws {InvalidArgumentError} When the body is not a batch.
 *
 * @example
 * ```ts
 * import { batchFromJson } from "@purple/protocol/batch-json";
 *
 * const { operations } = batchFromJson({ operations: [{ op: "counterGet", key: "hits" }] });
 * console.log(operations); // [{ op: "counterGet", args: ["hits"] }]
 * ```
 */
export function batchFromJson(
  body: unknown,
): { operations: BatchOperation[]; options: BatchOptions } {
  const { operations, atomic = false } =
    (typeof body === "object" && body !== null ? body : {}) as {
      operations?: unknown;
      atomic?: unknown;
    };
  if (!Array.isArray(operations) || typeof atomic !== "boolean") {
    throw new InvalidArgumentError(
      'Bad batch: expected {"operations": [{"op": "...", ...}], "atomic": false}, found ' +
        describe(body),
    );
  }
  return {
    operations: operations.map((operation, index) => operationFromJson(operation, index)),
    options: { atomic },
  };
}

function operationFromJson(operation: unknown, index: number): BatchOperation {
  const what = `operation ${index}`;
  if (typeof operation !== "object" || operation === null || Array.isArray(operation)) {
    throw new InvalidArgumentError(`Bad batch: ${what} is ${describe(operation)}, not an object`);
  }
  const { op, ...named } = operation as Record<string, unknown>;
  const table = spec(String(op));
  if (typeof op !== "string" || !Object.hasOwn(OPERATIONS, op) || table.batch === false) {
    throw new InvalidArgumentError(
      `Bad batch: ${what} names no operation a batch may hold (found op ${describe(op)})`,
    );
  }
  const params = table.params;
  for (const name of Object.keys(named)) {
    if (!params.some(([param]) => param === name)) {
      throw new InvalidArgumentError(
        `Bad batch: ${what} (${op}) has no argument '${name}' (its arguments: ${
          params.map(([param]) => param).join(", ")
        })`,
      );
    }
  }
  const args = params.map(([name, type]) => argumentFromJson(named[name], type, `${what}.${name}`));
  while (args.length > 0 && args.at(-1) === undefined) args.pop();
  return { op, args } as unknown as BatchOperation;
}

/** A result as JSON, by its type in the table. */
function resultToJson(value: unknown, type: ResultType): unknown {
  switch (type) {
    case "void":
      return null;
    case "int64":
      return String(value);
    case "bytes":
      return { base64: toBase64(value as Uint8Array) };
    case "entry": {
      const entry = value as KvEntry;
      return { value: { base64: toBase64(entry.value) }, version: entry.version };
    }
    case "page": {
      const page = value as KeyPage;
      return page.cursor === undefined ? { keys: page.keys } : page;
    }
    default:
      return value;
  }
}

/** A result from JSON, by its type in the table (the client's side). */
function resultFromJson(value: unknown, type: ResultType, what: string): unknown {
  const bytes = (json: unknown) => {
    const text = (json as { base64?: unknown } | null)?.base64;
    if (typeof text !== "string") throw new InternalError(`Cannot read ${what}: expected base64`);
    return bytesOf(text, what);
  };
  switch (type) {
    case "void":
      return undefined;
    case "int64":
      if (typeof value !== "string" || !/^-?[0-9]+$/.test(value)) {
        throw new InternalError(`Cannot read ${what}: expected an integer as a string`);
      }
      return BigInt(value);
    case "bytes":
      return bytes(value);
    case "entry": {
      const entry = value as { value?: unknown; version?: unknown } | null;
      if (typeof entry?.version !== "string") {
        throw new InternalError(`Cannot read ${what}: expected { value, version }`);
      }
      return { value: bytes(entry.value), version: entry.version };
    }
    default:
      return value;
  }
}

/**
 * The outcomes of a batch as JSON, as the HTTP server answers them.
 *
 * @param operations The batch's operations (their results' types).
 * @param outcomes What each gave.
 * @returns The response body.
 *
 * @example
 * ```ts
 * import { outcomesToJson } from "@purple/protocol/batch-json";
 *
 * const body = outcomesToJson([{ op: "counterGet", args: ["hits"] }], [{ ok: true, value: 3n }]);
 * console.log(JSON.stringify(body)); // {"results":[{"value":"3"}]}
 * ```
 */
export function outcomesToJson(
  operations: readonly BatchOperation[],
  outcomes: readonly BatchOutcome<BatchableName>[],
): OutcomesJson {
  return {
    results: outcomes.map((outcome, index) =>
      outcome.ok
        ? { value: resultToJson(outcome.value, spec(operations[index].op).result) }
        : { error: { code: outcome.error.code, message: outcome.error.message } }
    ),
  };
}

/**
 * The outcomes of a batch from JSON, as `HttpClient` reads them: each result typed by its
 * operation, each error the typed error of its code.
 *
 * @param operations The batch's operations, as sent.
 * @param body The parsed response body.
 * @returns The outcomes, in order.
 * @throws {InternalError} When the body is not the outcomes of these operations.
 *
 * @example
 * ```ts
 * import { outcomesFromJson } from "@purple/protocol/batch-json";
 *
 * const [outcome] = outcomesFromJson([{ op: "counterGet", args: ["hits"] }], {
 *   results: [{ value: "3" }],
 * });
 * console.log(outcome); // { ok: true, value: 3n }
 * ```
 */
export function outcomesFromJson(
  operations: readonly BatchOperation[],
  body: unknown,
): BatchOutcome<BatchableName>[] {
  const results = (body as { results?: unknown } | null)?.results;
  if (!Array.isArray(results) || results.length !== operations.length) {
    throw new InternalError(
      `Cannot read the batch's answer: expected ${operations.length} results, found ${
        describe(results)
      }`,
    );
  }
  return results.map((result, index) => {
    const what = `the result of operation ${index}`;
    if (typeof result === "object" && result !== null && "error" in result) {
      const { code, message } = (result as { error: { code?: unknown; message?: unknown } }).error;
      const known = typeof code === "string" && code in HTTP_STATUS
        ? code as ErrorCode
        : "INTERNAL";
      return { ok: false, error: errorFromCode(known, String(message)) };
    }
    if (typeof result !== "object" || result === null || !("value" in result)) {
      throw new InternalError(`Cannot read ${what}: expected {"value": ...} or {"error": ...}`);
    }
    const type = spec(operations[index].op).result;
    return { ok: true, value: resultFromJson(result.value, type, what) } as BatchOutcome<
      BatchableName
    >;
  });
}
