// Access tokens and custom CA certificates for the clients: the `Authorization` value of a
// token, and (Deno only) a fetch that trusts extra CA certificates. Private to the clients.

import { InvalidArgumentError } from "@purple/protocol/errors";
import { describe } from "@purple/protocol/validate";

/**
 * The `authorization` value (`Bearer <token>`) of an access token, checked first: a token is
 * visible ASCII (no spaces, no control characters), as an HTTP header and gRPC metadata need.
 * The token itself never goes into an error message.
 */
export function bearer(token: unknown): string {
  if (typeof token !== "string" || !/^[\x21-\x7e]+$/.test(token)) {
    throw new InvalidArgumentError(
      `Bad token: expected a non-empty string of visible ASCII characters, found ${
        typeof token === "string" ? "other characters" : describe(token)
      }`,
    );
  }
  return `Bearer ${token}`;
}

/** The headers sent with every request: the given ones, with `Authorization` for a token. */
export function headersWithToken(
  headers: HeadersInit | undefined,
  token: string | undefined,
): HeadersInit | undefined {
  if (token === undefined) return headers;
  const merged = new Headers(headers);
  merged.set("authorization", bearer(token));
  return merged;
}

/** The part of `Deno` used here, typed locally so that the client type-checks outside Deno. */
interface DenoHttp {
  createHttpClient(options: { caCerts: string[] }): { close(): void };
}

/** A `fetch` that trusts extra CA certificates, and how to release what it holds. */
export interface TrustingFetch {
  fetch: (url: string, init: RequestInit) => Promise<Response>;
  close(): void;
}

/**
 * A `fetch` that trusts `ca` besides the system's CA certificates: in Deno, through
 * `Deno.createHttpClient({ caCerts })`. Other runtimes give `fetch` no such option: Node reads
 * `NODE_EXTRA_CA_CERTS` at start-up, browsers trust what the system trusts.
 */
export function fetchTrusting(ca: unknown, custom: unknown): TrustingFetch {
  const list = typeof ca === "string" ? [ca] : ca;
  if (
    !Array.isArray(list) || list.length === 0 ||
    !list.every((pem) => typeof pem === "string" && pem.includes("-----BEGIN CERTIFICATE-----"))
  ) {
    throw new InvalidArgumentError(
      `Bad ca: expected PEM certificates (-----BEGIN CERTIFICATE-----), found ${describe(ca)}`,
    );
  }
  if (custom !== undefined) {
    throw new InvalidArgumentError(
      "Bad options: give ca or fetch, not both (a custom fetch chooses its own certificates)",
    );
  }
  const deno = (globalThis as { Deno?: Partial<DenoHttp> }).Deno;
  if (typeof deno?.createHttpClient !== "function") {
    throw new InvalidArgumentError(
      "Bad ca: only Deno's fetch takes CA certificates; in Node set NODE_EXTRA_CA_CERTS to " +
        "the CA file, in browsers install the CA in the system",
    );
  }
  const client = deno.createHttpClient({ caCerts: [...list] });
  return {
    fetch: (url, init) => fetch(url, { ...init, client } as RequestInit),
    close: () => client.close(),
  };
}
