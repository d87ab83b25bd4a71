// Server-Sent Events fallback: GET /api/v1/sse?level=..&grep=..&since=..&until=..&after=..&follow=..
// Each event's data is an entry's JSON, its id the cursor; EventSource resumes
// with Last-Event-ID by itself after a dropped connection.
import { authProblemOfStatus, withAccessToken, type AuthProblem } from "../auth.ts";
import { queryToHttpParams, type Query } from "../state.ts";
import { parseEntryJson } from "./json.ts";
import {
  abortError,
  StreamError,
  type StreamContext,
  type StreamEnd,
  type StreamHandlers,
  type StreamTail,
  type Transport,
} from "./types.ts";

export const SSE_PATH = "/api/v1/sse";

/**
 * The URL of an SSE stream (pure: unit-tested). EventSource cannot set
 * headers, so the token goes as `access_token`.
 */
export function sseUrl(baseUrl: string, query: Query, token?: string | null): string {
  const url = new URL(SSE_PATH, baseUrl);
  url.search = queryToHttpParams(query).toString();
  return withAccessToken(url.toString(), token);
}

/** Time allowed for the status probe after an EventSource failure. */
export const PROBE_TIMEOUT_MS = 5000;

/**
 * EventSource says nothing about why it failed. After a failure, ask the
 * same URL once with fetch and look at the status only (the body is not
 * read: the request is cancelled as soon as the headers are in), so that a
 * 401/403 shows as a refused token instead of "SSE unavailable".
 */
export async function probeAuth(url: string, signal: AbortSignal, doFetch: typeof globalThis.fetch = globalThis.fetch): Promise<AuthProblem | null> {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => ctl.abort(), PROBE_TIMEOUT_MS);
  try {
    const res = await doFetch(url, { signal: ctl.signal, headers: { accept: "text/event-stream" }, cache: "no-store" });
    return authProblemOfStatus(res.status);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    ctl.abort(); // never read the stream itself
  }
}

export interface SseOptions {
  /** EventSource to use (tests inject a fake). */
  EventSource?: typeof globalThis.EventSource;
  /** fetch for the status probe (tests inject one). */
  fetch?: typeof globalThis.fetch;
}

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

export function createSse(baseUrl: string, opts: SseOptions = {}): Transport {
  return {
    name: "sse",
    openStream(query: Query, handlers: StreamHandlers, signal: AbortSignal, ctx: StreamContext = {}): Promise<StreamEnd> {
      return new Promise<StreamEnd>((resolve, reject) => {
        if (signal.aborted) return reject(abortError());
        const ES = opts.EventSource ?? globalThis.EventSource;
        const url = sseUrl(baseUrl, query, ctx.token);
        const es = new ES(url);
        let opened = false;
        let done = false;
        /** Set once the connection failed for good (while the probe runs). */
        let failing = false;
        let lastCursor: bigint | null = null;
        const finish = (f: () => void) => {
          if (done) return;
          done = true;
          es.close();
          signal.removeEventListener("abort", onAbort);
          f();
        };
        const onAbort = () => finish(() => reject(abortError()));
        signal.addEventListener("abort", onAbort, { once: true });
        // The connection failed for good: a refused token, or `otherwise`.
        const failed = (otherwise: StreamError) => {
          if (done || failing) return;
          failing = true;
          es.close();
          const resumeUrl = sseUrl(baseUrl, { ...query, after: lastCursor ?? query.after }, ctx.token);
          void probeAuth(resumeUrl, signal, opts.fetch).then((auth) => {
            if (signal.aborted) return; // onAbort has rejected already
            finish(() =>
              reject(
                auth
                  ? new StreamError(auth === "forbidden" ? "HTTP 403 on the SSE stream" : "HTTP 401 on the SSE stream", {
                      code: auth === "forbidden" ? "PERMISSION_DENIED" : "UNAUTHENTICATED",
                      auth,
                    })
                  : otherwise,
              ),
            );
          });
        };

        es.onopen = () => {
          opened = true;
          handlers.onHead({});
        };
        es.onmessage = (ev: MessageEvent<string>) => {
          if (done || failing) return;
          let entry;
          try {
            entry = parseEntryJson(ev.data);
          } catch (e) {
            finish(() => reject(new StreamError(`bad SSE event: ${(e as Error).message}`, { code: "INTERNAL" })));
            return;
          }
          lastCursor = entry.cursor;
          handlers.onEntry(entry);
        };
        // Optional events a server may send: `end` (clean end, data = trailers
        // as JSON) and `error` with data (the stream's error message).
        es.addEventListener("end", (ev) => {
          const tail = tailFromJson((ev as MessageEvent<string>).data ?? "");
          finish(() => resolve({ tail }));
        });
        es.onerror = (ev: Event) => {
          if (done || failing) return;
          const data = (ev as MessageEvent).data;
          if (typeof data === "string" && data) {
            finish(() => reject(new StreamError(data, { code: "SERVER" })));
            return;
          }
          if (!opened) {
            // Never connected: a refused token (401/403), endpoint missing
            // (404), wrong content type, or unreachable.
            failed(new StreamError("SSE endpoint unavailable", { code: "UNAVAILABLE", fallback: true }));
            return;
          }
          if (es.readyState === ES.CLOSED) {
            failed(new StreamError("SSE connection closed", { code: "UNAVAILABLE" }));
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
