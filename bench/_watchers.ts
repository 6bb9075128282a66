// The watchers of the watch bench (bench/watch.ts), in a process of their own: N watches of one
// counter through one client (HttpClient: N event streams, one connection each; GrpcClient: N
// server streams on one HTTP/2 connection). Private to the bench.
//
//   deno run -A bench/_watchers.ts latency <http|grpc> <http-url> <grpc-address> <N> <key> <W>
//     opens the N watches, then W times: increments the counter (over HTTP), and waits until
//     every watcher has the new value; prints "WATCH_JSON {...}" with, per write, the time from
//     the write to the first and to the last watcher's event (one clock: this process's).
//   deno run -A bench/_watchers.ts hold <http|grpc> <http-url> <grpc-address> <N> <key>
//     opens the N watches, prints "READY" once each has its first state, and keeps them until
//     SIGTERM; then prints "WATCH_EVENTS <count>" (the changes received).

import { HttpClient, type Operations } from "@purple/client";
import { GrpcClient } from "@purple/client/grpc";

const [mode, protocol, httpUrl, grpcAddress, countText, key, writesText] = Deno.args;
const count = Number(countText);
const http = new HttpClient(httpUrl, { timeoutMs: 60_000 });
const watcherClient: Operations = protocol === "grpc" ? new GrpcClient(grpcAddress) : http;

/** Per counter value: how many watchers have seen it, and when the first and the last did. */
const seen = new Map<bigint, { watchers: number; first: number; last: number }>();
let events = 0;
let waiting: { value: bigint; resolve: () => void } | undefined;
const controller = new AbortController();

function record(value: bigint): void {
  events++;
  const now = performance.now();
  const entry = seen.get(value) ?? { watchers: 0, first: now, last: now };
  entry.watchers++;
  entry.last = now;
  seen.set(value, entry);
  if (waiting?.value === value && entry.watchers === count) waiting.resolve();
}

function allSeen(value: bigint, timeoutMs = 30_000): Promise<void> {
  if ((seen.get(value)?.watchers ?? 0) >= count) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${seen.get(value)?.watchers ?? 0} of ${count} watchers saw ${value}`));
    }, timeoutMs);
    waiting = {
      value,
      resolve: () => {
        clearTimeout(timer);
        waiting = undefined;
        resolve();
      },
    };
  });
}

const initial = await http.counterGet(key);
const loops = Array.from({ length: count }, async () => {
  try {
    for await (
      const change of watcherClient.watch({ counters: [key] }, { signal: controller.signal })
    ) {
      if (change.service === "counters") record(change.value);
    }
  } catch (error) {
    if (!controller.signal.aborted) console.error(`a watch failed: ${error}`);
  }
});
await allSeen(initial, 60_000);

if (mode === "hold") {
  console.log("READY");
  await new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", resolve));
  console.log(`WATCH_EVENTS ${events - count}`);
} else {
  const writes = Number(writesText);
  const first: number[] = [];
  const last: number[] = [];
  for (let i = 0; i < writes; i++) {
    const start = performance.now();
    const value = await http.counterIncrement(key, 1);
    await allSeen(value);
    const entry = seen.get(value)!;
    first.push(entry.first - start);
    last.push(entry.last - start);
    seen.delete(value);
    // More than the hub's interval (50 ms) since the last state: measures a change on its own.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.log(`WATCH_JSON ${JSON.stringify({ first, last })}`);
}
controller.abort();
await Promise.all(loops);
await watcherClient.close();
await http.close();
Deno.exit(0);
