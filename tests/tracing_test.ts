/**
 * Deno's built-in OpenTelemetry (`OTEL_DENO=true`): the spans of Purple's HTTP requests carry the
 * operation's name, `http.route` and `purple.operation`; other requests keep Deno's name (the
 * method). The spans go to an OTLP/HTTP JSON receiver played by this test, on loopback.
 */

import assert from "node:assert/strict";
import { startPurple } from "./_purple.ts";

interface Span {
  name: string;
  attributes: Record<string, unknown>;
}

Deno.test("OTEL_DENO=true: each operation's HTTP span is named after the operation", async () => {
  const spans: Span[] = [];
  const receiver = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const body = await request.text();
      if (new URL(request.url).pathname === "/v1/traces") {
        const data = JSON.parse(body);
        for (const resource of data.resourceSpans ?? []) {
          for (const scope of resource.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) {
              const attributes = Object.fromEntries(
                (span.attributes ?? []).map((
                  a: { key: string; value: Record<string, unknown> },
                ) => [
                  a.key,
                  Object.values(a.value)[0],
                ]),
              );
              spans.push({ name: span.name, attributes });
            }
          }
        }
      }
      return new Response("{}", { headers: { "content-type": "application/json" } });
    },
  );
  const purple = await startPurple(["http", "--backend", "memory", "--port", "0"], {
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.addr.port}`,
    OTEL_DENO_CONSOLE: "ignore",
  });
  try {
    const base = `http://127.0.0.1:${purple.httpPort}`;
    for (
      const [method, path] of [["PUT", "/counters/hits?increment=1"], ["GET", "/kv/absent"], [
        "GET",
        "/ping",
      ]]
    ) {
      await (await fetch(`${base}${path}`, { method })).body?.cancel();
    }
  } finally {
    assert.equal((await purple.stop()).code, 0); // Deno sends what it holds as it exits.
    await receiver.shutdown();
  }
  const named = (name: string) => spans.find((span) => span.name === name);
  const increment = named("counterIncrement");
  assert.ok(increment, `spans: ${spans.map((span) => span.name).join(", ")}`);
  assert.equal(increment.attributes["http.route"], "/counters/:key");
  assert.equal(increment.attributes["purple.operation"], "counterIncrement");
  assert.equal(increment.attributes["url.path"], "/counters/hits");
  // GET /kv/:key serves kvGetEntry (the value and its ETag).
  assert.equal(named("kvGetEntry")?.attributes["http.response.status_code"], "404");
  const ping = spans.find((span) => span.attributes["url.path"] === "/ping");
  assert.equal(ping?.name, "GET");
});
