/**
 * The Purple client: the operations contract, the typed errors and (from the HTTP issue on)
 * the fetch-only `HttpClient`.
 *
 * @example
 * ```ts
 * import type { Operations } from "@purple/client";
 *
 * export async function hits(ops: Operations): Promise<bigint> {
 *   return await ops.counterIncrement("hits", 1);
 * }
 * ```
 *
 * @module
 */

export type { CounterAmount, KvValue, Operations } from "./operations.ts";
export * from "./errors.ts";
