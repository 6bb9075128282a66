/**
 * `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API, derived from the operation
 * table (routes, methods) and from each operation's entry in HTTP_DOCS (parameters, body,
 * answers). Every documented route is checked against a running `purple`: each operation's
 * example request and the example of each of its documented errors are sent, and the status, the
 * content type and the body must be what the served document says; then, with tokens, the 401
 * and 403 it documents for every operation.
 */

import assert from "node:assert/strict";
import { OPERATIONS, WIRE_OPERATION_NAMES, type WireOperationName } from "@purple/protocol";
import { type ExampleRequest, HTTP_DOCS, type JsonSchema } from "../server/_http_docs.ts";
import { templatePath } from "../server/_openapi.ts";
import { startPurple } from "./_purple.ts";

// deno-lint-ignore no-explicit-any
type Doc = any;

const FULL = "full-access-token-0123456789";
const READ = "read-only-token-0123456789ab";

/** Checks a JSON value against a schema of the document (the subset Purple uses). */
function validate(doc: Doc, schema: JsonSchema, value: unknown, where: string): void {
  if (schema.$ref !== undefined) {
    const target = schema.$ref.replace(/^#\//, "").split("/")
      .reduce((node: Doc, part: string) => node?.[part], doc);
    assert.ok(target, `${where}: ${schema.$ref} resolves`);
    return validate(doc, target, value, where);
  }
  switch (schema.type) {
    case "object": {
      assert.ok(typeof value === "object" && value !== null && !Array.isArray(value), where);
      const object = value as Record<string, unknown>;
      for (const name of schema.required ?? []) assert.ok(name in object, `${where}: ${name}`);
      for (const [name, item] of Object.entries(object)) {
        const property = schema.properties?.[name];
        if (property === undefined) {
          assert.notEqual(schema.additionalProperties, false, `${where}: extra '${name}'`);
        } else validate(doc, property, item, `${where}.${name}`);
      }
      return;
    }
    case "array":
      assert.ok(Array.isArray(value), where);
      (value as unknown[]).forEach((item, i) =>
        validate(doc, schema.items!, item, `${where}[${i}]`)
      );
      return;
    case "integer":
      assert.ok(Number.isInteger(value), `${where}: ${value} is an integer`);
      return;
    case "string":
      assert.equal(typeof value, "string", where);
      return;
    case "boolean":
      assert.equal(typeof value, "boolean", where);
      return;
  }
}

/** Sends an example request of an operation, and what it needs first. */
async function send(
  base: string,
  method: string,
  path: string,
  example: ExampleRequest,
  token?: string,
): Promise<Response> {
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  for (const first of example.before ?? []) {
    const answer = await fetch(`${base}${first.path}`, {
      method: first.method,
      headers: { ...auth, ...(first.body ? { "content-type": first.body.contentType } : {}) },
      body: first.body?.text,
    });
    assert.ok(answer.ok, `${first.method} ${first.path}: ${answer.status}`);
    await answer.body?.cancel();
  }
  let url = `${base}${path.replace(/:key$/, encodeURIComponent(example.key ?? ""))}`;
  if (example.query) url += `?${new URLSearchParams(example.query)}`;
  return await fetch(url, {
    method,
    headers: {
      accept: example.accept ?? "application/json",
      ...example.headers,
      ...auth,
      ...(example.body ? { "content-type": example.body.contentType } : {}),
    },
    body: example.body?.text,
  });
}

/**
 * The body of an answer; of an event stream (a watch, which stays open), its first event, checked
 * to be one change as JSON.
 */
async function bodyText(answer: Response): Promise<string> {
  if (answer.headers.get("content-type")?.startsWith("text/event-stream") !== true) {
    return await answer.text();
  }
  const reader = answer.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/^data: .*\n\n/m.test(text)) {
    const { done, value } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
  const data = /^data: (.*)$/m.exec(text);
  assert.ok(data, `an event with data: ${text}`);
  const change = JSON.parse(data[1]);
  assert.equal(typeof change.service, "string");
  assert.equal(typeof change.exists, "boolean");
  return text;
}

/** Checks an answer against the document's response object for its status. */
async function conforms(doc: Doc, operation: Doc, answer: Response, what: string): Promise<void> {
  const text = await bodyText(answer);
  let response = operation.responses[String(answer.status)];
  assert.ok(response, `${what}: ${answer.status} is documented (${text})`);
  if (response.$ref) {
    response = response.$ref.replace(/^#\//, "").split("/")
      .reduce((node: Doc, part: string) => node[part], doc);
  }
  if (response.content === undefined) {
    assert.equal(text, "", `${what}: no body`);
    return;
  }
  const type = answer.headers.get("content-type") ?? "";
  const media = response.content[type.split(";")[0]] ?? response.content[type];
  assert.ok(media, `${what}: ${type} is a documented content type`);
  if (type.startsWith("application/json")) {
    validate(doc, media.schema, JSON.parse(text), what);
  }
}

Deno.test("GET /openapi.json: an OpenAPI 3.1 document of every operation of the table", async () => {
  const purple = await startPurple(["http", "--backend", "memory", "--port", "0"]);
  try {
    const answer = await fetch(`http://127.0.0.1:${purple.httpPort}/openapi.json`);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get("content-type"), "application/json");
    const doc = await answer.json();
    assert.equal(doc.openapi, "3.1.0");
    assert.equal(doc.info.title, "Purple");
    const ids: string[] = [];
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Doc>)) {
      for (const [method, operation] of Object.entries(methods as Record<string, Doc>)) {
        const names: string[] = operation["x-purple-operations"] ?? [operation.operationId];
        ids.push(...names);
        for (const name of names as WireOperationName[]) {
          if (!WIRE_OPERATION_NAMES.includes(name)) continue;
          const route = OPERATIONS[name].http;
          assert.equal(method.toUpperCase(), route.method, name);
          assert.equal(path.replace(/\{\w+\}$/, ":key"), route.path, name);
          // Grouped by the first segment of the route: `/kv` and `/kv/{key}` are both `kv`.
          assert.deepEqual(operation.tags, [route.path.split("/")[1]], name);
          for (const status of ["401", "500", "503"]) assert.ok(operation.responses[status], name);
          if (OPERATIONS[name].access !== "read") {
            assert.ok(operation.responses["403"], `${name}: 403 for what may write`);
          }
        }
        if (names.every((name) => OPERATIONS[name as WireOperationName]?.access === "read")) {
          assert.equal(operation.responses["403"], undefined, `${names}: no 403 for reads`);
        }
      }
    }
    assert.deepEqual(
      ids.sort(),
      [...WIRE_OPERATION_NAMES, "ping", "metrics", "openapi"].sort(),
      "every operation with a route (kvGet travels as kvGetEntry), /ping, /metrics, /openapi.json",
    );
  } finally {
    await purple.stop();
  }
});

