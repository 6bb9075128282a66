// TLS on both servers, with a CA and a certificate made here by openssl: the conformance suite
// over HTTPS and gRPC-over-TLS (with a token), HttpClient and GrpcClient trusting a custom CA,
// a plain grpc-js client with SSL credentials, clients that cannot connect (plaintext, or not
// trusting the CA) failing with UnavailableError, the GOAWAY guard behind TLS, and the CLI's
// TLS flags (start-up line, exit 2 with one line for bad files).

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { HttpClient } from "@purple/client";
import { UnavailableError } from "@purple/client/errors";
import { GrpcClient } from "@purple/client/grpc";
import { grpcMethod } from "@purple/protocol/wire";
import { DEFAULT_LIMITS, openBackend } from "../backends/mod.ts";
import { startHttpServer } from "../server/http.ts";
import { startGrpcServer } from "../server/grpc.ts";
import type { RunningServer, ServeOptions } from "../server/options.ts";
import { loadTls, TlsConfigError } from "../server/_tls.ts";
import { conformance } from "./conformance.ts";
import { runPurple, startPurple } from "./_purple.ts";

const TOKEN = "tls-test-token-0123456789";
const quiet = () => {};

/** The files of a test CA and a server certificate it signed (localhost, 127.0.0.1). */
interface Pki {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** A key of another certificate. */
  otherKeyFile: string;
  ca: string;
  cert: string;
  key: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const { success, stderr } = await new Deno.Command("openssl", { args, cwd, stderr: "piped" })
    .output();
  if (!success) throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(stderr)}`);
}

/** Makes a CA and a server certificate for localhost and 127.0.0.1 with openssl. */
async function makePki(): Promise<Pki | string> {
  try {
    await new Deno.Command("openssl", { args: ["version"], stdout: "null" }).output();
  } catch {
    return "openssl is not on PATH";
  }
  const dir = await Deno.makeTempDir({ prefix: "purple_tls_" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=Purple test CA",
    ],
    dir,
  );
  await openssl([
    "req",
    ...ec,
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=localhost",
  ], dir);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" +
      "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      "2",
      "-extfile",
      "ext.cnf",
    ],
    dir,
  );
  const read = (name: string) => Deno.readTextFile(`${dir}/${name}`);
  return {
    dir,
    caFile: `${dir}/ca.pem`,
    certFile: `${dir}/server.pem`,
    keyFile: `${dir}/server.key`,
    otherKeyFile: `${dir}/ca.key`,
    ca: await read("ca.pem"),
    cert: await read("server.pem"),
    key: await read("server.key"),
  };
}

const made = await makePki();
const MISSING = typeof made === "string" ? made : undefined;
if (MISSING !== undefined) console.error(`!!! SKIPPING tests/tls_test.ts: ${MISSING} !!!`);
const PKI = made as Pki;
globalThis.addEventListener("unload", () => {
  if (MISSING === undefined) Deno.removeSync(PKI.dir, { recursive: true });
});

/** A grpc-js test with the sanitizers off (grpc-js keeps timers and sockets of its own). */
function test(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    ignore: MISSING !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    fn,
  });
}

function serveOptions(extra: Partial<ServeOptions> = {}): ServeOptions {
  return {
    hostname: "127.0.0.1",
    port: 0,
    limits: DEFAULT_LIMITS,
    log: quiet,
    tls: { cert: PKI.cert, key: PKI.key },
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------
// The conformance suite over TLS, with a token.

conformance("https + token → memory", async () => {
  const ops = await openBackend({ kind: "memory" });
  const server = await startHttpServer(ops, serveOptions({ auth: { full: [TOKEN], read: [] } }));
  const client = new HttpClient(`https://127.0.0.1:${server.port}`, { ca: PKI.ca, token: TOKEN });
  return {
    ops: client,
    listing: "sorted",
    close: async () => {
      await client.close();
      await server.shutdown();
      await ops.close();
    },
  };
}, { ignore: MISSING !== undefined });

conformance("grpc over TLS + token → memory", async () => {
  const ops = await openBackend({ kind: "memory" });
  const server = await startGrpcServer(ops, serveOptions({ auth: { full: [TOKEN], read: [] } }));
  const client = new GrpcClient(`localhost:${server.port}`, { tls: { ca: PKI.ca }, token: TOKEN });
  return {
    ops: client,
    listing: "sorted",
    close: async () => {
      await client.close();
      await server.shutdown();
      await ops.close();
    },
  };
}, { ignore: MISSING !== undefined });

// ---------------------------------------------------------------------------------------------
// Clients.

