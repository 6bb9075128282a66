/**
 * What the conformance suite's cases share: the context a case runs in, and small helpers.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Operations } from "@purple/client";
import type { PurpleError } from "@purple/client/errors";

/** How a target's listings behave (see `KeyPage` in the contract). */
export type ListingKind =
  /** Memory and disk: in key order, each key present during the whole listing exactly once. */
  | "sorted"
  /** Redis: `SCAN`, in no order, each key present during the whole listing at least once. */
  | "scanned";

/** What a case gets. */
export interface Context {
  /** The current operations (they change after a reopen). */
  readonly ops: Operations;
  /**
   * A key unique to this run and this case, so targets that share a store never collide;
   * `key("")` is the case's own prefix (no other case has keys under it).
   */
  key(name: string): string;
  /** How the target lists keys. */
  readonly listing: ListingKind;
  /** Closes the store and opens it again, for targets that promise persistence. */
  reopen?: () => Promise<void>;
}

/** One behaviour: its name, and the code that checks it. */
export type Case = [name: string, run: (ctx: Context) => Promise<void>];

type ErrorClass = new (message: string) => PurpleError;

/** Asserts that `promise` rejects with an error of class `kind`. */
export async function rejects(promise: Promise<unknown>, kind: ErrorClass): Promise<Error> {
  let caught: Error | undefined;
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(
      error instanceof kind,
      `expected ${kind.name}, got ${error instanceof Error ? error.name : typeof error}: ${error}`,
    );
    caught = error;
    return true;
  });
  return caught!;
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Decodes UTF-8. */
export const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
