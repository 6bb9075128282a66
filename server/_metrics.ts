// The hot-path side of Purple's metrics (see metrics.ts for the metrics themselves): the servers
// count into plain arrays (no label hashing, no allocation) and prom-client reads them when
// `/metrics` is scraped. Private to the server.

import { OPERATION_NAMES, type OperationName } from "@purple/protocol";
import type { ErrorCode } from "@purple/protocol/errors";

/** The protocols, as the `protocol` label says them. */
export const PROTOCOLS = ["http", "grpc"] as const;

/** A protocol of a server. */
export type MetricsProtocol = (typeof PROTOCOLS)[number];

/** The outcomes: `ok`, then each error code. */
export const OUTCOMES = [
  "ok",
  "NOT_FOUND",
  "INVALID_ARGUMENT",
  "VALUE_TOO_LARGE",
  "UNAVAILABLE",
  "UNAUTHENTICATED",
  "PERMISSION_DENIED",
  "PRECONDITION_FAILED",
  "INTERNAL",
] as const satisfies ReadonlyArray<"ok" | ErrorCode>;

/** What a request came to: `ok`, or the code of its error. */
export type Outcome = (typeof OUTCOMES)[number];

// Every error code has its outcome: a new code that is not listed above does not compile.
const _everyCode: [Exclude<ErrorCode, Outcome>] extends [never] ? true : never = true;

/** The limits whose refusals are counted. */
export const LIMITS = ["concurrent_requests", "body_timeout", "body_size"] as const;

/** A limit that refused a request. */
export type RefusingLimit = (typeof LIMITS)[number];

/** The operations, then `none`. */
export const OPERATION_LABELS = [...OPERATION_NAMES, "none"] as const;

/**
 * The upper bounds of the latency buckets, in seconds: from 100 µs (a memory backend over
 * loopback) to 10 s (past the default backend time limit).
 */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

const OPERATION_INDEX = new Map<string, number>(
  OPERATION_LABELS.map((name, index) => [name, index]),
);
const OUTCOME_INDEX = new Map<string, number>(OUTCOMES.map((name, index) => [name, index]));

/** The index of an operation (or `none` for `undefined`) in the counters' arrays. */
export function operationIndex(name: OperationName | undefined): number {
  return OPERATION_INDEX.get(name ?? "none")!;
}

export const OPS = OPERATION_LABELS.length;
const BUCKETS = LATENCY_BUCKETS.length;

/** The hot-path side of the metrics: plain arrays, read by prom-client at scrape time. */
export class Recorder {
  /** Requests, by [protocol][operation * outcomes + outcome]. */
  readonly requests: Float64Array[] = PROTOCOLS.map(() => new Float64Array(OPS * OUTCOMES.length));
  /** Latency bucket counts (not cumulative), by [protocol][operation * (buckets + 1) + bucket]. */
  readonly buckets: Float64Array[] = PROTOCOLS.map(() => new Float64Array(OPS * (BUCKETS + 1)));
  /** Latency sums in seconds, by [protocol][operation]. */
  readonly sums: Float64Array[] = PROTOCOLS.map(() => new Float64Array(OPS));
  /** Backend errors, by [protocol][operation]. */
  readonly backendErrors: Float64Array[] = PROTOCOLS.map(() => new Float64Array(OPS));
  /** Backend timeouts, by [protocol][operation]. */
  readonly backendTimeouts: Float64Array[] = PROTOCOLS.map(() => new Float64Array(OPS));
  /** Refusals, by [protocol][limit]. */
  readonly refusals: Float64Array[] = PROTOCOLS.map(() => new Float64Array(LIMITS.length));
  /** Where each protocol's requests in flight are read from. */
  readonly inFlight: Array<Array<() => number>> = PROTOCOLS.map(() => []);

  /**
   * Counts one answered request.
   *
   * @param protocol 0 for HTTP, 1 for gRPC.
   * @param operation The operation's index ({@linkcode operationIndex}).
   * @param outcome `ok` or the error's code.
   * @param seconds How long it took.
   * @param backendFailed Whether the backend failed it (an unavailable or internal error that
   * came from the operation, not from a limit or a guard).
   */
  request(
    protocol: number,
    operation: number,
    outcome: Outcome,
    seconds: number,
    backendFailed = false,
  ): void {
    this.requests[protocol][operation * OUTCOMES.length + OUTCOME_INDEX.get(outcome)!]++;
    let bucket = 0;
    while (bucket < BUCKETS && seconds > LATENCY_BUCKETS[bucket]) bucket++;
    this.buckets[protocol][operation * (BUCKETS + 1) + bucket]++;
    this.sums[protocol][operation] += seconds;
    if (backendFailed) this.backendErrors[protocol][operation]++;
  }

  /** Counts a request refused by a limit. */
  refused(protocol: number, limit: RefusingLimit): void {
    this.refusals[protocol][LIMITS.indexOf(limit)]++;
  }

  /** Counts a backend operation that outlived the backend time limit. */
  backendTimeout(protocol: number, operation: OperationName): void {
    this.backendTimeouts[protocol][operationIndex(operation)]++;
  }
}

const recorders = new WeakMap<object, Recorder>();

/** Gives a metrics object its recorder (its constructor does). */
export function bindRecorder(metrics: object, recorder: Recorder): void {
  recorders.set(metrics, recorder);
}

/** The recorder of a `Metrics`, for the servers. */
export function recorderOf(metrics: object): Recorder {
  return recorders.get(metrics)!;
}

/** The index of a protocol in the recorder's arrays. */
export function protocolIndex(protocol: MetricsProtocol): number {
  return PROTOCOLS.indexOf(protocol);
}

/**
 * The latency histogram, in prom-client's metric shape (`get()` gives the values to print):
 * its buckets are counted by the recorder, without prom-client's per-observation label lookup.
 */
export function latencyHistogram(recorder: Recorder) {
  const name = "purple_request_duration_seconds";
  const help = "Time from a request's arrival to its answer, by protocol and operation";
  return {
    name,
    help,
    type: "histogram",
    aggregator: "sum",
    get() {
      const values: Array<
        { metricName: string; labels: Record<string, string | number>; value: number }
      > = [];
      PROTOCOLS.forEach((protocol, p) => {
        for (let op = 0; op < OPS; op++) {
          const base = op * (BUCKETS + 1);
          let count = 0;
          for (let b = 0; b <= BUCKETS; b++) count += recorder.buckets[p][base + b];
          if (count === 0) continue;
          const labels = { protocol, operation: OPERATION_LABELS[op] };
          let cumulative = 0;
          for (let b = 0; b <= BUCKETS; b++) {
            cumulative += recorder.buckets[p][base + b];
            values.push({
              metricName: `${name}_bucket`,
              labels: { ...labels, le: b < BUCKETS ? LATENCY_BUCKETS[b] : "+Inf" },
              value: cumulative,
            });
          }
          values.push({ metricName: `${name}_sum`, labels, value: recorder.sums[p][op] });
          values.push({ metricName: `${name}_count`, labels, value: count });
        }
      });
      return Promise.resolve({ name, help, type: "histogram", values, aggregator: "sum" });
    },
  };
}
