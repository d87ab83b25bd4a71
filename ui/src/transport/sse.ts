// Server-Sent Events fallback: GET /api/v1/sse?level=..&grep=..&since=..&until=..&after=..&follow=..
// Each event's data is an entry's JSON, its id the cursor; EventSource resumes
// with Last-Event-ID by itself after a dropped connection.
import { queryToHttpParams, type Query } from "../state.ts";
import { parseEntryJson } from "./json.ts";
import { abortError, StreamError, type StreamEnd, type StreamHandlers, type StreamTail, type Transport } from "./types.ts";

export const SSE_PATH = "/api/v1/sse";

function tailFromJson(data: string): StreamTail | null {
  try {
    const o = JSON.parse(data.replace(/"(sent|next_cursor)"(\s*:\s*)(\d+)/g, '"$1"$2"$3"')) as Record<string, unknown>;
    const big = (v: unknown) => (typeof v === "string" && /^\d+$/.test(v) ? BigInt(v) : undefined);
    return {
      sent: big(o.sent),
      nextCursor: big(o.next_cursor),
      crc32c: typeof o.crc32c === "string" ? o.crc32c.toLowerCase() : undefined,
    };
  } catch {
    return null;
  }
}

export function createSse(baseUrl: string): Transport {
  return {
    name: "sse",
    openStream(query: Query, handlers: StreamHandlers, signal: AbortSignal): Promise<StreamEnd> {
      return new Promise<StreamEnd>((resolve, reject) => {
        if (signal.aborted) return reject(abortError());
        const url = new URL(SSE_PATH, baseUrl);
        url.search = queryToHttpParams(query).toString();
        const es = new EventSource(url.toString());
        let opened = false;
        let done = false;
        const finish = (f: () => void) => {
          if (done) return;
          done = true;
          es.close();
          signal.removeEventListener("abort", onAbort);
          f();
        };
        const onAbort = () => finish(() => reject(abortError()));
        signal.addEventListener("abort", onAbort, { once: true });

        es.onopen = () => {
          opened = true;
          handlers.onHead({});
        };
        es.onmessage = (ev: MessageEvent<string>) => {
          if (done) return;
          let entry;
          try {
            entry = parseEntryJson(ev.data);
          } catch (e) {
            finish(() => reject(new StreamError(`bad SSE event: ${(e as Error).message}`, { code: "INTERNAL" })));
            return;
          }
          handlers.onEntry(entry);
        };
        // Optional events a server may send: `end` (clean end, data = trailers
        // as JSON) and `error` with data (the stream's error message).
        es.addEventListener("end", (ev) => {
          const tail = tailFromJson((ev as MessageEvent<string>).data ?? "");
          finish(() => resolve({ tail }));
        });
        es.onerror = (ev: Event) => {
          if (done) return;
          const data = (ev as MessageEvent).data;
          if (typeof data === "string" && data) {
            finish(() => reject(new StreamError(data, { code: "SERVER" })));
            return;
          }
          if (!opened) {
            // Never connected: endpoint missing (404), wrong content type, or unreachable.
            finish(() => reject(new StreamError("SSE endpoint unavailable", { code: "UNAVAILABLE", fallback: true })));
            return;
          }
          if (es.readyState === EventSource.CLOSED) {
            finish(() => reject(new StreamError("SSE connection closed", { code: "UNAVAILABLE" })));
            return;
          }
          // CONNECTING: the server closed the response.
          if (!query.follow) {
            // A finite stream: the server closed it after the history.
            finish(() => resolve({ tail: null }));
          } else {
            handlers.onReconnecting?.("SSE connection lost, resuming");
          }
        };
      });
    },
  };
}
