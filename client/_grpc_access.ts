// TLS and access tokens for GrpcClient: the channel credentials and options of its `tls`
// option, and the metadata that carries its `token`. Private to client/grpc.ts.

import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { InvalidArgumentError } from "@purple/protocol/errors";
import { describe } from "@purple/protocol/validate";
import { bearer } from "./_access.ts";

/**
 * The `tls` option of `GrpcClient`: `true` for a certificate from a public CA, `{ ca }` for a
 * private one, plus `serverName` when the address is not a name on the certificate.
 *
 * @example
 * ```ts ignore
 * import { GrpcClient, type GrpcTls } from "@purple/client/grpc";
 *
 * const tls: GrpcTls = { ca: await Deno.readTextFile("ca.pem"), serverName: "purple.internal" };
 * const purple = new GrpcClient("10.0.0.5:8081", { tls, token: Deno.env.get("PURPLE_TOKEN") });
 * ```
 */
export type GrpcTls = boolean | {
  /**
   * The CA certificate(s), PEM, that the server's certificate must chain to, instead of the
   * system's (for a self-signed or private CA).
   */
  ca?: string | Uint8Array;
  /**
   * The name the server's certificate must carry, and the TLS server name (SNI) sent, when it
   * is not the host of the address: needed in Deno to reach a TLS server by IP address, as
   * Deno's `node:tls` refuses an IP address as server name.
   */
  serverName?: string;
};

/** The credentials and channel options of a `tls` option (insecure when absent or false). */
export function channelSecurity(
  tls: GrpcTls | undefined,
): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (tls === undefined || tls === false) {
    return { credentials: grpc.credentials.createInsecure(), options: {} };
  }
  if (tls === true) return { credentials: grpc.credentials.createSsl(), options: {} };
  if (typeof tls !== "object" || tls === null) {
    throw new InvalidArgumentError(
      `Bad tls: expected true, false or { ca, serverName }, found ${describe(tls)}`,
    );
  }
  const { ca, serverName } = tls;
  if (
    ca !== undefined &&
    !(ca instanceof Uint8Array || typeof ca === "string" && ca.includes("-----BEGIN CERTIFICATE"))
  ) {
    throw new InvalidArgumentError(
      `Bad tls.ca: expected PEM certificates (-----BEGIN CERTIFICATE-----), found ${describe(ca)}`,
    );
  }
  if (serverName !== undefined && (typeof serverName !== "string" || serverName === "")) {
    throw new InvalidArgumentError(
      `Bad tls.serverName: expected a host name, found ${describe(serverName)}`,
    );
  }
  return {
    credentials: grpc.credentials.createSsl(ca === undefined ? null : Buffer.from(ca)),
    options: serverName === undefined ? {} : { "grpc.ssl_target_name_override": serverName },
  };
}

/** The metadata of every call: `authorization: Bearer <token>`, or none without a token. */
export function tokenMetadata(token: string | undefined): grpc.Metadata | undefined {
  if (token === undefined) return undefined;
  const metadata = new grpc.Metadata();
  metadata.set("authorization", bearer(token));
  return metadata;
}
