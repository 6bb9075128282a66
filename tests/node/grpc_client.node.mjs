// GrpcClient in Node: node --test grpc_client.node.mjs (see every_operation.mjs).

import { GrpcClient } from "@purple/client/grpc";
import { everyOperation } from "./every_operation.mjs";

everyOperation("GrpcClient", (down) =>
  new GrpcClient(
    down ? process.env.PURPLE_DOWN_ADDRESS : process.env.PURPLE_GRPC_ADDRESS,
    { timeoutMs: 5_000 },
  ));
