// A parser of Server-Sent Events (`text/event-stream`), as the HTML standard defines it
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
// lines end with CRLF, LF or CR; a line starting with `:` is a comment; `field: value` (one
// space after the colon dropped); `data` lines are joined with LF; an empty line dispatches the
// event, unless it has no data. Web standards only: it runs in Deno, Node and browsers. Private
// to the client.

/** One event of the stream: its type (`message` unless an `event:` field named one) and data. */
export interface ServerSentEvent {
  /** The `event:` field, or `message`. */
  event: string;
  /** The `data:` lines, joined with LF. */
  data: string;
  /** The last `id:` field seen so far, or "". */
  id: string;
}

/**
 * The events of a stream of bytes, in order; ends when the stream does (an event cut off
 * before its empty line is dropped, as a browser drops it).
 *
 * @param chunks The bytes (a response body's reader, chunk after chunk).
 */
export async function* serverSentEvents(
  chunks: AsyncIterable<Uint8Array>,
): AsyncGenerator<ServerSentEvent, void, undefined> {
  const decoder = new TextDecoder("utf-8", { ignoreBOM: false });
  let buffer = "";
  let data: string[] = [];
  let event = "";
  let id = "";
  /** A chunk ended with CR: an LF at the start of the next one belongs to it. */
  let afterCr = false;
  const line = (text: string): ServerSentEvent | undefined => {
    if (text === "") {
      const dispatched = data.length === 0
        ? undefined
        : { event: event === "" ? "message" : event, data: data.join("\n"), id };
      data = [];
      event = "";
      return dispatched;
    }
    if (text.startsWith(":")) return undefined;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") event = value;
    else if (field === "id" && !value.includes("\u0000")) id = value;
    return undefined;
  };
  for await (const chunk of chunks) {
    buffer += decoder.decode(chunk, { stream: true });
    if (afterCr && buffer.startsWith("\n")) buffer = buffer.slice(1);
    afterCr = false;
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const char = buffer.charCodeAt(i);
      if (char !== 0x0a && char !== 0x0d) continue;
      const dispatched = line(buffer.slice(start, i));
      if (char === 0x0d) {
        if (i + 1 === buffer.length) afterCr = true;
        else if (buffer.charCodeAt(i + 1) === 0x0a) i++;
      }
      start = i + 1;
      if (dispatched !== undefined) yield dispatched;
    }
    buffer = buffer.slice(start);
  }
}
