/**
 * HttpClient in a browser: headless Chromium (Debian's `chromium`) loads a page served here on
 * loopback, which imports `@purple/client` bundled by `deno bundle` and calls Purple servers on
 * other ports (other origins): one started with `--cors-origin` of the page, one with a token
 * too (every call then needs a preflight, answered before the token check), one without
 * `--cors-origin`, which the browser must keep out of the page's reach. The page posts its
 * results back to this test's server. The checks are `tests/browser/page.js`.
 */

import assert from "node:assert/strict";
import { ROOT, run } from "./_process.ts";
import { type Purple, startPurple } from "./_purple.ts";

const TOKEN = "browser-token-0123456789abcdef";
const CHROMIUM = "chromium";

async function chromiumProblem(): Promise<string | undefined> {
  try {
    const { success } = await new Deno.Command(CHROMIUM, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success ? undefined : "`chromium --version` failed";
  } catch {
    return "chromium is not on PATH (Debian: apt-get install -y chromium)";
  }
}

const MISSING = await chromiumProblem();
if (MISSING !== undefined) {
  const ci = Deno.env.get("CI") === "true";
  console.error(`\n!!! ${ci ? "FAILING" : "SKIPPING"} THE BROWSER TEST: ${MISSING} !!!\n`);
  if (ci) Deno.test("chromium is installed (CI=true)", () => assert.fail(MISSING));
}

/** The flags Chromium needs here: no sandbox as root, no GPU, no network of its own. */
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

Deno.test({
  name:
    "HttpClient in headless Chromium: CORS with --cors-origin, a token's preflight, no CORS, watches",
  ignore: MISSING !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "purple-browser-" });
    const purples: Purple[] = [];
    let chromium: Deno.ChildProcess | undefined;
    let report: (results: Record<string, { ok?: unknown; error?: string }>) => void;
    const reported = new Promise<Record<string, { ok?: unknown; error?: string }>>((resolve) =>
      report = resolve
    );
    try {
      // The client as a page loads it: one ES module, bundled by deno bundle.
      await Deno.writeTextFile(
        `${dir}/entry.ts`,
        `export * from "${ROOT}/client/mod.ts";\n`,
      );
      const bundled = await run(Deno.execPath(), [
        "bundle",
        "--platform",
        "browser",
        "--config",
        `${ROOT}/deno.json`,
        "--output",
        `${dir}/client.js`,
        `${dir}/entry.ts`,
      ]);
      assert.equal(bundled.code, 0, bundled.stderr);
      const files: Record<string, [string, string]> = {
        "/index.html": [
          "text/html",
          '<!doctype html><title>running</title><script type="module" src="/page.js"></script>',
        ],
        "/page.js": ["text/javascript", await Deno.readTextFile(`${ROOT}/tests/browser/page.js`)],
        "/client.js": ["text/javascript", await Deno.readTextFile(`${dir}/client.js`)],
      };
      const page = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: () => {} },
        async (request) => {
          const path = new URL(request.url).pathname;
          if (request.method === "POST" && path === "/report") {
            report(await request.json());
            return new Response(null, { status: 204 });
          }
          const file = files[path];
          if (file === undefined) return new Response("not found", { status: 404 });
          return new Response(file[1], { headers: { "content-type": file[0] } });
        },
      );
      const origin = `http://127.0.0.1:${page.addr.port}`;
      const serve = (extra: string[]) =>
        startPurple(["http", "--backend", "memory", "--port", "0", ...extra]);
      const open = await serve(["--cors-origin", origin]);
      purples.push(open);
      const locked = await serve(["--cors-origin", origin, "--auth-token", TOKEN]);
      purples.push(locked);
      const closed = await serve([]);
      purples.push(closed);
      const query = new URLSearchParams({
        open: `http://127.0.0.1:${open.httpPort}`,
        locked: `http://127.0.0.1:${locked.httpPort}`,
        token: TOKEN,
        closed: `http://127.0.0.1:${closed.httpPort}`,
      });
      chromium = new Deno.Command(CHROMIUM, {
        args: [
          ...CHROMIUM_FLAGS,
          `--user-data-dir=${dir}/profile`,
          `${origin}/index.html?${query}`,
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const results = await Promise.race([
        reported,
        new Promise<never>((_, reject) =>
          timer = setTimeout(
            () => reject(new Error("The page reported nothing within 60 s")),
            60_000,
          )
        ),
      ]).finally(() => clearTimeout(timer));
      await page.shutdown();

      assert.deepEqual(results["every operation"], {
        ok: {
          cached: "a1b2c3",
          counter: "2",
          flag: true,
          bytes: [0, 1, 2, 255],
          items: ["shopping"],
        },
      });
      assert.deepEqual(results["a miss is NotFoundError, with the server's reason"], {
        ok: { notFound: true, message: "Cannot find cache key 'never-set': not found" },
      });
      assert.deepEqual(results["with a token (a preflight before each call)"], {
        ok: { value: "5", refused: true },
      });
      // The browser refuses the answer of a server that does not allow the page's origin: the
      // client sees a network error.
      assert.deepEqual(results["a Purple without --cors-origin is out of reach"], {
        ok: { name: "UnavailableError" },
      });
      // A watch: the first state (absent), then the other client's write, in the page.
      assert.deepEqual(
        results["a watch through HttpClient (fetch streaming) sees another client's write"],
        {
          ok: [
            { service: "flags", key: "browser-watch", exists: false, value: false },
            { service: "flags", key: "browser-watch", exists: true, value: true },
          ],
        },
      );
      assert.deepEqual(results["a watch through the browser's EventSource"], {
        ok: [
          { service: "counters", key: "browser-events", exists: false, value: "0" },
          { service: "counters", key: "browser-events", exists: true, value: "3" },
        ],
      });
    } finally {
      try {
        chromium?.kill("SIGKILL");
      } catch { /* already gone */ }
      await chromium?.status;
      for (const purple of purples) await purple.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
