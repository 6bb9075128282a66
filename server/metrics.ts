/**
 * Purple's metrics, in the Prometheus text format (prom-client), every name prefixed `purple_`:
 *
 * | metric                                                        | type      | what                                                                 |
 * | ------------------------------------------------------------- | --------- | -------------------------------------------------------------------- |
 * | `purple_requests_total{protocol, operation, outcome}`         | counter   | requests answered; `outcome` is `ok` or the error code, lower case    |
 * | `purple_request_duration_seconds{protocol, operation}`        | histogram | from the request's arrival to its answer                             |
 * | `purple_requests_in_flight{protocol}`                         | gauge     | requests being handled now                                           |
 * | `purple_backend_errors_total{protocol, operation}`            | counter   | requests the backend failed (unavailable or internal), timeouts too  |
 * | `purple_backend_timeouts_total{protocol, operation}`          | counter   | backend operations over `--backend-timeout-ms`                       |
 * | `purple_refusals_total{protocol, limit}`                      | counter   | requests refused by a limit: `concurrent_requests`, `body_timeout`, `body_size` |
 * | `purple_process_*`, `purple_nodejs_*`                         |           | prom-client's default process metrics                                |
 *
 * `operation` is a name of the operation table (`cacheGet`, ...), or `none` for a request that
 * is not one (`/ping`, `/metrics`, an unknown route). The servers count into plain arrays on
 * the hot path (no label hashing, no allocation); prom-client reads them when `/metrics` is
 * scraped.
 *
 * @example
 * ```ts
 * import { Metrics } from "@purple/server";
 *
 * const metrics = new Metrics({ process: false });
 * console.log((await metrics.text()).includes("# TYPE purple_requests_total counter")); // true
 * ```
 *
 * @module
 */

import { Counter, Gauge, type Metric, Registry } from "prom-client";
import * as promClient from "prom-client";
import {
  bindRecorder,
  latencyHistogram,
  LIMITS,
  OPERATION_LABELS,
  OUTCOMES,
  PROTOCOLS,
  Recorder,
} from "./_metrics.ts";

/**
 * The metrics of one Purple process, shared by its HTTP and gRPC servers: give the same object
 * to both (`ServeOptions.metrics`); the HTTP server then answers `GET /metrics` with
 * {@linkcode Metrics.text} (the `purple` command always does). See docs/metrics.md for every
 * metric.
 *
 * @example
 * ```ts
 * import { Metrics, startHttpServer } from "@purple/server";
 * import { DEFAULT_LIMITS, openBackend } from "@purple/server/backends";
 *
 * const metrics = new Metrics();
 * const ops = await openBackend({ kind: "memory" });
 * const server = await startHttpServer(ops, {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   limits: DEFAULT_LIMITS,
 *   metrics,
 * });
 * await fetch(`http://127.0.0.1:${server.port}/flags/beta`).then((r) => r.body?.cancel());
 * const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
 * console.log(text.includes('purple_requests_total{protocol="http",operation="flagGet",outcome="ok"} 1')); // true
 * await server.shutdown();
 * await ops.close();
 * ```
 */
export class Metrics {
  /** The `Content-Type` of {@linkcode Metrics.text}: Prometheus' text format 0.0.4. */
  readonly contentType: string;
  #registry: Registry;

  /**
   * Creates the metrics of a process.
   *
   * @param options `process: false` leaves out prom-client's default process metrics (CPU,
   * memory, event loop, handles).
   */
  constructor(options: { process?: boolean } = {}) {
    const recorder = new Recorder();
    bindRecorder(this, recorder);
    const registry = new Registry();
    this.#registry = registry;
    this.contentType = registry.contentType;
    const registers = [registry];
    const each = (
      counter: Counter<string>,
      source: Float64Array[],
      labels: (protocol: string, index: number) => Record<string, string>,
    ) => {
      counter.reset();
      source.forEach((values, p) =>
        values.forEach((value, index) => {
          if (value > 0) counter.inc(labels(PROTOCOLS[p], index), value);
        })
      );
    };
    new Counter({
      name: "purple_requests_total",
      help: "Requests answered, by protocol, operation and outcome (ok or the error code)",
      labelNames: ["protocol", "operation", "outcome"],
      registers,
      collect() {
        each(this, recorder.requests, (protocol, index) => ({
          protocol,
          operation: OPERATION_LABELS[Math.floor(index / OUTCOMES.length)],
          outcome: OUTCOMES[index % OUTCOMES.length].toLowerCase(),
        }));
      },
    });
    registry.registerMetric(latencyHistogram(recorder) as unknown as Metric);
    new Gauge({
      name: "purple_requests_in_flight",
      help: "Requests being handled now, by protocol",
      labelNames: ["protocol"],
      registers,
      collect() {
        this.reset();
        recorder.inFlight.forEach((sources, p) => {
          if (sources.length === 0) return;
          this.set(
            { protocol: PROTOCOLS[p] },
            sources.reduce((sum, read) => sum + read(), 0),
          );
        });
      },
    });
    new Counter({
      name: "purple_backend_errors_total",
      help: "Requests the backend failed (unavailable, timed out or internal), by operation",
      labelNames: ["protocol", "operation"],
      registers,
      collect() {
        each(this, recorder.backendErrors, (protocol, index) => ({
          protocol,
          operation: OPERATION_LABELS[index],
        }));
      },
    });
    new Counter({
      name: "purple_backend_timeouts_total",
      help: "Backend operations that outlived --backend-timeout-ms, by operation",
      labelNames: ["protocol", "operation"],
      registers,
      collect() {
        each(this, recorder.backendTimeouts, (protocol, index) => ({
          protocol,
          operation: OPERATION_LABELS[index],
        }));
      },
    });
    new Counter({
      name: "purple_refusals_total",
      help: "Requests refused by a limit: concurrent_requests, body_timeout or body_size",
      labelNames: ["protocol", "limit"],
      registers,
      collect() {
        each(this, recorder.refusals, (protocol, index) => ({ protocol, limit: LIMITS[index] }));
      },
    });
    if (options.process !== false) {
      promClient.collectDefaultMetrics({ register: registry, prefix: "purple_" });
    }
  }

  /**
   * The metrics now, in the Prometheus text format.
   *
   * @returns The text of a `GET /metrics` answer.
   */
  text(): Promise<string> {
    return this.#registry.metrics();
  }
}