async function withServers(
  fn: (http: RunningServer, grpcServer: RunningServer) => Promise<void>,
): Promise<void> {
  const ops = await openBackend({ kind: "memory" });
  const http = await startHttpServer(ops, serveOptions());
  const grpcServer = await startGrpcServer(ops, serveOptions());
  try {
    await fn(http, grpcServer);
  } finally {
    await http.shutdown();
    await grpcServer.shutdown();
    await ops.close();
  }
}

test("HttpClient and GrpcClient share one backend over TLS with a custom CA", async () => {
  await withServers(async (http, grpcServer) => {
    const viaHttp = new HttpClient(`https://127.0.0.1:${http.port}`, { ca: [PKI.ca] });
    const viaHostname = new HttpClient(`https://localhost:${http.port}`, { ca: PKI.ca });
    const viaGrpc = new GrpcClient(`localhost:${grpcServer.port}`, { tls: { ca: PKI.ca } });
    const byIp = new GrpcClient(`127.0.0.1:${grpcServer.port}`, {
      tls: { ca: new TextEncoder().encode(PKI.ca), serverName: "localhost" },
    });
    try {
      assert.equal(await viaHttp.counterIncrement("hits", 40), 40n);
      assert.equal(await viaGrpc.counterIncrement("hits", 1), 41n);
      assert.equal(await byIp.counterIncrement("hits", 1), 42n);
      assert.equal(await viaHostname.counterGet("hits"), 42n);
      await viaGrpc.kvPut("bytes", new Uint8Array([0, 1, 2, 255]));
      assert.deepEqual(await viaHttp.kvGet("bytes"), new Uint8Array([0, 1, 2, 255]));
      assert.deepEqual(await viaHttp.setAdd("s", "x"), ["x"]);
      assert.deepEqual(await byIp.setGet("s"), ["x"]);
    } finally {
      await Promise.all([viaHttp, viaHostname, viaGrpc, byIp].map((client) => client.close()));
    }
  });
});

test("a plain grpc-js client with SSL credentials calls the TLS gRPC server", async () => {
  await withServers(async (_http, grpcServer) => {
    const client = new grpc.Client(
      `localhost:${grpcServer.port}`,
      grpc.credentials.createSsl(Buffer.from(PKI.ca)),
    );
    try {
      const method = grpcMethod("counterIncrement");
      const reply = await new Promise<{ value: bigint }>((resolve, reject) =>
        client.makeUnaryRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          { key: "plain", amount: 7n },
          (error, value) => error ? reject(error) : resolve(value!),
        )
      );
      assert.equal(reply.value, 7n);
    } finally {
      client.close();
    }
  });
});

