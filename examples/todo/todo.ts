/**
 * The TODO REST API of the original Purple's example, over Purple's sets: every todo is an
 * item of the set `todos`, so any number of copies of this app share one list.
 *
 * | request                   | answer                                  |
 * | ------------------------- | --------------------------------------- |
 * | `GET /todos`              | 200 `{"todos": [...]}`                  |
 * | `POST /todos?todo=X`      | 200 `{"todos": [...]}`, with X added    |
 * | `DELETE /todos?todo=X`    | 200 `{"todos": [...]}`, without X       |
 *
 * Todos come back in Purple's order (sorted). A missing `todo` is 400, a todo that Purple
 * refuses (too long, not well-formed Unicode) is 400, and Purple being down is 503; every
 * error answer is `{"error": "..."}`.
 *
 * @example Serving the API over Purple's memory backend, without a socket
 * ```ts ignore
 * import { openBackend } from "@purple/server/backends";
 * import { todoHandler } from "./todo.ts";
 *
 * const handle = todoHandler(await openBackend({ kind: "memory" }));
 * const answer = await handle(new Request("http://x/todos?todo=shopping", { method: "POST" }));
 * console.log(await answer.json()); // { todos: ["shopping"] }
 * ```
 *
 * @module
 */

import {
  InvalidArgumentError,
  type Operations,
  UnavailableError,
  ValueTooLargeError,
} from "@purple/client";

/** The Purple set that holds the todos. */
export const TODO_SET = "todos";

/** What the app needs from Purple: its sets (an `HttpClient`, a `GrpcClient` or a backend). */
export type TodoStore = Pick<Operations, "setGet" | "setAdd" | "setRemove">;

function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function failure(error: unknown, log: (line: string) => void): Response {
  if (error instanceof InvalidArgumentError || error instanceof ValueTooLargeError) {
    return json({ error: error.message }, 400);
  }
  if (error instanceof UnavailableError) {
    return json({ error: `Purple is unavailable: ${error.message}` }, 503);
  }
  log(`Internal error: ${error instanceof Error ? error.stack : error}`);
  return json({ error: "Internal server error" }, 500);
}

/**
 * Builds the app's request handler (for `Deno.serve`, or to call directly in tests).
 *
 * @param store Where the todos live: Purple's sets.
 * @param log Where unexpected errors are logged. Default `console.error`.
 * @returns The handler: `GET`, `POST` and `DELETE` on `/todos`.
 *
 * @example
 * ```ts ignore
 * import { HttpClient } from "@purple/client";
 * import { todoHandler } from "./todo.ts";
 *
 * Deno.serve({ port: 3000 }, todoHandler(new HttpClient("http://localhost:8080")));
 * ```
 */
export function todoHandler(
  store: TodoStore,
  log: (line: string) => void = console.error,
): (request: Request) => Promise<Response> {
  return async (request) => {
    const url = new URL(request.url);
    if (url.pathname !== "/todos") return json({ error: `No route for ${url.pathname}` }, 404);
    const todo = url.searchParams.get("todo");
    try {
      switch (request.method) {
        case "GET":
          return json({ todos: await store.setGet(TODO_SET) });
        case "POST":
          if (!todo) return json({ error: "No todo specified: add ?todo=..." }, 400);
          return json({ todos: await store.setAdd(TODO_SET, todo) });
        case "DELETE":
          if (!todo) return json({ error: "No todo specified: add ?todo=..." }, 400);
          return json({ todos: await store.setRemove(TODO_SET, todo) });
        default:
          return json({ error: `Method ${request.method} not allowed` }, 405, {
            allow: "GET, POST, DELETE",
          });
      }
    } catch (error) {
      return failure(error, log);
    }
  };
}
