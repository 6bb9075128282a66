// What the HTTP API documents of each operation: its parameters, body and answers, in one entry
// per operation beside its handler (HTTP_HANDLERS in _http_routes.ts). Where each is served
// (method and route) comes from the operation table; the compiler refuses an operation without
// an entry here. openapi.ts builds the OpenAPI 3.1 document from these entries, and
// tests/openapi_test.ts sends each entry's example requests to a running server and checks the
// answers against the document. Private to the HTTP server.

import type { WireOperationName } from "@purple/protocol";
import { GO_BOOLEANS } from "@purple/protocol/text";
import {
  DEFAULT_LIST_LIMIT,
  MAX_BATCH_OPERATIONS,
  MAX_LIST_LIMIT,
  MAX_TTL_SECONDS,
} from "@purple/protocol/validate";
import { DEFAULT_MAX_WATCH_KEYS } from "@purple/protocol/watch";

/** The part of JSON Schema (2020-12, as OpenAPI 3.1 uses it) that Purple's answers need. */
export type JsonSchema = {
  type?: "object" | "string" | "integer" | "boolean" | "array";
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: JsonSchema;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  enum?: readonly string[];
  $ref?: string;
};

/** One request of an example: the key, then what travels with it. */
export interface ExampleRequest {
  /** The key or set name (it goes into the path, percent-encoded); absent on a fixed path. */
  key?: string;
  /** Request headers. */
  headers?: Record<string, string>;
  /** Query parameters. */
  query?: Record<string, string>;
  /** A body, with its `Content-Type`. */
  body?: { contentType: string; text: string };
  /** An `Accept` header; default `application/json`. */
  accept?: string;
  /** Requests to send first (to put a value in place). */
  before?: Array<{ method: string; path: string; body?: { contentType: string; text: string } }>;
}

/** An answer of the operation, by its content type (none for 204). */
export interface DocumentedAnswer {
  /** What it means. */
  description: string;
  /** Its bodies by media type; absent for an answer without a body. */
  content?: Record<string, { schema: JsonSchema }>;
  /** The headers it carries. */
  headers?: Record<string, { description: string; schema: JsonSchema }>;
}

/** What the HTTP API says of one operation. */
export interface HttpOperationDoc {
  /** One line. */
  summary: string;
  /** More, in Markdown. */
  description?: string;
  /** The path parameter, named `key` (`set` for sets); absent on a fixed path (`/kv`). */
  key?: string;
  /** The query parameters. */
  query?: Record<string, { required: boolean; description: string; schema: JsonSchema }>;
  /** The request headers it reads. */
  headers?: Record<string, { required: boolean; description: string; schema: JsonSchema }>;
  /** The request body. */
  body?: {
    required: boolean;
    description: string;
    content: Record<string, { schema: JsonSchema }>;
  };
  /** The successful answer: its status and what it holds. */
  ok: { status: 200 | 204 } & DocumentedAnswer;
  /**
   * The answers particular to this operation (400, 404, 412, 413), each with a request that gets
   * it.
   * Every operation can also answer 401 and 403 (tokens), 503 (busy, backend down or too slow)
   * and 500: the document adds those to each.
   */
  errors: Partial<Record<400 | 404 | 412 | 413, { description: string; example: ExampleRequest }>>;
  /** A request that gets `ok`. */
  example: ExampleRequest;
}

/** `{"value": "..."}` */
const VALUE_STRING: JsonSchema = {
  type: "object",
  properties: { value: { type: "string" } },
  required: ["value"],
  additionalProperties: false,
};

/** A counter's answer: the value is a signed 64-bit integer, written exactly (no rounding). */
const COUNTER: JsonSchema = {
  type: "object",
  properties: {
    counter: { type: "string", description: "the counter's key" },
    value: {
      type: "integer",
      format: "int64",
      description: "exact: parse it as a 64-bit integer (JSON.parse rounds past 2^53)",
    },
  },
  required: ["counter", "value"],
  additionalProperties: false,
};

