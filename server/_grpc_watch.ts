// The gRPC `proto.Watch/Watch` method: a watch as a server stream, one `WatchChange` message a
// change. Private to the gRPC server.
//
// A refused watch (no key, a bad key, too many keys or watchers, the backend down) ends at once
// with its status. The stream then lasts until the client cancels it, or the server shuts down
// (`UNAVAILABLE`, "Purple is shutting down"). It is pulled: the next change is taken from the
// watch only once grpc-js has room for the message before it (`write()` said so, or `drain`),
// so a client that does not read costs the watch's one pending state per key and the stream's
// buffers, never more. A change going to many watchers is encoded once.

import type * as grpc from "@grpc/grpc-js";
import type { Operations, WatchChange } from "@purple/protocol";
import { GRPC_STATUS, UnavailableError } from "@purple/protocol/errors";
import { GRPC_BINDINGS } from "@purple/protocol/wire";

/** Maps an error to its status (the server's one mapping, with its logging). */
export type StatusOf = (error: unknown) => { code: grpc.status; details: string };

/** The message of each change, built once however many watchers it goes to. */
const messages = new WeakMap<WatchChange, unknown>();

function messageOf(change: WatchChange): unknown {
  let message = messages.get(change);
  if (message === undefined) {
    message = GRPC_BINDINGS.watch.response(change, undefined as never);
    messages.set(change, message);
  }
  return message;
}

/**
 * A serializer that encodes a message once (the same message object goes to every watcher of a
 * change; grpc-js copies the bytes into each stream's frame).
 *
 * @param serialize The method's serializer.
 * @returns The same, remembering what it encoded.
 */
export function encodeOnce<T extends object>(
  serialize: (message: T) => Uint8Array,
): (message: T) => Uint8Array {
  const encoded = new WeakMap<T, Uint8Array>();
  return (message) => {
    let bytes = encoded.get(message);
    if (bytes === undefined) {
      bytes = serialize(message);
      encoded.set(message, bytes);
    }
    return bytes;
  };
}

/** The open watch streams of one server, which its shutdown ends. */
export class GrpcWatches {
  #open = new Set<() => void>();

  /** Ends every open watch with `UNAVAILABLE`. */
  endAll(): void {
    for (const end of [...this.#open]) end();
  }

  /**
   * Serves one `Watch` call.
   *
   * @param call The call, with its decoded request (or `bad`: why it could not be decoded).
   * @param ops The operations.
   * @param statusOf The server's mapping of errors to statuses.
   * @param bad Why the request could not be decoded, if it could not.
   */
  serve(
    call: grpc.ServerWritableStream<unknown, unknown>,
    ops: Operations,
    statusOf: StatusOf,
    bad?: { error: unknown },
  ): void {
    if (bad !== undefined) return void call.emit("error", statusOf(bad.error));
    let keys;
    try {
      [keys] = GRPC_BINDINGS.watch.args(call.request as never);
    } catch (error) {
      return void call.emit("error", statusOf(error));
    }
    const abort = new AbortController();
    const changes = ops.watch(keys, { signal: abort.signal })[Symbol.asyncIterator]();
    let ended = false;
    let wake: (() => void) | undefined;
    const finish = (status?: { code: grpc.status; details: string }) => {
      if (ended) return;
      ended = true;
      this.#open.delete(shutdown);
      abort.abort();
      changes.return?.().catch(() => {});
      wake?.();
      if (status !== undefined) call.emit("error", status);
    };
    const shutdown = () =>
      finish({
        code: GRPC_STATUS.UNAVAILABLE,
        details: "Purple is shutting down: watch again elsewhere or later",
      });
    this.#open.add(shutdown);
    call.on("cancelled", () => finish());
    const room = () =>
      new Promise<void>((resolve) => {
        wake = resolve;
        call.once("drain", resolve);
      }).finally(() => wake = undefined);
    (async () => {
      try {
        for (;;) {
          const next = await changes.next();
          if (ended) return;
          if (next.done) {
            return finish(statusOf(new UnavailableError("The watch ended: the backend closed")));
          }
          if (!call.write(messageOf(next.value))) await room();
        }
      } catch (error) {
        if (!ended) finish(statusOf(error));
      }
    })();
  }
}
