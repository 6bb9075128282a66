/**
 * Server reflection (`grpc.reflection.v1` and `v1alpha`, through `@grpc/reflection`), so that
 * `grpcurl -plaintext localhost:8081 list` works without the protos. The descriptors are
 * built from the embedded proto sources of `_grpc_protos.ts` with protobufjs: no file of ours
 * is read at run time.
 *
 * @module
 */

import type { Server } from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { loadFileDescriptorSetFromBuffer } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import protobuf from "protobufjs";
import descriptor from "protobufjs/ext/descriptor/index.js";
import {
  HEALTH_PROTO,
  HEALTH_PROTO_FILE,
  PURPLE_PROTO,
  PURPLE_PROTO_FILE,
} from "./_grpc_protos.ts";

/** The descriptors of `proto/purple.proto` and the health service, parsed once. */
export interface Described {
  /** The protobufjs root holding every message and service. */
  root: protobuf.Root;
  /** The encoded `FileDescriptorSet` of both files. */
  fileDescriptorSet: Uint8Array;
}

let described: Described | undefined;

/** Parses the embedded protos (once per process). */
export function describe(): Described {
  if (described !== undefined) return described;
  const root = new protobuf.Root();
  parseFile(root, PURPLE_PROTO_FILE, PURPLE_PROTO);
  parseFile(root, HEALTH_PROTO_FILE, HEALTH_PROTO);
  root.resolveAll();
  // deno-lint-ignore no-explicit-any
  const set = (root as any).toDescriptor("proto3");
  const fileDescriptorSet = descriptor.FileDescriptorSet.encode(set).finish();
  described = { root, fileDescriptorSet };
  return described;
}

/** Parses a proto source into `root`, naming its file (protobufjs would name it "<package>.proto"). */
function parseFile(root: protobuf.Root, file: string, source: string): void {
  protobuf.parse(source, root, { keepCase: true });
  const stamp = (object: protobuf.ReflectionObject) => {
    object.filename ??= file;
    if (object instanceof protobuf.Namespace) object.nestedArray.forEach(stamp);
  };
  root.nestedArray.forEach(stamp);
}

/**
 * Registers the reflection services on a server.
 *
 * @param server The server, before it binds.
 */
export function addReflection(server: Server): void {
  const definition = loadFileDescriptorSetFromBuffer(Buffer.from(describe().fileDescriptorSet));
  new ReflectionService(definition).addToServer(server);
}
