// HttpClient in Node: node --test http_client.node.mjs (see every_operation.mjs).

import { HttpClient } from "@purple/client";
import { everyOperation } from "./every_operation.mjs";

everyOperation("HttpClient", (down) =>
  new HttpClient(
    down ? `http://${process.env.PURPLE_DOWN_ADDRESS}` : process.env.PURPLE_HTTP_URL,
    { timeoutMs: 5_000 },
  ));
