/**
 * Access control for both servers: which tokens Purple accepts, what each may do, and the
 * guards that check them (a Hono middleware for HTTP here; the grpc-js server interceptor for gRPC
 * in `_grpc_auth.ts`, so that the HTTP server never loads grpc-js).
 *
 * A token is either full-access or read-only; a read-only token may call the operations that
 * the operation table marks `read` only. Clients send `Authorization: Bearer <token>` (HTTP) or
 * the `authorization` metadata with the same value (gRPC). A missing or unknown token is an
 * `UnauthenticatedError` (401, `UNAUTHENTICATED`), a read-only token writing a
 * `PermissionDeniedError` (403, `PERMISSION_DENIED`). `GET /ping` and `grpc.health.v1.Health`
 * stay open so that probes need no secret; reflection needs a token (read-only is enough).
 *
 * Tokens are kept only as SHA-256 digests, and a presented token is hashed and compared with
 * every digest, each comparison touching every byte ({@linkcode constantTimeEqual}): how long
 * a check takes does not depend on how much of a token is right, nor on which token matched.
 * No token, nor any part of an `Authorization` value, ever goes into a log line or a message.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import {
  type BatchOperation,
  isRead,
  OPERATION_NAMES,
  type OperationName,
  OPERATIONS,
} from "@purple/protocol";
import {
  HTTP_STATUS,
  PermissionDeniedError,
  type PurpleError,
  UnauthenticatedError,
} from "@purple/protocol/errors";
import { rawPath } from "./_http_input.ts";
import type { AccessTokens } from "./options.ts";

export type { AccessTokens } from "./options.ts";

/** What a valid token may do. */
export type Access = "full" | "read";

/** The shortest token accepted, in characters. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * The operation of each HTTP method and first path segment (`GET cache`), from the table. Where
 * several share one (`GET kv` lists or reads, `DELETE sets` removes an item or the set), they
 * have the same access, which is what the guard decides on.
 */
const HTTP_OPERATIONS: ReadonlyMap<string, OperationName> = new Map(
  OPERATION_NAMES.toReversed().map((name) => {
    const { method, path } = OPERATIONS[name].http;
    return [`${method} ${path.split("/")[1]}`, name];
  }),
);

/**
 * Checks that a batch holds only what the caller's token may do: a read-only token may run a
 * batch of reads only.
 *
 * @param operations The batch's operations.
 * @param access The token's access, or `undefined` when tokens are not required.
 * @throws {PermissionDeniedError} When a read-only token's batch holds an operation that writes.
 */
export function assertBatchAccess(
  operations: readonly BatchOperation[],
  access: Access | undefined,
): void {
  if (access !== "read") return;
  const index = operations.findIndex(({ op }) => !isRead(op));
  if (index >= 0) {
    throw new PermissionDeniedError(
      `Cannot run the batch: operation ${index} (${
        operations[index].op
      }) writes, and the access token is read-only (it may run batches of reads only)`,
    );
  }
}

/**
 * Why a token cannot be used, or `undefined` when it can. The reason never quotes the token.
 * A token is at least {@linkcode MIN_TOKEN_LENGTH} visible ASCII characters, without `,`
 * (which separates tokens in `PURPLE_AUTH_TOKEN`).
 */
export function tokenProblem(token: string): string | undefined {
  if (!/^[\x21-\x2b\x2d-\x7e]*$/.test(token)) {
    return "a token may only hold visible ASCII characters other than ','";
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    return `a token must be ${MIN_TOKEN_LENGTH} characters or more ` +
      "(make one with: openssl rand -hex 32)";
  }
  return undefined;
}

/**
 * Whether two byte arrays are equal, in a time that says nothing about where they differ
 * (`node:crypto`'s `timingSafeEqual`). Arrays of different lengths are unequal (the digests
 * compared here always have the same length).
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function sha256(text: string): Uint8Array {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Whether a host name or address reaches only this machine. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return host === "localhost" || host === "::1" || host.startsWith("127.") ||
    host.startsWith("::ffff:127.");
}

/** Checks the tokens of requests against the configured ones. */
export class AccessControl {
  #digests: Array<{ digest: Uint8Array; access: Access }>;

  /**
   * @param tokens The accepted tokens; at least one.
   * @throws {TypeError} When there is no token, or one is not usable (see {@linkcode tokenProblem}).
   */
  constructor(tokens: AccessTokens) {
    const all = [
      ...tokens.full.map((token) => ({ token, access: "full" as const })),
      ...tokens.read.map((token) => ({ token, access: "read" as const })),
    ];
    if (all.length === 0) throw new TypeError("Bad access tokens: expected at least one token");
    for (const { token } of all) {
      const problem = tokenProblem(token);
      if (problem !== undefined) throw new TypeError(`Bad access token: ${problem}`);
    }
    this.#digests = all.map(({ token, access }) => ({ digest: sha256(token), access }));
  }

