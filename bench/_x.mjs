import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
const counters = new Map();
function decode(bytes) { let pos = 0, key = "", amount = 0; while (pos < bytes.length) { const tag = bytes[pos++]; if (tag === 0x0a) { const l = bytes[pos++]; key = bytes.toString("utf8", pos, pos + l); pos += l; } else if (tag === 0x10) { let s = 1, b; do { b = bytes[pos++]; amount += (b & 0x7f) * s; s *= 128; } while (b & 0x80); } } return { key, amount }; }
function encode({ value }) { const out = [0x08]; while (value > 0x7f) { out.push((value % 128) | 0x80); value = Math.floor(value / 128); } out.push(value); return Buffer.from(out); }
const S = { CounterIncrement: { path: "/proto.Counter/CounterIncrement", requestStream: false, responseStream: false, requestSerialize: null, requestDeserialize: decode, responseSerialize: encode, responseDeserialize: null } };
const opts = JSON.parse(Deno.args[0] ?? "{}");
const server = new grpc.Server(opts);
server.addService(S, { CounterIncrement(call, cb) { const { key, amount } = call.request; const v = (counters.get(key) ?? 0) + amount; counters.set(key, v); cb(null, { value: v }); } });
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => console.log(`port ${p}`));
