/**
 * `/proto.Counter/CounterIncrement` answered from a Map by @connectrpc/connect-node (the gRPC
 * protocol only), for the side-by-side comparison. The service is built at run time from the
 * descriptor of proto/purple.proto that the bench writes to the file BENCH_DESCRIPTOR.
 *
 * ```sh
 * BENCH_DESCRIPTOR=purple.binpb node bench/compare/connect_unary.mjs
 * BENCH_DESCRIPTOR=purple.binpb deno run -A bench/compare/connect_unary.mjs   # GOAWAY guard
 * ```
 *
 * @module
 */

import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { listen } from "./_listen.mjs";

const set = fromBinary(FileDescriptorSetSchema, readFileSync(process.env.BENCH_DESCRIPTOR));
// Purple's file only (the health service's file is not needed). protobufjs, which wrote the
// descriptor, leaves type names relative; @bufbuild wants them fully qualified.
set.file = set.file.filter((file) => file.package === "proto");
for (const file of set.file) {
  const qualify = (name) => name.startsWith(".") ? name : `.${file.package}.${name}`;
  for (const message of file.messageType) {
    for (const field of message.field) if (field.typeName) field.typeName = qualify(field.typeName);
  }
  for (const service of file.service) {
    for (const method of service.method) {
      method.inputType = qualify(method.inputType);
      method.outputType = qualify(method.outputType);
    }
  }
}
const Counter = createFileRegistry(set).getService("proto.Counter");
if (Counter === undefined) throw new Error("Cannot find proto.Counter in the descriptor");

const counters = new Map();
const handler = connectNodeAdapter({
  grpc: true,
  grpcWeb: false,
  connect: false,
  routes(router) {
    router.service(Counter, {
      counterIncrement(request) {
        const value = (counters.get(request.key) ?? 0n) + request.amount;
        counters.set(request.key, value);
        return { value };
      },
    });
  },
});
await listen(http2.createServer(handler));
