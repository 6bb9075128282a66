// Deno's built-in OpenTelemetry (OTEL_DENO=true) traces every request Deno.serve handles, in a
// span named after the method only ("GET"). When it is on, Purple names the span of each
// operation's request after the operation (`kvGet`) and sets `http.route` (`/kv/:key`) and
// `purple.operation` on it, through the OpenTelemetry API that Deno registers itself with.
// When it is off, nothing here runs. Private to the servers; docs/metrics.md says more.

import type { OperationName } from "@purple/protocol";

/** Names the active span after an operation; `undefined` when OpenTelemetry is off. */
export type SpanNamer = (operation: OperationName, route: string) => void;

/** Whether Deno's OpenTelemetry is on (`OTEL_DENO` is `true` or `1`). */
function otelOn(): boolean {
  try {
    return /^(true|1)$/i.test(Deno.env.get("OTEL_DENO") ?? "");
  } catch {
    return false; // No --allow-env: nothing can have turned it on for Purple to see.
  }
}

/** The OpenTelemetry API, loaded only when Deno's OpenTelemetry is on. */
const api = otelOn() ? await import("@opentelemetry/api") : undefined;

/** The span namer, or `undefined` when Deno's OpenTelemetry is off. */
export function spanNamer(): SpanNamer | undefined {
  if (api === undefined) return undefined;
  const { trace } = api;
  return (operation, route) => {
    const span = trace.getActiveSpan();
    if (span === undefined) return;
    span.updateName(operation);
    span.setAttribute("http.route", route);
    span.setAttribute("purple.operation", operation);
  };
}
