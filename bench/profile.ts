/**
 * Summarizes a V8 CPU profile (`deno run --cpu-prof`, or Node's `--cpu-prof`): the functions
 * with the most self time, and the time spent under each source file (inclusive, each sample
 * counted once per file), the self time by file, and by layer (Purple, grpc-js, Deno's
 * node:http2, ...; with `--calls N`, in µs per call). How the bench's profiling was done, see
 * bench/README.md.
 *
 * ```sh
 * deno run --cpu-prof --cpu-prof-dir=prof -A --unstable-kv mod.ts http --backend memory --port 8080
 * # ... load it with wrk, stop it with Ctrl+C, then:
 * deno run --allow-read bench/profile.ts prof/*.cpuprofile [--top 30] [--calls 50000]
 * ```
 *
 * @module
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a function is, shortened to the part of the path worth reading. */
function place(node: ProfileNode): string {
  const { url, lineNumber } = node.callFrame;
  if (url === "") return "(native)";
  const short = url.replace(/^file:\/\/.*?\/node_modules\/\.deno\//, "npm:")
    .replace(/^file:\/\/.*?\/(backends|server|client|bench|mod\.ts)/, "$1")
    .replace(/^ext:/, "ext:");
  return `${short}:${lineNumber + 1}`;
}

function file(node: ProfileNode): string {
  const { url } = node.callFrame;
  if (url === "") return `(${node.callFrame.functionName || "native"})`;
  return place(node).replace(/:\d+$/, "");
}

/**
 * The layer a frame belongs to, for the summary by layer: Purple's own code, its libraries,
 * Deno's Node compatibility (node:http2 apart) and Deno's core; V8's own entries stand alone.
 */
export function layer(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : `(${functionName})`;
  if (url.includes("/node_modules/")) {
    if (url.includes("@grpc+grpc-js")) return "grpc-js";
    if (url.includes("@bufbuild+protobuf")) return "protobuf-es (codecs)";
    if (url.includes("hono")) return "Hono";
    if (url.includes("ioredis") || url.includes("redis-")) return "ioredis";
    return "other npm packages";
  }
  if (url.startsWith("ext:deno_node/http2") || url.startsWith("ext:deno_node/internal/http2")) {
    return "Deno: node:http2";
  }
  if (url.startsWith("ext:deno_node/")) return "Deno: node:net, streams, events, buffers, timers";
  if (url.startsWith("ext:") || url.startsWith("node:")) {
    return "Deno: core (event loop, ops, web APIs)";
  }
  return "Purple (server/, backends/, protocol/)";
}

/** Prints the summary of one profile; with `calls`, the time of one call by layer too. */
export function summarize(profile: Profile, top: number, calls?: number): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const self = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + delta);
    total += delta;
  });
  const selfByFunction = new Map<string, number>();
  const selfByFile = new Map<string, number>();
  const inclusiveByFile = new Map<string, number>();
  const selfByLayer = new Map<string, number>();
  for (const [id, time] of self) {
    const node = byId.get(id)!;
    // A native function (a system call, a binding) counts in the layer of its caller.
    let owner: number | undefined = id;
    const v8 = ["(garbage collector)", "(idle)", "(program)", "(root)"];
    if (!v8.includes(node.callFrame.functionName)) {
      while (owner !== undefined && byId.get(owner)!.callFrame.url === "") {
        owner = parent.get(owner);
      }
    }
    const frame = byId.get(owner ?? id)!.callFrame;
    const name = layer(frame.url, frame.functionName);
    selfByLayer.set(name, (selfByLayer.get(name) ?? 0) + time);
    const fn = `${node.callFrame.functionName || "(anonymous)"} ${place(node)}`;
    selfByFunction.set(fn, (selfByFunction.get(fn) ?? 0) + time);
    selfByFile.set(file(node), (selfByFile.get(file(node)) ?? 0) + time);
    const files = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      files.add(file(byId.get(at)!));
    }
    for (const name of files) inclusiveByFile.set(name, (inclusiveByFile.get(name) ?? 0) + time);
  }
  const percent = (time: number) => `${((100 * time) / total).toFixed(1).padStart(5)}%`;
  const lines = [`Total ${(total / 1000).toFixed(0)} ms sampled`, "", "Self time, by function:"];
  for (const [name, time] of [...selfByFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${percent(time)}  ${name}`);
  }
  lines.push("", "Self time, by file:");
  for (const [name, time] of [...selfByFile].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${percent(time)}  ${name}`);
  }
  const busy = total - (selfByLayer.get("(idle)") ?? 0);
  lines.push(
    "",
    `Self time, by layer (natives in their caller's layer)${
      calls ? `, µs per call over ${calls} calls` : ""
    }:`,
  );
  for (const [name, time] of [...selfByLayer].sort((a, b) => b[1] - a[1])) {
    const perCall = calls && name !== "(idle)"
      ? `  ${(time / calls).toFixed(1).padStart(6)} µs`
      : "";
    lines.push(`  ${percent(time)}${perCall}  ${name}`);
  }
  if (calls) lines.push(`  busy: ${(busy / calls).toFixed(1)} µs per call`);
  lines.push("", "Inclusive time, by file:");
  for (const [name, time] of [...inclusiveByFile].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${percent(time)}  ${name}`);
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const args = [...Deno.args];
  const flag = args.indexOf("--top");
  const top = flag < 0 ? 25 : Number(args.splice(flag, 2)[1]);
  const callsFlag = args.indexOf("--calls");
  const calls = callsFlag < 0 ? undefined : Number(args.splice(callsFlag, 2)[1]);
  if (args.length === 0) {
    console.error(
      "Usage: deno run --allow-read bench/profile.ts FILE.cpuprofile... [--top N] [--calls N]",
    );
    Deno.exit(2);
  }
  for (const path of args) {
    console.log(`== ${path}`);
    console.log(summarize(JSON.parse(await Deno.readTextFile(path)) as Profile, top, calls));
  }
}