test("plaintext clients, and clients that do not trust the CA, fail with UnavailableError", async () => {
  await withServers(async (http, grpcServer) => {
    const clients = [
      new HttpClient(`http://127.0.0.1:${http.port}`, { timeoutMs: 3_000 }),
      new HttpClient(`https://127.0.0.1:${http.port}`, { timeoutMs: 3_000 }),
      new GrpcClient(`127.0.0.1:${grpcServer.port}`, { timeoutMs: 3_000 }),
      new GrpcClient(`localhost:${grpcServer.port}`, { timeoutMs: 3_000, tls: true }),
    ];
    try {
      for (const [i, client] of clients.entries()) {
        await assert.rejects(client.flagGet("f"), (error: Error) => {
          assert.ok(
            error instanceof UnavailableError,
            `client ${i}: ${error.name}: ${error.message}`,
          );
          return true;
        });
      }
      const trusting = new GrpcClient(`localhost:${grpcServer.port}`, { tls: { ca: PKI.ca } });
      assert.equal(await trusting.flagGet("f"), false, "the server survived them");
      await trusting.close();
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Loading the files, and the command line.

test("loadTls() reads a certificate and its key, and describes the certificate", async () => {
  const loaded = await loadTls(PKI.certFile, PKI.keyFile);
  assert.equal(loaded.cert, PKI.cert);
  assert.equal(loaded.key, PKI.key);
  assert.match(
    loaded.description,
    /^CN=localhost \(DNS:localhost, IP Address:127\.0\.0\.1\), valid until /,
  );
  assert.equal(loaded.outOfDate, false);
});

test("loadTls() refuses unreadable, malformed and mismatched files without quoting a key", async () => {
  const junk = `${PKI.dir}/junk.pem`;
  await Deno.writeTextFile(
    junk,
    "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
  );
  const cases: Array<[string, string, RegExp]> = [
    [`${PKI.dir}/absent.pem`, PKI.keyFile, /^Cannot read the TLS certificate '.*absent\.pem': /],
    [PKI.certFile, `${PKI.dir}/absent.key`, /^Cannot read the TLS key '.*absent\.key': /],
    [PKI.keyFile, PKI.keyFile, /^Bad TLS certificate '.*server\.key': expected a PEM certificate/],
    [junk, PKI.keyFile, /^Bad TLS certificate '.*junk\.pem': expected a PEM certificate/],
    [PKI.certFile, PKI.certFile, /^Bad TLS key '.*server\.pem': expected an unencrypted PEM/],
    [
      PKI.certFile,
      PKI.otherKeyFile,
      /^Bad TLS key '.*ca\.key': it is not the key of the certificate/,
    ],
  ];
  for (const [cert, key, message] of cases) {
    await assert.rejects(loadTls(cert, key), (error: Error) => {
      assert.ok(error instanceof TlsConfigError, `${error.name}: ${error.message}`);
      assert.match(error.message, message);
      assert.ok(!error.message.includes("\n"));
      assert.ok(!error.message.includes(PKI.key.split("\n")[1]), "no key material");
      return true;
    });
  }
});

test("purple with a bad TLS setting exits with 2 and one line", async () => {
  const base = ["http", "--backend", "memory", "--port", "0"];
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [
      ["--tls-cert", PKI.certFile],
      {},
      /^purple: Bad --tls-cert: TLS needs a key too \(--tls-key\)\n$/,
    ],
    [
      [],
      { PURPLE_TLS_KEY: PKI.keyFile },
      /^purple: Bad PURPLE_TLS_KEY: TLS needs a certificate too/,
    ],
    [
      ["--tls-cert", `${PKI.dir}/nope.pem`, "--tls-key", PKI.keyFile],
      {},
      /^purple: Cannot read the TLS certificate '.*nope\.pem': .*\n$/,
    ],
    [
      ["--tls-cert", PKI.keyFile, "--tls-key", PKI.keyFile],
      {},
      /^purple: Bad TLS certificate '.*': expected a PEM certificate .*\n$/,
    ],
    [
      ["--tls-cert", PKI.certFile, "--tls-key", PKI.otherKeyFile],
      {},
      /^purple: Bad TLS key '.*ca\.key': it is not the key .*\n$/,
    ],
  ];
  for (const [args, env, message] of cases) {
    const { code, stderr } = await runPurple([...base, ...args], {
      PURPLE_TLS_CERT: "",
      PURPLE_TLS_KEY: "",
      ...env,
    });
    assert.equal(code, 2, stderr);
    assert.match(stderr, message);
    assert.ok(!stderr.includes(PKI.key.split("\n")[1]), "no key material");
  }
});

test("purple serves both protocols over TLS, says so, and survives clients closing (GOAWAY guard)", async () => {
  const purple = await startPurple(
    ["--backend", "memory", "--http-port", "0", "--grpc-port", "0"],
    { PURPLE_TLS_CERT: PKI.certFile, PURPLE_TLS_KEY: PKI.keyFile, PURPLE_AUTH_TOKEN: TOKEN },
  );
  try {
    assert.ok(
      purple.lines.includes(
        `TLS: serving with the certificate '${PKI.certFile}' for ` +
          (await loadTls(PKI.certFile, PKI.keyFile)).description,
      ),
      purple.lines.join("\n"),
    );
    const http = new HttpClient(`https://localhost:${purple.httpPort}`, {
      ca: PKI.ca,
      token: TOKEN,
    });
    assert.equal(await http.counterIncrement("calls", 1), 1n);
    // Deno's node:http2 aborts when a client in another process sends GOAWAY after ~100 calls
    // and goes away, unless the guard drops the GOAWAY: the guard must see decrypted frames, so
    // TLS has to end before it (without it, this server dies with a segmentation fault).
    const script = `
      import { GrpcClient } from "@purple/client/grpc";
      const client = new GrpcClient("localhost:${purple.grpcPort}", {
        tls: { ca: ${JSON.stringify(PKI.ca)} },
        token: ${JSON.stringify(TOKEN)},
      });
      for (let i = 0; i < 300; i++) await client.counterIncrement("calls", 1);
      await client.close();
    `;
    for (let round = 1; round <= 2; round++) {
      const { success } = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--ext=ts", script],
        cwd: new URL("..", import.meta.url),
        stdout: "null",
        stderr: "inherit",
      }).output();
      assert.ok(success, "the client process failed");
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(await http.counterGet("calls"), BigInt(1 + 300 * round));
    }
    await http.close();
  } finally {
    const { code, stderr } = await purple.stop();
    assert.equal(code, 0, stderr);
  }
});
