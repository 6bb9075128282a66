// HttpClient from Node or Bun (fetch only, no dependency): the npm package of @purple/client.
//
//   npm install @purple/client        # or the tarball of `deno task build:npm`
//   node http_client.mjs              # or: bun http_client.mjs
//
// PURPLE_URL says where Purple's HTTP server is (default http://localhost:8080).
import process from "node:process";
import { HttpClient, NotFoundError } from "@purple/client";

const purple = new HttpClient(process.env.PURPLE_URL ?? "http://localhost:8080");

console.log(await purple.setAdd("todos", "shopping")); // [ 'shopping' ]
console.log(await purple.counterIncrement("hits", 2)); // 2n: counters are bigints
await purple.kvPut("greeting", "hello");
console.log(new TextDecoder().decode(await purple.kvGet("greeting"))); // hello
try {
  await purple.cacheGet("never-set");
} catch (error) {
  if (!(error instanceof NotFoundError)) throw error;
  console.log(`a miss: ${error.message}`); // a miss: Cannot find cache key 'never-set': not found
}
await purple.close();
