// The patch of grpc-js in server/_grpc_client_faults.ts, tested directly: it reaches into
// grpc-js's internals (a deep import, a private method, a global constant), so a grpc-js upgrade
// that moves any of them must fail here, loudly, rather than quietly change what clients get.

import assert from "node:assert/strict";
import http2 from "node:http2";
import { BaseServerInterceptingCall } from "@grpc/grpc-js/build/src/server-interceptors.js";
import { GRPC_STATUS } from "@purple/protocol/errors";
import denoJson from "../deno.json" with { type: "json" };
import {
  asClientFault,
  fixGrpcClientFaults,
  withClientFaults,
  WRAPPED,
} from "../server/_grpc_client_faults.ts";

Deno.test("grpc-js is pinned exactly: the client-fault patch was written against that version", () => {
  assert.match(denoJson.imports["@grpc/grpc-js"], /^npm:@grpc\/grpc-js@\d+\.\d+\.\d+$/);
});

Deno.test("asClientFault() turns grpc-js's INTERNAL for a client's fault into INVALID_ARGUMENT", () => {
  const cases: Array<[string, RegExp]> = [
    ['Invalid grpc-timeout value "1Z"', /^Bad grpc-timeout header: .*found '1Z'$/],
    ["Failed to decompress message", /^Bad request message: it does not decompress/],
    ["Error deserializing request: bad", /^Bad request message: it is not a valid protobuf/],
  ];
  for (const [details, message] of cases) {
    const fixed = asClientFault({ code: GRPC_STATUS.INTERNAL, details });
    assert.equal(fixed.code, GRPC_STATUS.INVALID_ARGUMENT, details);
    assert.match(fixed.details ?? "", message);
  }
  const other = { code: GRPC_STATUS.INTERNAL, details: "Internal server error" };
  assert.equal(asClientFault(other), other, "a server fault stays INTERNAL");
  const notFound = { code: 5, details: 'Invalid grpc-timeout value "1Z"' };
  assert.equal(asClientFault(notFound), notFound, "only INTERNAL is rewritten");
});

Deno.test("fixGrpcClientFaults() wraps grpc-js's sendStatus once and sets the 415 constant", () => {
  const prototype = BaseServerInterceptingCall.prototype as unknown as Record<
    string | symbol,
    unknown
  >;
  const before = prototype.sendStatus;
  assert.equal(typeof before, "function", "grpc-js's BaseServerInterceptingCall has sendStatus");
  fixGrpcClientFaults();
  const wrapped = prototype.sendStatus as (status: { code: number; details: string }) => void;
  assert.equal(prototype[WRAPPED], true);
  fixGrpcClientFaults();
  assert.equal(prototype.sendStatus, wrapped, "a second call changes nothing");
  const constants = http2.constants as unknown as Record<string, number>;
  assert.equal(constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE, 415);
  assert.notEqual(wrapped, before, "grpc-js's method is replaced");
});

Deno.test("withClientFaults() hands grpc-js's method the rewritten status, on the same call", () => {
  const sent: Array<{ self: unknown; code?: number }> = [];
  const sendStatus = withClientFaults(function (this: unknown, status) {
    sent.push({ self: this, code: status.code });
  });
  const call = {};
  sendStatus.call(call, { code: GRPC_STATUS.INTERNAL, details: "Failed to decompress message" });
  sendStatus.call(call, { code: GRPC_STATUS.NOT_FOUND, details: "gone" });
  assert.deepEqual(sent, [
    { self: call, code: GRPC_STATUS.INVALID_ARGUMENT },
    { self: call, code: GRPC_STATUS.NOT_FOUND },
  ]);
});