Deno.test("every documented route answers as the document says, examples and errors", async (t) => {
  // Small limits, so that the documented 413 examples are over them.
  const purple = await startPurple([
    "http",
    "--backend",
    "memory",
    "--port",
    "0",
    "--max-value-bytes",
    "1024",
    "--max-set-items",
    "2",
    "--max-watch-keys",
    "4",
  ]);
  const base = `http://127.0.0.1:${purple.httpPort}`;
  try {
    const doc = await (await fetch(`${base}/openapi.json`)).json();
    const operationOf = (name: string) => {
      for (const methods of Object.values(doc.paths as Record<string, Doc>)) {
        for (const operation of Object.values(methods as Record<string, Doc>)) {
          if ((operation["x-purple-operations"] ?? [operation.operationId]).includes(name)) {
            return operation;
          }
        }
      }
      assert.fail(`${name} is not in the document`);
    };
    for (const name of WIRE_OPERATION_NAMES) {
      const { method, path } = OPERATIONS[name].http;
      const entry = HTTP_DOCS[name];
      const operation = operationOf(name);
      await t.step(`${name}: ${method} ${path}`, async () => {
        const ok = await send(base, method, path, entry.example);
        if (ok.status !== entry.ok.status) {
          assert.fail(`${name}: ${ok.status}, not ${entry.ok.status}: ${await ok.text()}`);
        }
        await conforms(doc, operation, ok, `${name} ok`);
        for (const [status, { example }] of Object.entries(entry.errors)) {
          const answer = await send(base, method, path, example);
          assert.equal(answer.status, Number(status), `${name} ${status}`);
          await conforms(doc, operation, answer, `${name} ${status}`);
        }
      });
    }
    await t.step("GET /ping, /metrics and /openapi.json", async () => {
      for (const id of ["ping", "metrics", "openapi"]) {
        const path = Object.entries(doc.paths as Record<string, Doc>)
          .find(([, methods]) => methods.get?.operationId === id)![0];
        const answer = await fetch(`${base}${path}`);
        assert.equal(answer.status, 200, path);
        await conforms(doc, operationOf(id), answer, path);
      }
    });
    await t.step("the parameters' examples are the examples the test sent", () => {
      const counter = operationOf("counterIncrement");
      const increment = counter.parameters.find((p: Doc) => p.name === "increment");
      assert.equal(increment.example, HTTP_DOCS.counterIncrement.example.query!.increment);
      assert.equal(increment.required, true);
    });
  } finally {
    assert.equal((await purple.stop()).code, 0);
  }
});

Deno.test("with tokens, every operation answers the documented 401, and writes the 403", async () => {
  const purple = await startPurple([
    "http",
    "--backend",
    "memory",
    "--port",
    "0",
    "--auth-token",
    FULL,
    "--read-token",
    READ,
  ]);
  const base = `http://127.0.0.1:${purple.httpPort}`;
  try {
    const doc = await (await fetch(`${base}/openapi.json`, {
      headers: { authorization: `Bearer ${READ}` },
    })).json();
    for (const name of WIRE_OPERATION_NAMES) {
      const { method, path } = OPERATIONS[name].http;
      const template = templatePath(path, HTTP_DOCS[name].key);
      const operation = doc.paths[template][method.toLowerCase()];
      const example = { ...HTTP_DOCS[name].example, before: [] };
      const anonymous = await send(base, method, path, example);
      assert.equal(anonymous.status, 401, name);
      await conforms(doc, operation, anonymous, `${name} 401`);
      const reader = await send(base, method, path, example, READ);
      if (OPERATIONS[name].access !== "read") {
        assert.equal(reader.status, 403, name);
        await conforms(doc, operation, reader, `${name} 403`);
      } else {
        assert.ok(reader.status < 500, name);
        await reader.body?.cancel();
      }
    }
  } finally {
    await purple.stop();
  }
});
