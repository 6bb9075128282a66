/**
 * A guard against a crash of Deno's `node:http2` server (seen on Deno 2.9.5 and 2.9.6, open
 * as denoland/deno#36788): when a client sends GOAWAY on a connection that carried more than
 * roughly a hundred streams, nghttp2 trips over corrupted stream state and the whole process
 * aborts (`free(): invalid pointer`, or an assertion in `find_stream_on_goaway_func`). Every
 * well-behaved client sends GOAWAY when it closes (grpc-js, Go, h2load), so a client closing
 * its channel after a few hundred calls would kill the server.
 *
 * The guard sits between the TCP socket and grpc-js: it reads the client's bytes frame by
 * frame and drops GOAWAY frames, passing every other byte through unchanged (a chunk without
 * GOAWAY is passed as is, not copied); {@linkcode GoawayFilter} is that filter, pure and tested
 * alone. A client that sends GOAWAY closes the connection right after, and the server sees the
 * end of the stream, which Deno handles without crashing. The server's own writes (its GOAWAY
 * at graceful shutdown too) pass unchanged, coalesced per turn of the event loop by
 * `_write_coalescing.ts`.
 *
 * Remove this module once Deno fixes the bug: `tests/grpc_test.ts` has a test that closes a
 * client after 300 calls in another process, which fails without the guard on 2.9.6.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import { corkForTurn } from "./_write_coalescing.ts";

const PREFACE_BYTES = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
const HEADER_BYTES = 9;
const GOAWAY = 0x7;

/** Removes GOAWAY frames from the bytes a client sends, across chunk boundaries. */
export class GoawayFilter {
  #preface = PREFACE_BYTES;
  /** Bytes of a frame header split across chunks, not passed on until it is complete. */
  #held: Buffer = Buffer.alloc(0);
  /** Payload bytes left in the current frame. */
  #remaining = 0;
  #dropping = false;
  /** How many GOAWAY frames were dropped. */
  dropped = 0;

  /**
   * Filters the next chunk.
   * @param chunk Bytes from the client.
   * @returns The bytes to pass on, in order (often the chunk itself).
   */
  filter(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    let start = 0; // chunk[start, pos) is passed on at the next flush.
    const flush = () => {
      if (pos > start) out.push(chunk.subarray(start, pos));
      start = pos;
    };
    while (pos < chunk.length) {
      const left = chunk.length - pos;
      if (this.#preface > 0) {
        const n = Math.min(this.#preface, left);
        this.#preface -= n;
        pos += n;
      } else if (this.#remaining > 0) {
        const n = Math.min(this.#remaining, left);
        if (this.#dropping) flush();
        this.#remaining -= n;
        pos += n;
        if (this.#dropping) start = pos;
        if (this.#remaining === 0) this.#dropping = false;
      } else {
        const need = HEADER_BYTES - this.#held.length;
        if (left < need) {
          flush();
          this.#held = Buffer.concat([this.#held, chunk.subarray(pos)]);
          pos = start = chunk.length;
          break;
        }
        const header = this.#held.length === 0
          ? chunk.subarray(pos, pos + HEADER_BYTES)
          : Buffer.concat([this.#held, chunk.subarray(pos, pos + need)]);
        this.#remaining = (header[0] << 16) | (header[1] << 8) | header[2];
        if (header[3] === GOAWAY) {
          this.dropped++;
          flush();
          pos += need;
          start = pos;
          this.#dropping = this.#remaining > 0;
        } else {
          if (this.#held.length > 0) {
            flush();
            out.push(this.#held);
          }
          pos += need;
        }
        this.#held = Buffer.alloc(0);
      }
    }
    flush();
    return out;
  }
}

/**
 * Wraps a client's socket so that its GOAWAY frames never reach the HTTP/2 server.
 *
 * @param socket An accepted TCP socket.
 * @returns A duplex stream to hand to grpc-js (`injectConnection`).
 */
export function guardSocket(socket: Socket): Duplex {
  return new GuardedSocket(socket);
}

/**
 * A client's socket as grpc-js sees it: what it reads comes through a {@linkcode GoawayFilter};
 * what it writes goes to the socket unchanged, corked for the turn (`corkForTurn`).
 */
class GuardedSocket extends Duplex {
  #socket: Socket;
  #filter = new GoawayFilter();
  #uncork = corkForTurn();

  constructor(socket: Socket) {
    super();
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      let more = true;
      for (const part of this.#filter.filter(chunk)) more = this.push(part);
      if (!more) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("error", (error) => this.destroy(error));
    socket.on("close", () => this.destroy());
  }

  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.#socket.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.#socket.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.#socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.#socket.localPort;
  }

  setNoDelay(noDelay?: boolean): this {
    this.#socket.setNoDelay(noDelay);
    return this;
  }
  setKeepAlive(enable?: boolean, delay?: number): this {
    this.#socket.setKeepAlive(enable, delay);
    return this;
  }
  setTimeout(ms: number, callback?: () => void): this {
    this.#socket.setTimeout(ms, callback);
    return this;
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _encoding: string, callback: (error?: Error | null) => void) {
    this.#uncork(this.#socket);
    if (this.#socket.write(chunk)) callback();
    else this.#socket.once("drain", () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy(error ?? undefined);
    callback(error);
  }
}
