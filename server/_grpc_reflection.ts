/**
 * Server reflection (`grpc.reflection.v1` and `v1alpha`, through `@grpc/reflection`), so that
 * `grpcurl -plaintext localhost:8081 list` works without the protos. It serves the descriptors
 * generated from `proto/purple.proto` and the health service's proto (`@purple/protocol/wire`),
 * the same ones the services are built on: nothing is read from disk at run time.
 *
 * @module
 */

import type { Server } from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { loadFileDescriptorSetFromBuffer } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { fileDescriptorSet } from "@purple/protocol/wire";

/**
 * Registers the reflection services on a server.
 *
 * @param server The server, before it binds.
 */
export function addReflection(server: Server): void {
  const definition = loadFileDescriptorSetFromBuffer(Buffer.from(fileDescriptorSet()));
  new ReflectionService(definition).addToServer(server);
}