const SET: JsonSchema = {
  type: "object",
  properties: {
    set: { type: "string", description: "the set's name" },
    items: { type: "array", items: { type: "string" }, description: "sorted (UTF-16 order)" },
  },
  required: ["set", "items"],
  additionalProperties: false,
};

const json = (schema: JsonSchema) => ({ "application/json": { schema } });

const ITEM = {
  item: {
    required: true,
    description: "the item (non-empty, up to --max-item-bytes of UTF-8)",
    schema: { type: "string", minLength: 1 },
  },
} as const;

/** A page of a listing. */
const PAGE: JsonSchema = {
  type: "object",
  properties: {
    keys: { type: "array", items: { type: "string" }, description: "the keys (set names)" },
    cursor: { type: "string", description: "where the next page starts; absent on the last" },
  },
  required: ["keys"],
  additionalProperties: false,
};

/** The query of every listing. */
const LIST_QUERY = {
  prefix: {
    required: false,
    description: "only keys that start with this (default: every key)",
    schema: { type: "string" },
  },
  limit: {
    required: false,
    description:
      `the most keys in the page, 1 to ${MAX_LIST_LIMIT} (default ${DEFAULT_LIST_LIMIT})`,
    schema: { type: "integer", minimum: 1, maximum: MAX_LIST_LIMIT },
  },
  cursor: {
    required: false,
    description: "the `cursor` of the previous page, as it came (opaque)",
    schema: { type: "string" },
  },
} as const;

/** The documentation of a service's listing: `what` it lists, a key to list. */
function listing(
  what: string,
  put: NonNullable<ExampleRequest["before"]>[number],
): HttpOperationDoc {
  return {
    summary: `List the keys of ${what} by prefix, a page at a time`,
    description: "Memory and disk list in key order, each key present during the whole listing " +
      "exactly once; Redis lists with SCAN, in no order, each key at least once (see " +
      "docs/data-api.md).",
    query: LIST_QUERY,
    ok: { status: 200, description: "A page of keys", content: json(PAGE) },
    errors: {
      400: { description: "A bad limit or cursor", example: { query: { limit: "0" } } },
    },
    example: { query: { prefix: "doc-", limit: "10" }, before: [put] },
  };
}

/** The documentation of a delete: `what` it deletes, where to put one first. */
function deletion(what: string, key: string, put: string): HttpOperationDoc {
  return {
    summary: `Delete ${what}`,
    key,
    ok: { status: 204, description: "Deleted" },
    errors: {
      404: { description: "Absent (as for every delete)", example: { key: "never-written" } },
    },
    example: { key: "old", before: [{ method: "PUT", path: put }] },
  };
}

const IF_MATCH = {
  "if-match": {
    required: false,
    description: 'only if the value\'s version is this ETag ("version"), or `*`: it exists',
    schema: { type: "string" },
  },
} as const;

