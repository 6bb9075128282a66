// The page of tests/browser_test.ts: runs HttpClient (bundled by `deno bundle` as client.js)
// in the browser against the Purple servers named in the page's query string, and posts every
// result to /report on the page's own server. Each check is one entry of CHECKS.
// (Imported by its URL: client.js exists only once the test has bundled it.)
const { HttpClient, NotFoundError, UnauthenticatedError } = await import(
  new URL("./client.js", import.meta.url).href
);

const params = new URLSearchParams(location.search);
const open = params.get("open"); // a Purple with --cors-origin of this page
const locked = params.get("locked"); // the same, with --auth-token
const token = params.get("token");
const closed = params.get("closed"); // a Purple without --cors-origin

const CHECKS = {
  "every operation": async () => {
    const client = new HttpClient(open);
    await client.cacheSet("session", "a1b2c3", 60);
    const cached = await client.cacheGet("session");
    const counter = await client.counterIncrement("hits", 2);
    await client.flagSet("beta", true);
    const flag = await client.flagGet("beta");
    await client.kvPut("greeting", new Uint8Array([0, 1, 2, 255]));
    const bytes = Array.from(await client.kvGet("greeting"));
    await client.kvDelete("greeting");
    const items = await client.setAdd("todos", "shopping");
    await client.close();
    return { cached, counter: String(counter), flag, bytes, items };
  },
  "a miss is NotFoundError, with the server's reason": async () => {
    const client = new HttpClient(open);
    try {
      await client.cacheGet("never-set");
      return "no error";
    } catch (error) {
      return { notFound: error instanceof NotFoundError, message: error.message };
    }
  },
  "with a token (a preflight before each call)": async () => {
    const client = new HttpClient(locked, { token });
    await client.counterIncrement("hits", 5);
    const value = String(await client.counterGet("hits"));
    const anonymous = new HttpClient(locked);
    let refused = false;
    try {
      await anonymous.counterGet("hits");
    } catch (error) {
      refused = error instanceof UnauthenticatedError;
    }
    return { value, refused };
  },
  "a Purple without --cors-origin is out of reach": async () => {
    try {
      await new HttpClient(closed, { timeoutMs: 5000 }).counterGet("hits");
      return "reached";
    } catch (error) {
      return { name: error.name };
    }
  },
  "a watch through HttpClient (fetch streaming) sees another client's write": async () => {
    const watcher = new HttpClient(open);
    const writer = new HttpClient(open);
    const seen = [];
    for await (const change of watcher.watch({ flags: ["browser-watch"] })) {
      const { service, key, exists, value } = change;
      seen.push({ service, key, exists, value });
      if (seen.length === 1) await writer.flagSet("browser-watch", true);
      else break;
    }
    await writer.close();
    return seen;
  },
  "a watch through the browser's EventSource": () =>
    new Promise((resolve, reject) => {
      const source = new EventSource(`${open}/watch?counters=browser-events`);
      const seen = [];
      const timer = setTimeout(() => {
        source.close();
        reject(new Error(`no second event in 10 s: ${JSON.stringify(seen)}`));
      }, 10_000);
      source.onmessage = (event) => {
        const { service, key, exists, value } = JSON.parse(event.data);
        seen.push({ service, key, exists, value });
        if (seen.length === 1) {
          new HttpClient(open).counterIncrement("browser-events", 3).catch(reject);
        } else {
          clearTimeout(timer);
          source.close();
          resolve(seen);
        }
      };
    }),
};

const results = {};
for (const [name, check] of Object.entries(CHECKS)) {
  try {
    results[name] = { ok: await check() };
  } catch (error) {
    results[name] = { error: `${error.name}: ${error.message}` };
  }
}
await fetch("/report", { method: "POST", body: JSON.stringify(results) });
document.title = "done";
