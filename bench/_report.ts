// The bench's results: rows of figures, the targets they are held to, and the Markdown table
// and JSON they are written as. Private to the bench.

/** One timed run. */
export interface RunFigure {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

/** One measured line of the table. */
export interface Row {
  /** Unique and filterable, such as `http/memory/counter-increment` or `baseline/http-bare`. */
  id: string;
  /** `HTTP`, `gRPC` or `RESP` (redis-benchmark). */
  protocol: string;
  /** What served: a backend, or a baseline's name. */
  server: string;
  /** What was asked. */
  scenario: string;
  /** The timed runs. */
  runs: RunFigure[];
  /** Medians of the timed runs. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Errors in every run, the warm-up included. */
  errors: number;
  /** The id of the baseline row it is compared with, and the ratio of the medians. */
  baseline?: string;
  ratio?: number;
  /** What the write check found ("exact", a problem), or "-" for reads. */
  check: string;
  /** Problems that make the bench fail: lost writes, errors, a failed check. */
  failures: string[];
}

/** Other figures: start-up and memory. */
export interface Extra {
  id: string;
  what: string;
  value: number;
  unit: string;
  detail: string;
  failures: string[];
}

/** A target of the issue and whether it was met. */
export interface Target {
  what: string;
  goal: string;
  measured: string;
  met: boolean | undefined;
}

/** Everything one run of the bench produced. */
export interface Report {
  startedAt: string;
  machine: Record<string, string>;
  settings: Record<string, string | number | boolean>;
  rows: Row[];
  extras: Extra[];
  targets: Target[];
  failures: string[];
}

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Fills a row's medians from its runs. */
export function summarize(row: Omit<Row, "rps" | "p50Ms" | "p99Ms">): Row {
  return {
    ...row,
    rps: median(row.runs.map((run) => run.rps)),
    p50Ms: median(row.runs.map((run) => run.p50Ms)),
    p99Ms: median(row.runs.map((run) => run.p99Ms)),
  };
}

const fixed = (value: number | undefined, digits: number) =>
  value === undefined || Number.isNaN(value) ? "-" : value.toFixed(digits);

const thousands = (value: number) =>
  Number.isNaN(value) ? "-" : Math.round(value).toLocaleString("en-US");

/** The table of rows, in Markdown. */
export function rowsTable(rows: Row[]): string {
  const lines = [
    "| protocol | server | scenario | req/s | p50 ms | p99 ms | errors | baseline | ratio | check |",
    "| -------- | ------ | -------- | ----: | -----: | -----: | -----: | -------- | ----: | ----- |",
  ];
  for (const row of rows) {
    lines.push(
      `| ${row.protocol} | ${row.server} | ${row.scenario} | ${thousands(row.rps)} | ${
        fixed(row.p50Ms, 2)
      } | ${fixed(row.p99Ms, 2)} | ${row.errors} | ${row.baseline ?? "-"} | ${
        fixed(row.ratio, 2)
      } | ${row.check} |`,
    );
  }
  return lines.join("\n");
}

/** The ids of the gRPC servers compared side by side, besides the `compare/` rows. */
const SIDE_BY_SIDE = [
  "baseline/grpc-js-deno",
  "baseline/grpc-js-node",
  "grpc/memory/counter-increment",
];

/** The gRPC servers side by side (CounterIncrement at the same settings), fastest first. */
export function sideBySideTable(rows: Row[]): string | undefined {
  const chosen = rows.filter((row) =>
    row.id.startsWith("compare/") || SIDE_BY_SIDE.includes(row.id)
  )
    .sort((a, b) => b.rps - a.rps);
  if (!chosen.some((row) => row.id.startsWith("compare/"))) return undefined;
  const lines = [
    "| gRPC server (CounterIncrement) | calls/s | p50 ms | p99 ms | errors | × bare grpc-js (Deno) |",
    "| ------------------------------ | ------: | -----: | -----: | -----: | --------------------: |",
  ];
  for (const row of chosen) {
    const label = row.id === "grpc/memory/counter-increment" ? "purple (memory), Deno" : row.server;
    lines.push(
      `| ${label} | ${thousands(row.rps)} | ${fixed(row.p50Ms, 2)} | ${
        fixed(row.p99Ms, 2)
      } | ${row.errors} | ${row.id === "baseline/grpc-js-deno" ? "1.00" : fixed(row.ratio, 2)} |`,
    );
  }
  return lines.join("\n");
}

/** The whole report, in Markdown. */
export function markdown(report: Report): string {
  const parts = [
    `## Purple bench, ${report.startedAt}`,
    "",
    Object.entries(report.machine).map(([name, value]) => `- ${name}: ${value}`).join("\n"),
    "- settings: " +
    Object.entries(report.settings).map(([name, value]) => `${name} ${value}`).join(", "),
    "",
    rowsTable(report.rows),
  ];
  const sideBySide = sideBySideTable(report.rows);
  if (sideBySide !== undefined) parts.push("", sideBySide);
  if (report.extras.length > 0) {
    parts.push(
      "",
      "| measure | value | detail |",
      "| ------- | ----: | ------ |",
      ...report.extras.map((extra) =>
        `| ${extra.what} | ${
          fixed(extra.value, extra.unit === "MB" ? 1 : extra.unit === "×" ? 2 : 0)
        } ${extra.unit} | ${extra.detail} |`
      ),
    );
  }
  if (report.targets.length > 0) {
    parts.push(
      "",
      "| target | goal | measured | met |",
      "| ------ | ---- | -------- | --- |",
      ...report.targets.map((target) =>
        `| ${target.what} | ${target.goal} | ${target.measured} | ${
          target.met === undefined ? "not measured" : target.met ? "yes" : "**no**"
        } |`
      ),
    );
  }
  parts.push(
    "",
    report.failures.length === 0
      ? "No lost writes, no errors."
      : `**FAILED**:\n${report.failures.map((failure) => `- ${failure}`).join("\n")}`,
  );
  return parts.join("\n");
}

/** The issue's targets, evaluated on the rows and extras that were measured. */
export function evaluateTargets(rows: Row[], extras: Extra[], failures: string[]): Target[] {
  const row = (id: string) => rows.find((candidate) => candidate.id === id);
  const extra = (id: string) => extras.find((candidate) => candidate.id === id);
  const targets: Target[] = [];
  const ratioTarget = (id: string, what: string, min: number, maxP99?: number) => {
    const found = row(id);
    const p99 = maxP99 === undefined ? "" : `, p99 ≤ ${maxP99} ms`;
    if (found === undefined || found.ratio === undefined) {
      targets.push({ what, goal: `≥ ${min} × baseline${p99}`, measured: "-", met: undefined });
      return;
    }
    const met = found.ratio >= min && (maxP99 === undefined || found.p99Ms <= maxP99) &&
      found.failures.length === 0;
    targets.push({
      what,
      goal: `≥ ${min} × ${found.baseline}${p99}`,
      measured: `${found.ratio.toFixed(2)} ×, p99 ${found.p99Ms.toFixed(2)} ms, ${found.check}`,
      met,
    });
  };
  ratioTarget("http/memory/counter-increment", "HTTP memory counter increment", 0.75, 5);
  ratioTarget("http/memory/counter-get", "HTTP memory counter get", 0.75, 5);
  ratioTarget("http/redis/counter-increment", "HTTP redis counter increment", 0.40);
  ratioTarget("http/disk/counter-increment", "HTTP disk counter increment, exact", 0.15);
  ratioTarget("http/disk/kv-put", "HTTP disk KV put of 1 KiB, exact", 0.25, 20);
  ratioTarget("http/disk/set-add", "HTTP disk set add, exact", 0.25, 20);
  ratioTarget("http/disk/cache-set", "HTTP disk cache set, exact", 0.25, 20);
  ratioTarget("http/disk/flag-set", "HTTP disk flag set, exact", 0.25, 20);
  ratioTarget("grpc/disk/kv-put", "gRPC disk KV put of 1 KiB, exact", 0.5);
  ratioTarget("grpc/memory/counter-increment", "gRPC memory counter increment", 0.9);
  const startup = extra("startup/http-memory");
  const startupDefault = extra("startup/default");
  for (const found of [startup, startupDefault]) {
    if (found === undefined) continue;
    targets.push({
      what: `Start-up to the first /ping (${found.what})`,
      goal: "≤ 500 ms, median of 10",
      measured: `${found.value.toFixed(0)} ms`,
      met: found.value <= 500,
    });
  }
  const memory = extra("rss/kv-1m");
  if (memory !== undefined) {
    targets.push({
      what: memory.what,
      goal: "≤ 350 MB resident",
      measured: `${memory.value.toFixed(1)} MB`,
      met: memory.detail.includes("1,000,000 entries") ? memory.value <= 350 : undefined,
    });
  }
  targets.push({
    what: "Lost updates and errors",
    goal: "zero in every scenario",
    measured: failures.length === 0 ? "none" : `${failures.length} problem(s)`,
    met: failures.length === 0,
  });
  return targets;
}
