/**
 * Requests in flight, for the tests of a graceful stop: an HTTP/1.1 PUT whose headers and first
 * half of the body are sent, so that the server's handler is waiting for the rest when the
 * signal comes; then the rest, and the response head the server answers with.
 *
 * @module
 */

import assert from "node:assert/strict";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Opens a connection, proves it accepted by a `GET /ping` round trip, then sends `PUT /kv/<key>`
 * with a 10-byte body of which only the first 5 bytes go.
 * @param port The HTTP port on 127.0.0.1.
 * @param key The KV key the upload writes.
 * @returns The connection, its PUT waiting for {@linkcode finishUpload}.
 */
export async function startUpload(port: number, key: string): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode("GET /ping HTTP/1.1\r\nHost: purple\r\n\r\n"));
    assert.match(await readHead(conn), /^HTTP\/1\.1 200 /);
    await conn.write(encoder.encode(
      `PUT /kv/${key} HTTP/1.1\r\nHost: purple\r\n` +
        "Content-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\nhello",
    ));
  } catch (error) {
    conn.close();
    throw error;
  }
  return conn;
}

/**
 * Sends the rest of an upload's body.
 * @param conn A connection from {@linkcode startUpload}.
 * @returns The head of the server's response (a 204 when the upload was answered).
 */
export async function finishUpload(conn: Deno.Conn): Promise<string> {
  await conn.write(encoder.encode("world"));
  return await readHead(conn);
}

/**
 * Reads one HTTP/1.1 response head from a connection (bodies here are empty or tiny).
 * @param conn The connection.
 * @returns What was read up to the blank line, or up to the end if the server closed first.
 */
export async function readHead(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buffer = new Uint8Array(4096);
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buffer);
    if (n === null) break;
    text += decoder.decode(buffer.subarray(0, n));
  }
  return text;
}