  /**
   * What the token of an `Authorization` value (`Bearer <token>`) may do.
   * @throws {UnauthenticatedError} When the value is missing, malformed or the token unknown.
   */
  authenticate(authorization: string | null | undefined): Access {
    if (authorization === null || authorization === undefined || authorization === "") {
      throw new UnauthenticatedError(
        "Missing access token: send the header or metadata 'authorization: Bearer <token>'",
      );
    }
    const match = /^bearer +(\S+) *$/i.exec(authorization);
    if (match === null) {
      throw new UnauthenticatedError("Bad authorization: expected 'Bearer <token>'");
    }
    const presented = sha256(match[1]);
    let found: Access | undefined;
    for (const { digest, access } of this.#digests) {
      // Every digest is compared, matched or not: the time does not say which one matched.
      if (constantTimeEqual(presented, digest) && found === undefined) found = access;
    }
    if (found === undefined) throw new UnauthenticatedError("Invalid access token");
    return found;
  }

  /**
   * Checks that a request may call an operation.
   * @param authorization The `Authorization` value sent.
   * @param operation The operation (such as `kvPut`), or `undefined` for a call that is not one
   * of Purple's operations: a get (reflection, an unknown path read) when `write` is false.
   * @param write Whether an unknown operation writes.
   * @throws {UnauthenticatedError} See {@linkcode AccessControl.authenticate}.
   * @returns What the token may do.
   * @throws {PermissionDeniedError} When a read-only token calls anything but a read.
   */
  authorize(
    authorization: string | null | undefined,
    operation: OperationName | undefined,
    write: boolean,
  ): Access {
    const access = this.authenticate(authorization);
    if (access === "full") return access;
    const reads = operation === undefined ? !write : isRead(operation);
    if (!reads) {
      throw new PermissionDeniedError(
        `Cannot call ${operation ?? "this"}: the access token is read-only (it may only get)`,
      );
    }
    return access;
  }
}

/** The `WWW-Authenticate` challenge of an answer (RFC 6750). */
function challenge(error: PurpleError, sent: boolean): string {
  if (error instanceof PermissionDeniedError) {
    return 'Bearer realm="purple", error="insufficient_scope"';
  }
  return sent ? 'Bearer realm="purple", error="invalid_token"' : 'Bearer realm="purple"';
}

/**
 * The HTTP guard: `GET /ping` (any method on `/ping`) passes, every other request needs a
 * token, and a read-only token may only `GET` or `HEAD`. A refusal is a JSON
 * `{"error": "..."}` answer, 401 or 403, with a `WWW-Authenticate: Bearer` challenge.
 */
export function httpAccessGuard(access: AccessControl): MiddlewareHandler {
  return async (c, next) => {
    const path = rawPath(c.req.url);
    if (path === "/ping") return await next();
    const method = c.req.method === "HEAD" ? "GET" : c.req.method;
    const operation = HTTP_OPERATIONS.get(`${method} ${path.split("/")[1]}`);
    const authorization = c.req.header("authorization");
    try {
      (c.set as (name: string, value: Access) => void)(
        "access",
        access.authorize(authorization, operation, method !== "GET"),
      );
    } catch (error) {
      const refusal = error as PurpleError;
      return new Response(JSON.stringify({ error: refusal.message }), {
        status: HTTP_STATUS[refusal.code],
        headers: {
          "content-type": "application/json",
          "www-authenticate": challenge(refusal, authorization !== undefined),
        },
      });
    }
    await next();
  };
}

/**
 * The start-up lines about access: whether tokens are required, and a warning when Purple
 * listens beyond loopback without any (or with tokens but without TLS). Counts, never tokens.
 */
export function accessLines(
  hostname: string,
  tokens: AccessTokens | undefined,
  tls: boolean,
): string[] {
  const loopback = isLoopback(hostname);
  if (tokens === undefined) {
    return loopback
      ? [
        `No access token is set: listening on ${hostname} only ` +
        "(use --host to change it, --auth-token to require a token)",
      ]
      : [
        `WARNING: no access token is set and Purple listens on ${hostname}: ` +
        "anyone who can reach it has full access (set --auth-token or PURPLE_AUTH_TOKEN)",
      ];
  }
  const count = (n: number, kind: string) => `${n} ${kind} token${n === 1 ? "" : "s"}`;
  const lines = [
    `Access tokens required: ${count(tokens.full.length, "full-access")}, ` +
    `${count(tokens.read.length, "read-only")}; /ping and grpc.health.v1.Health stay open`,
  ];
  if (!loopback && !tls) {
    lines.push(
      `WARNING: Purple listens on ${hostname} without TLS: tokens and data cross the network ` +
        "unencrypted (set --tls-cert and --tls-key, or put a TLS proxy in front)",
    );
  }
  return lines;
}