/** Every operation's documentation. */
export const HTTP_DOCS: { readonly [Op in WireOperationName]: HttpOperationDoc } = {
  cacheGet: {
    summary: "Get a cache entry",
    key: "key",
    ok: { status: 200, description: "The value", content: json(VALUE_STRING) },
    errors: {
      404: {
        description: "Absent or expired. A request without `Accept` gets the original's empty " +
          "body (so that the original Go client sees an error); any other gets the JSON reason",
        example: { key: "never-set" },
      },
    },
    example: {
      key: "player1-session",
      before: [{ method: "PUT", path: "/cache/player1-session?value=a1b2c3&ttl=60" }],
    },
  },
  cacheSet: {
    summary: "Set a cache entry, with a time to live",
    description: "The value travels in `?value=`, or (an extension) as a `text/plain` body for " +
      "values too long for a URL.",
    key: "key",
    query: {
      value: {
        required: false,
        description: "the value (required unless a text/plain body carries it)",
        schema: { type: "string", minLength: 1 },
      },
      ttl: {
        required: false,
        description: "whole seconds; 0 or absent: the default, 5 s",
        schema: { type: "integer", minimum: 0, maximum: MAX_TTL_SECONDS },
      },
    },
    body: {
      required: false,
      description: "the value, when `?value=` is absent",
      content: { "text/plain": { schema: { type: "string", minLength: 1 } } },
    },
    ok: { status: 204, description: "Set" },
    errors: {
      400: {
        description: "No value, or a bad ttl",
        example: { key: "k", query: { ttl: "soon", value: "v" } },
      },
    },
    example: { key: "player1-session", query: { value: "a1b2c3", ttl: "120" } },
  },
  counterIncrement: {
    summary: "Add to a counter (atomic), and get its new value",
    key: "key",
    query: {
      increment: {
        required: true,
        description: "a signed 64-bit integer; the result must stay within int64",
        schema: { type: "integer", format: "int64" },
      },
    },
    ok: { status: 200, description: "The new value", content: json(COUNTER) },
    errors: {
      400: {
        description: "No increment, not an integer, or a result outside int64",
        example: { key: "hits", query: { increment: "1.5" } },
      },
    },
    example: { key: "hits", query: { increment: "2" } },
  },
  counterGet: {
    summary: "Get a counter (0 if never incremented)",
    key: "key",
    ok: { status: 200, description: "The value", content: json(COUNTER) },
    errors: {},
    example: { key: "hits" },
  },
  flagGet: {
    summary: "Get a flag (false if never set)",
    key: "key",
    ok: {
      status: 200,
      description: "The value",
      content: json({
        type: "object",
        properties: { value: { type: "boolean" } },
        required: ["value"],
        additionalProperties: false,
      }),
    },
    errors: {},
    example: { key: "beta" },
  },
  flagSet: {
    summary: "Set a flag",
    key: "key",
    query: {
      value: {
        required: true,
        description: `a boolean as Go reads one: ${GO_BOOLEANS.join(" ")}`,
        schema: { type: "string", enum: [...GO_BOOLEANS] },
      },
    },
    ok: { status: 204, description: "Set" },
    errors: {
      400: {
        description: "No value, or not a boolean",
        example: { key: "beta", query: { value: "yes" } },
      },
    },
    example: { key: "beta", query: { value: "true" } },
  },
  kvGetEntry: {
    summary: "Get a key/value entry, and its version (the ETag)",
    description: "As JSON (the value as a string, the original's form), or as raw bytes with " +
      "`Accept: application/octet-stream` (an extension). The `ETag` is the value's version, " +
      "for `If-Match` on PUT and DELETE.",
    key: "key",
    ok: {
      status: 200,
      description: "The value",
      content: {
        ...json(VALUE_STRING),
        "application/octet-stream": { schema: { type: "string", format: "binary" } },
      },
      headers: {
        ETag: { description: "the value's version, quoted", schema: { type: "string" } },
      },
    },
    errors: {
      404: { description: "Absent", example: { key: "never-put" } },
    },
    example: {
      key: "greeting",
      before: [{
        method: "PUT",
        path: "/kv/greeting",
        body: { contentType: "application/json", text: '{"content":"hello world"}' },
      }],
    },
  },
  kvPut: {
    summary: "Put a key/value entry",
    description: 'The original\'s JSON body `{"content": "..."}`, or raw bytes with ' +
      "`Content-Type: application/octet-stream` (an extension). With `If-Match` or " +
      "`If-None-Match: *`, only if the condition holds (compare-and-set).",
    key: "key",
    headers: {
      ...IF_MATCH,
      "if-none-match": {
        required: false,
        description: "`*`: only if the key does not exist (create only)",
        schema: { type: "string", enum: ["*"] },
      },
    },
    body: {
      required: true,
      description: "the value, non-empty, up to --max-value-bytes",
      content: {
        "application/json": {
          schema: {
            type: "object",
            properties: { content: { type: "string", minLength: 1 } },
            required: ["content"],
          },
        },
        "application/octet-stream": { schema: { type: "string", format: "binary" } },
      },
    },
    ok: { status: 204, description: "Stored" },
    errors: {
      400: {
        description: "Bad JSON, or an empty value",
        example: { key: "greeting", body: { contentType: "application/json", text: "{" } },
      },
      412: {
        description: "The condition does not hold: nothing was written",
        example: {
          key: "taken",
          headers: { "if-none-match": "*" },
          body: { contentType: "application/json", text: '{"content":"mine"}' },
          before: [{
            method: "PUT",
            path: "/kv/taken",
            body: { contentType: "application/json", text: '{"content":"theirs"}' },
          }],
        },
      },
      413: {
        description: "Over --max-value-bytes",
        example: {
          key: "big",
          body: { contentType: "application/octet-stream", text: "x".repeat(2048) },
        },
      },
    },
    example: {
      key: "greeting",
      body: { contentType: "application/json", text: '{"content":"hello world"}' },
    },
  },
  kvDelete: {
    summary: "Delete a key/value entry",
    description: "With `If-Match`, only if the value's version is the one given.",
    key: "key",
    headers: IF_MATCH,
    ok: { status: 204, description: "Deleted" },
    errors: {
      404: { description: "Absent", example: { key: "never-put" } },
      412: {
        description: "The value's version is not the one given: nothing was deleted",
        example: {
          key: "changed",
          headers: { "if-match": '"stale"' },
          before: [{
            method: "PUT",
            path: "/kv/changed",
            body: { contentType: "application/json", text: '{"content":"new"}' },
          }],
        },
      },
    },
    example: {
      key: "gone",
      before: [{
        method: "PUT",
        path: "/kv/gone",
        body: { contentType: "application/json", text: '{"content":"soon gone"}' },
      }],
    },
  },
  setGet: {
    summary: "Get a set's items (empty if it does not exist)",
    key: "set",
    ok: { status: 200, description: "The items, sorted", content: json(SET) },
    errors: {},
    example: { key: "todos" },
  },
  setAdd: {
    summary: "Add an item to a set (idempotent), and get the items",
    key: "set",
    query: ITEM,
    ok: { status: 200, description: "The items, sorted", content: json(SET) },
    errors: {
      400: { description: "No item", example: { key: "todos" } },
      413: {
        description: "The set is full (--max-set-items) and does not hold the item",
        example: {
          key: "full",
          query: { item: "one-too-many" },
          before: [{ method: "PUT", path: "/sets/full?item=a" }, {
            method: "PUT",
            path: "/sets/full?item=b",
          }],
        },
      },
    },
    example: { key: "todos", query: { item: "shopping" } },
  },
  setRemove: {
    summary: "Remove an item from a set (idempotent), and get the items",
    key: "set",
    query: ITEM,
    ok: { status: 200, description: "The items, sorted", content: json(SET) },
    errors: {
      400: { description: "An empty item", example: { key: "todos", query: { item: "" } } },
    },
    example: { key: "todos", query: { item: "running" } },
  },
  cacheDelete: deletion("a cache entry", "key", "/cache/old?value=v&ttl=60"),
  counterDelete: deletion(
    "a counter (a get then answers 0)",
    "key",
    "/counters/old?increment=1",
  ),
  flagDelete: deletion("a flag (a get then answers false)", "key", "/flags/old?value=true"),
  setDelete: deletion("a whole set (without `item`)", "set", "/sets/old?item=a"),
  cacheList: listing("cache entries (not expired)", {
    method: "PUT",
    path: "/cache/doc-1?value=v&ttl=60",
  }),
  counterList: listing("counters", { method: "PUT", path: "/counters/doc-1?increment=1" }),
  flagList: listing("flags (true or false)", { method: "PUT", path: "/flags/doc-1?value=true" }),
  kvList: listing("KV values", {
    method: "PUT",
    path: "/kv/doc-1",
    body: { contentType: "application/json", text: '{"content":"v"}' },
  }),
  setList: listing("sets (the names of those with items)", {
    method: "PUT",
    path: "/sets/doc-1?item=a",
  }),
  watch: {
    summary: "Watch keys: their states now, then each change, as Server-Sent Events",
    description: "One repeatable query parameter per service, named as its route (`cache`, " +
      "`counters`, `flags`, `kv`, `sets`): `/watch?kv=config&flags=beta`. The answer is a " +
      "`text/event-stream` that stays open: first one event per key with its current state, " +
      "then one per change (fast changes coalesced, the last state always sent), each `data:` " +
      'a change as JSON (`{"service":"kv","key":"config","exists":true,"value":...,' +
      '"version":...}`), a `: heartbeat` comment every 15 s, and `event: end` when the server ' +
      "shuts down. A refused watch is an ordinary JSON error. See docs/watch.md.",
    query: {
      kv: {
        required: false,
        description: "a KV key to watch (repeat for more; likewise cache, counters, flags, sets)",
        schema: { type: "string" },
      },
    },
    ok: {
      status: 200,
      description: "The stream of changes (it ends when the client or the server ends it)",
      content: { "text/event-stream": { schema: { type: "string" } } },
    },
    errors: {
      400: {
        description: "No key, an empty key, or a parameter that names no service",
        example: { query: { colors: "red" } },
      },
      413: {
        description: `More keys than --max-watch-keys (${DEFAULT_MAX_WATCH_KEYS} by default)`,
        example: {
          query: { cache: "a", counters: "b", flags: "c", kv: "d", sets: "e" },
        },
      },
    },
    example: { query: { kv: "config", flags: "beta" } },
  },
  batch: {
    summary: "Run many operations in one request: in order, or atomic (all or nothing)",
    description: "Each operation is `{op, ...its arguments by name}` (int64 as strings, bytes " +
      'as `{"base64": ...}`); each result `{value}` or `{error: {code, message}}`. An atomic ' +
      "batch that fails answers its error's status and changes nothing. " +
      `At most ${MAX_BATCH_OPERATIONS} operations. See docs/data-api.md.`,
    body: {
      required: true,
      description: "the operations",
      content: json({
        type: "object",
        properties: {
          operations: { type: "array", items: { type: "object" } },
          atomic: { type: "boolean", description: "all or nothing (default false)" },
        },
        required: ["operations"],
      }),
    },
    ok: {
      status: 200,
      description: "One result per operation, in order",
      content: json({
        type: "object",
        properties: { results: { type: "array", items: { type: "object" } } },
        required: ["results"],
        additionalProperties: false,
      }),
    },
    errors: {
      400: {
        description: "Not a batch (bad JSON, an operation a batch may not hold)",
        example: { body: { contentType: "application/json", text: '{"operations":[{"op":"x"}]}' } },
      },
      412: {
        description: "Atomic: a KV condition does not hold (nothing was changed)",
        example: {
          body: {
            contentType: "application/json",
            text: JSON.stringify({
              atomic: true,
              operations: [
                { op: "counterIncrement", key: "hits", amount: "1" },
                { op: "kvPut", key: "doc", value: "v", options: { ifMatch: "stale" } },
              ],
            }),
          },
        },
      },
      413: {
        description: `More than ${MAX_BATCH_OPERATIONS} operations, or a body over the limit`,
        example: {
          body: {
            contentType: "application/json",
            text: JSON.stringify({
              operations: Array(1001).fill({ op: "flagGet", key: "f" }),
            }),
          },
        },
      },
    },
    example: {
      body: {
        contentType: "application/json",
        text: JSON.stringify({
          operations: [
            { op: "counterIncrement", key: "hits", amount: "2" },
            { op: "kvGet", key: "never-put" },
          ],
        }),
      },
    },
  },
};
