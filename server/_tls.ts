/**
 * TLS for both servers: reading and checking the certificate and key files at start-up, and
 * the gRPC listener that terminates TLS itself (the HTTP server hands the PEM text to
 * `Deno.serve`).
 *
 * gRPC connections go through the GOAWAY guard (`_grpc_goaway_guard.ts`), which reads HTTP/2
 * frames, so TLS must end before it: the listener is a `node:tls` server advertising ALPN
 * `h2`, and each decrypted socket goes to the guard and then to grpc-js as a plaintext
 * connection.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { createServer as createTcpServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";

/** A certificate (with its chain) and its private key, as PEM text. */
export interface TlsMaterial {
  /** The certificate, then any intermediate certificates, PEM. */
  cert: string;
  /** The private key of the certificate, PEM, unencrypted. */
  key: string;
}

/** TLS files that cannot be used. `main()` prints its message as one line and exits with 2. */
export class TlsConfigError extends Error {
  /**
   * @param message What is wrong, naming the file but never quoting a key.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TlsConfigError";
  }
}

/** What was loaded, and a description of the certificate for the start-up line. */
export interface LoadedTls extends TlsMaterial {
  /** The certificate's subject, names and expiry. */
  description: string;
  /** Whether the certificate has expired (or is not valid yet). */
  outOfDate: boolean;
}

async function read(what: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TlsConfigError(`Cannot read the TLS ${what} '${path}': ${reason}`, { cause: error });
  }
}

/**
 * Reads a certificate and its key, and checks that they are PEM and belong together, so that
 * a mistake ends Purple at start-up rather than at the first connection.
 *
 * @throws {TlsConfigError} When a file cannot be read, is not PEM, or the key does not match.
 */
export async function loadTls(certFile: string, keyFile: string): Promise<LoadedTls> {
  const [cert, key] = await Promise.all([read("certificate", certFile), read("key", keyFile)]);
  let certificate: X509Certificate;
  try {
    if (!cert.includes("-----BEGIN CERTIFICATE-----")) throw new Error("no PEM block");
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new TlsConfigError(
      `Bad TLS certificate '${certFile}': expected a PEM certificate (-----BEGIN CERTIFICATE-----)`,
      { cause: error },
    );
  }
  let privateKey;
  try {
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) throw new Error("no PEM block");
    privateKey = createPrivateKey(key);
  } catch {
    // The parser's message could quote the key: it is not passed on.
    throw new TlsConfigError(
      `Bad TLS key '${keyFile}': expected an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)`,
    );
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new TlsConfigError(
      `Bad TLS key '${keyFile}': it is not the key of the certificate '${certFile}'`,
    );
  }
  const now = Date.now();
  const outOfDate = now > Date.parse(certificate.validTo) ||
    now < Date.parse(certificate.validFrom);
  const names = certificate.subjectAltName ? ` (${certificate.subjectAltName})` : "";
  return {
    cert,
    key,
    description: `${certificate.subject.replaceAll("\n", ", ")}${names}, valid until ` +
      certificate.validTo,
    outOfDate,
  };
}

/** The start-up lines about TLS. */
export function tlsLines(tls: LoadedTls, certFile: string): string[] {
  const lines = [`TLS: serving with the certificate '${certFile}' for ${tls.description}`];
  if (tls.outOfDate) {
    lines.push("WARNING: the TLS certificate is expired or not valid yet: clients will refuse it");
  }
  return lines;
}

/**
 * The gRPC listener: plain TCP, or TLS with ALPN `h2` when `tls` is given. `onConnection`
 * receives each connection as a socket of plaintext bytes (decrypted, after the handshake).
 * A failed handshake (a plaintext client, a client that distrusts the certificate) closes
 * that connection only.
 */
export function createGrpcListener(
  tls: TlsMaterial | undefined,
  onConnection: (socket: Socket) => void,
): Server {
  if (tls === undefined) return createTcpServer(onConnection);
  const server = createTlsServer({
    cert: Buffer.from(tls.cert),
    key: Buffer.from(tls.key),
    ALPNProtocols: ["h2"],
  }, onConnection);
  server.on("tlsClientError", (_error, socket) => socket.destroy());
  return server;
}
