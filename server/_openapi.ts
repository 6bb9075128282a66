// The OpenAPI 3.1 document of the HTTP API, served at /openapi.json: the routes and methods from
// the operation table, each operation's parameters, body and answers from its entry in
// HTTP_DOCS (_http_docs.ts), and the answers every operation shares (tokens, busy, backend
// down) from the error table. Private to the HTTP server.

import {
  type HttpRoute,
  OPERATIONS,
  WIRE_OPERATION_NAMES,
  type WireOperationName,
} from "@purple/protocol";
import { HTTP_STATUS } from "@purple/protocol/errors";
import { HTTP_DOCS, type JsonSchema } from "./_http_docs.ts";
import { routePrefix } from "./_http_routes.ts";

/** What the document describes beside the operations. */
export interface OpenApiOptions {
  /** Purple's version. */
  version: string;
  /** Whether `GET /metrics` is served. */
  metrics: boolean;
}

type Json = Record<string, unknown>;

const ERROR: JsonSchema = {
  type: "object",
  properties: { error: { type: "string", description: "what went wrong, in one line" } },
  required: ["error"],
  additionalProperties: false,
};

const errorAnswer = (description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});

/** The answers every operation shares, by status. */
const SHARED: Record<string, Json> = {
  [HTTP_STATUS.UNAUTHENTICATED]: {
    $ref: "#/components/responses/Unauthenticated",
  },
  [HTTP_STATUS.UNAVAILABLE]: { $ref: "#/components/responses/Unavailable" },
  [HTTP_STATUS.INTERNAL]: { $ref: "#/components/responses/Internal" },
};

/**
 * `/cache/:key` as OpenAPI writes it: `/cache/{key}` (or `{set}`); a fixed path (`/kv`) as it is.
 *
 * @param path The route of the operation table.
 * @param key The name of the path parameter.
 * @returns The path template.
 */
export function templatePath(path: string, key: string | undefined): string {
  return path.includes(":") ? `${routePrefix(path)}{${key}}` : path;
}

function operationObject(name: WireOperationName): Json {
  const { access } = OPERATIONS[name];
  const doc = HTTP_DOCS[name];
  const parameters: Json[] = doc.key === undefined ? [] : [{
    name: doc.key,
    in: "path",
    required: true,
    description: `the ${doc.key === "set" ? "set's name" : "key"}: non-empty, up to ` +
      "--max-key-bytes of UTF-8, percent-encoded (a `/` in it as `%2F`)",
    schema: { type: "string", minLength: 1 },
    example: doc.example.key,
  }];
  for (const [header, spec] of Object.entries(doc.headers ?? {})) {
    parameters.push({ name: header, in: "header", ...spec });
  }
  for (const [param, spec] of Object.entries(doc.query ?? {})) {
    const example = doc.example.query?.[param];
    parameters.push({
      name: param,
      in: "query",
      required: spec.required,
      description: spec.description,
      schema: spec.schema,
      ...(example === undefined ? {} : { example }),
    });
  }
  const responses: Json = {
    [doc.ok.status]: {
      description: doc.ok.description,
      ...(doc.ok.content === undefined ? {} : { content: doc.ok.content }),
      ...(doc.ok.headers === undefined ? {} : { headers: doc.ok.headers }),
    },
  };
  for (const [status, { description }] of Object.entries(doc.errors)) {
    responses[status] = errorAnswer(description);
  }
  Object.assign(responses, SHARED);
  if (access !== "read") {
    responses[HTTP_STATUS.PERMISSION_DENIED] = { $ref: "#/components/responses/PermissionDenied" };
  }
  const operation: Json = {
    operationId: name,
    summary: doc.summary,
    ...(doc.description === undefined ? {} : { description: doc.description }),
    tags: [OPERATIONS[name].http.path.split("/")[1]], // `/kv` and `/kv/:key`: `kv`
    parameters,
  };
  if (doc.body !== undefined) {
    const example = doc.example.body;
    const content: Json = {};
    for (const [type, { schema }] of Object.entries(doc.body.content)) {
      const sample = example?.contentType === type
        ? { example: type === "application/json" ? JSON.parse(example.text) : example.text }
        : {};
      content[type] = { schema, ...sample };
    }
    operation.requestBody = {
      required: doc.body.required,
      description: doc.body.description,
      content,
    };
  }
  operation.responses = responses;
  return operation;
}

/**
 * One OpenAPI operation for two of Purple's that share a method and path, one picked by a query
 * parameter (`DELETE /sets/{set}`: with `item`, setRemove; without, setDelete). Its
 * `x-purple-operations` names both.
 */
