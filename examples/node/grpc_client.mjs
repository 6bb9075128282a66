// GrpcClient from Node: the npm package of @purple/client, with @grpc/grpc-js (installed with it).
//
//   npm install @purple/client        # or the tarball of `deno task build:npm`
//   node grpc_client.mjs
//
// PURPLE_GRPC says where Purple's gRPC server is (default localhost:8081).
import process from "node:process";
import { GrpcClient } from "@purple/client/grpc";
import { NotFoundError } from "@purple/client/errors";

const purple = new GrpcClient(process.env.PURPLE_GRPC ?? "localhost:8081");

console.log(await purple.setGet("todos")); // [ 'shopping' ]: what http_client.mjs added
console.log(await purple.counterIncrement("hits", 3)); // 5n
await purple.flagSet("beta", true);
console.log(await purple.flagGet("beta")); // true
try {
  await purple.kvGet("never-put");
} catch (error) {
  if (!(error instanceof NotFoundError)) throw error;
  console.log(`a miss: ${error.message}`); // a miss: Cannot find kv key 'never-put': not found
}
await purple.close();
