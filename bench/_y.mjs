import http2 from "node:http2";
import { createServer } from "node:net";
const server = http2.createServer();
server.on("stream", (stream) => { stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true }); stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" })); stream.end(Buffer.from([0,0,0,0,2,8,1])); });
if (Deno.args[0] === "native") server.listen(0, "127.0.0.1", () => console.log(`port ${server.address().port}`));
else { const l = createServer((s) => server.emit("connection", s)); l.listen(0, "127.0.0.1", () => console.log(`port ${l.address().port}`)); }