function shared(first: Json, second: Json, picker: string): Json {
  const parameters = new Map<string, Json>();
  for (const parameter of [...first.parameters as Json[], ...second.parameters as Json[]]) {
    const id = `${parameter.in} ${parameter.name}`;
    const seen = parameters.get(id);
    const inBoth = (first.parameters as Json[]).some((p) => `${p.in} ${p.name}` === id) &&
      (second.parameters as Json[]).some((p) => `${p.in} ${p.name}` === id);
    parameters.set(id, { ...(seen ?? parameter), required: inBoth && parameter.required });
  }
  return {
    ...first,
    "x-purple-operations": [first.operationId, second.operationId],
    summary: `${first.summary}; without \`${picker}\`: ${second.summary}`.replace(
      /: ([A-Z])/,
      (_, letter) => `: ${letter.toLowerCase()}`,
    ),
    description: `Two operations share this route, told apart by the query parameter ` +
      `\`${picker}\`: with it, ${first.operationId}; without it, ${second.operationId}.`,
    parameters: [...parameters.values()],
    responses: { ...second.responses as Json, ...first.responses as Json },
  };
}

/**
 * The OpenAPI 3.1 document of Purple's HTTP API.
 *
 * @param options The version, and whether `/metrics` is served.
 * @returns The document, as JSON data.
 */
export function openApiDocument(options: OpenApiOptions): Json {
  const paths: Record<string, Json> = {
    "/ping": {
      get: {
        operationId: "ping",
        summary: "Health check: answers while Purple runs (never needs a token)",
        tags: ["health"],
        security: [],
        responses: { "200": { description: "Purple runs" } },
      },
    },
  };
  // The operations with a route of their own (kvGet travels as kvGetEntry); where two share a
  // route, the one its query parameter picks comes first.
  const queryOf = (name: WireOperationName) => (OPERATIONS[name].http as HttpRoute).query;
  const names = [...WIRE_OPERATION_NAMES].sort((a, b) =>
    Number(queryOf(b) !== undefined) - Number(queryOf(a) !== undefined)
  );
  for (const name of names) {
    const { method, path } = OPERATIONS[name].http;
    const template = templatePath(path, HTTP_DOCS[name].key);
    paths[template] ??= {};
    const verb = method.toLowerCase();
    const operation = operationObject(name);
    const first = paths[template][verb] as Json | undefined;
    paths[template][verb] = first === undefined
      ? operation
      : shared(first, operation, queryOf(first.operationId as WireOperationName)!);
  }
  if (options.metrics) {
    paths["/metrics"] = {
      get: {
        operationId: "metrics",
        summary: "Metrics in Prometheus' text format (docs/metrics.md)",
        tags: ["operations"],
        responses: {
          "200": {
            description: "The metrics",
            content: { "text/plain; version=0.0.4; charset=utf-8": { schema: { type: "string" } } },
          },
          ...SHARED,
        },
      },
    };
  }
  paths["/openapi.json"] = {
    get: {
      operationId: "openapi",
      summary: "This document",
      tags: ["operations"],
      responses: {
        "200": {
          description: "The OpenAPI document",
          content: { "application/json": { schema: { type: "object" } } },
        },
        ...SHARED,
      },
    },
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "Purple",
      version: options.version,
      summary: "A cache, counters, flags, key/value and sets over HTTP and gRPC",
      description: "The HTTP API of Purple, the original Go Purple's routes with its fixes and " +
        'extensions. Every error answer is `{"error": "..."}`, with one status per error ' +
        "(400 bad input, 401 no or unknown token, 403 read-only token writing, 404 not found, " +
        "413 too large, 500 internal, 503 busy or backend unavailable); the one exception is a " +
        "404 to a request without an `Accept` header, which has the original's empty body.",
      license: { name: "MIT", identifier: "MIT" },
    },
    paths,
    components: {
      schemas: { Error: ERROR },
      responses: {
        Unauthenticated: errorAnswer(
          "No token, or an unknown one (only when Purple is started with tokens)",
        ),
        PermissionDenied: errorAnswer("A read-only token calling an operation that writes"),
        Unavailable: errorAnswer(
          "Busy (--max-concurrent-requests; Retry-After: 1), shutting down, or the backend is " +
            "down or did not answer within --backend-timeout-ms",
        ),
        Internal: errorAnswer("A bug: the details are in Purple's log"),
      },
      securitySchemes: {
        token: {
          type: "http",
          scheme: "bearer",
          description: "A token of --auth-token (full access) or --read-token (reads only), " +
            "when Purple is started with any",
        },
      },
    },
    // A token when Purple has tokens; none otherwise.
    security: [{}, { token: [] }],
  };
}
