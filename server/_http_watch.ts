// `GET /watch`: a watch as Server-Sent Events (`text/event-stream`, what a browser's
// `EventSource` reads). Private to the HTTP server.
//
// The keys come from the query, one repeatable parameter per service, named as its route
// (`/watch?kv=config&flags=beta&flags=dark-mode`). The watch is opened and its first state read
// before the answer starts, so that a refused watch (no key, a bad key, too many keys, too many
// watchers, the backend down) is an ordinary JSON error answer with its status. Then each change
// is one event, its `data:` the change as JSON (`@purple/protocol/watch`), and a comment line
// (`: heartbeat`) goes out every `heartbeatMs` so that proxies keep an idle stream open. When
// the server shuts down, the stream ends with one `event: end` whose data is the error that
// ended it (`{"error":{"code":"UNAVAILABLE","message":...}}`); a client that goes away ends the
// watch.
//
// The stream is pulled: a change is taken from the watch only once the one before it left
// (the socket took it), so a client that does not read costs the watch's one pending state per
// key and the socket's buffers, never more.

import type { Context } from "hono";
import type { WatchChange, WatchKeys } from "@purple/protocol";
import { InvalidArgumentError, PurpleError, UnavailableError } from "@purple/protocol/errors";
import { changeToJson, WATCH_SERVICES } from "@purple/protocol/watch";
import { queryPairs } from "./_http_input.ts";
import type { RouteContext } from "./_http_routes.ts";

/**
 * How often an idle watch stream sends a heartbeat comment by default, in ms.
 */
export const DEFAULT_HEARTBEAT_MS = 15_000;

/** How long a browser's `EventSource` waits before it connects again, in ms (`retry:`). */
const RETRY_MS = 1000;

const encoder = new TextEncoder();
const HEARTBEAT = encoder.encode(": heartbeat\n\n");

/** The frame of each change, made once however many watchers it goes to. */
const frames = new WeakMap<WatchChange, Uint8Array>();

function frameOf(change: WatchChange): Uint8Array {
  let frame = frames.get(change);
  if (frame === undefined) {
    frame = encoder.encode(`data: ${JSON.stringify(changeToJson(change))}\n\n`);
    frames.set(change, frame);
  }
  return frame;
}

/** The last event of a stream: why it ended. */
function endFrame(error: PurpleError): Uint8Array {
  const data = JSON.stringify({ error: { code: error.code, message: error.message } });
  return encoder.encode(`event: end\ndata: ${data}\n\n`);
}

/** The keys of a watch from its query: `?kv=a&kv=b&flags=c`. */
export function watchKeysOf(url: string): WatchKeys {
  const keys: Partial<Record<string, string[]>> = {};
  for (const [name, value] of queryPairs(url)) {
    if (!(WATCH_SERVICES as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(
        `Bad watch: unknown query parameter '${name}' (expected one per key, named after its ` +
          `service: ${WATCH_SERVICES.join(", ")})`,
      );
    }
    (keys[name] ??= []).push(value);
  }
  return keys as WatchKeys;
}

/** Answers `GET /watch` (see the module comment). */
export async function watchHandler(c: Context, route: RouteContext): Promise<Response> {
  const keys = watchKeysOf(c.req.url);
  const abort = new AbortController();
  const changes = route.ops.watch(keys, { signal: abort.signal })[Symbol.asyncIterator]();
  let first: IteratorResult<WatchChange>;
  try {
    first = await changes.next();
  } catch (error) {
    abort.abort();
    throw error;
  }
  if (first.done) throw new UnavailableError("Cannot watch: Purple is shutting down");
  const { shutdown, heartbeatMs } = route;
  let closed = false;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let stream: ReadableStreamDefaultController<Uint8Array>;
  const stop = () => {
    closed = true;
    clearInterval(heartbeat);
    shutdown?.removeEventListener("abort", onShutdown);
    abort.abort();
    changes.return?.().catch(() => {});
  };
  const end = (last?: Uint8Array) => {
    if (closed) return;
    if (last !== undefined) stream.enqueue(last);
    stream.close();
    stop();
  };
  const onShutdown = () =>
    end(endFrame(new UnavailableError("Purple is shutting down: watch again elsewhere or later")));
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      stream = controller;
      controller.enqueue(encoder.encode(`retry: ${RETRY_MS}\n`));
      controller.enqueue(frameOf(first.value));
      heartbeat = setInterval(() => {
        if (!closed && (controller.desiredSize ?? 0) > 0) controller.enqueue(HEARTBEAT);
      }, heartbeatMs);
      if (shutdown?.aborted) onShutdown();
      else shutdown?.addEventListener("abort", onShutdown, { once: true });
    },
    async pull(controller) {
      try {
        const next = await changes.next();
        if (closed) return;
        if (next.done) end(endFrame(new UnavailableError("The watch ended: the backend closed")));
        else controller.enqueue(frameOf(next.value));
      } catch (error) {
        if (closed) return;
        route.log(`A watch failed: ${(error as Error)?.stack ?? error}`);
        end(
          endFrame(error instanceof PurpleError ? error : new UnavailableError("The watch failed")),
        );
      }
    },
    cancel: stop,
  }, { highWaterMark: 1 });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      // Tells nginx not to buffer the stream.
      "x-accel-buffering": "no",
    },
  });
}
