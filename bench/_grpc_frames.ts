// The gRPC request frames h2load sends (its -d file is the whole request body): a
// length-prefixed message (a 0 byte for "not compressed", the length as 4 bytes big-endian,
// then the message) encoded with Purple's codecs (generated from proto/purple.proto). The files live in bench/grpc/; run this
// module to write them again after a change:
//
//   deno run --allow-write bench/_grpc_frames.ts
//
// Every bench run checks the files against these encodings first. Private to the bench.

import type { WireOperationName } from "@purple/protocol";
import { type Arguments, GRPC_BINDINGS, grpcMethod } from "@purple/protocol/wire";
import { BATCH_SIZE, DATA } from "./_scenarios.ts";

/** The folder of the frame files. */
export const FRAMES_DIR: URL = new URL("./grpc/", import.meta.url);

/** Prefixes a message as one gRPC frame. */
export function frame(message: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(5 + message.length);
  new DataView(bytes.buffer).setUint32(1, message.length);
  bytes.set(message, 5);
  return bytes;
}

/** The request message of an operation's call, as GrpcClient encodes it. */
function request<Op extends WireOperationName>(operation: Op, ...args: Arguments<Op>): Uint8Array {
  const binding = GRPC_BINDINGS[operation] as { request(...args: unknown[]): unknown };
  return grpcMethod(operation).requestSerialize(binding.request(...args) as never);
}

/** Each frame file's name and content. */
export function frames(): Record<string, Uint8Array> {
  return {
    "counter_increment.bin": frame(request("counterIncrement", DATA.counterKey, 1n)),
    "counter_get.bin": frame(request("counterGet", DATA.counterKey)),
    "kv_put.bin": frame(request("kvPut", DATA.kvKey, DATA.kvValue)),
    "kv_get.bin": frame(request("kvGetEntry", DATA.kvKey)),
    "set_add.bin": frame(request("setAdd", DATA.setName, DATA.setItem)),
    "cache_get.bin": frame(request("cacheGet", DATA.cacheKey)),
    "cache_set.bin": frame(
      request("cacheSet", DATA.cacheSetKey, DATA.cacheValue, DATA.cacheTtlSeconds),
    ),
    "flag_set.bin": frame(request("flagSet", DATA.flagKey, true)),
    "counter_batch_100.bin": frame(
      request(
        "batch",
        Array.from(
          { length: BATCH_SIZE },
          () => ({ op: "counterIncrement" as const, args: [DATA.counterKey, 1n] as const }),
        ),
      ),
    ),
  };
}

/** The path of a frame file. */
export function framePath(name: string): string {
  return new URL(name, FRAMES_DIR).pathname;
}

/** Returns the names of the frame files that are missing or differ from the codecs' output. */
export async function staleFrames(): Promise<string[]> {
  const stale: string[] = [];
  for (const [name, bytes] of Object.entries(frames())) {
    const file = await Deno.readFile(framePath(name)).catch(() => undefined);
    if (
      file === undefined || file.length !== bytes.length || !file.every((b, i) => b === bytes[i])
    ) {
      stale.push(name);
    }
  }
  return stale;
}

if (import.meta.main) {
  await Deno.mkdir(FRAMES_DIR, { recursive: true });
  for (const [name, bytes] of Object.entries(frames())) {
    await Deno.writeFile(framePath(name), bytes);
    console.log(`Wrote bench/grpc/${name} (${bytes.length} bytes)`);
  }
}
