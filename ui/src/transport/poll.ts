// Long-polling fallback: GET /api/v1/poll?after=C&wait=25s&level=.. → {"entries":[...],"next_cursor":N}.
import { authHeaders, authProblemOfStatus } from "../auth.ts";
import { queryToHttpParams, type Query } from "../state.ts";
import { parsePollJson } from "./json.ts";
import {
  abortError,
  Slicer,
  sleep,
  StreamError,
  type StreamContext,
  type StreamEnd,
  type StreamHandlers,
  type Transport,
} from "./types.ts";

export const POLL_PATH = "/api/v1/poll";
export const POLL_WAIT = "25s";

/** The URL of one poll (pure: unit-tested). */
export function pollUrl(baseUrl: string, query: Query, after: bigint | null, wait: string): string {
  const url = new URL(POLL_PATH, baseUrl);
  const p = queryToHttpParams({ ...query, after });
  p.set("wait", wait);
  url.search = p.toString();
  return url.toString();
}

/** The message of a refused answer: the body's `{"error"}` (or `message`), else its text. */
export function errorBodyMessage(body: string): string {
  const t = body.trim();
  try {
    const o = JSON.parse(t) as { error?: unknown; message?: unknown };
    const m = o && typeof o === "object" ? (o.error ?? o.message) : undefined;
    return typeof m === "string" ? m : t;
  } catch {
    return t; // plain text
  }
}

export interface PollOptions {
  /** fetch to use (tests inject one). */
  fetch?: typeof globalThis.fetch;
}

export function createPoll(baseUrl: string, opts: PollOptions = {}): Transport {
  return {
    name: "poll",
    async openStream(query: Query, handlers: StreamHandlers, signal: AbortSignal, ctx: StreamContext = {}): Promise<StreamEnd> {
      const doFetch = opts.fetch ?? globalThis.fetch;
      // The token goes in the authorization header (never in the URL here).
      const headers = { accept: "application/json", ...authHeaders(ctx.token) };
      let after = query.after;
      let first = true;
      let failures = 0;
      for (;;) {
        if (signal.aborted) throw abortError();
        let res: Response;
        try {
          res = await doFetch(pollUrl(baseUrl, query, after, query.follow ? POLL_WAIT : "0s"), {
            signal,
            headers,
            cache: "no-store",
          });
        } catch (e) {
          if (signal.aborted) throw abortError();
          if (first) throw new StreamError(`poll failed: ${(e as Error).message}`, { code: "UNAVAILABLE", fallback: true });
          if (!query.follow) throw new StreamError(`poll failed: ${(e as Error).message}`, { code: "UNAVAILABLE" });
          failures++;
          handlers.onReconnecting?.(`poll failed: ${(e as Error).message}`);
          await sleep(Math.min(10_000, 500 * 2 ** Math.min(failures, 5)), signal);
          continue;
        }
        if (!res.ok) {
          const msg = errorBodyMessage(await res.text().catch(() => ""));
          const auth = authProblemOfStatus(res.status);
          if (auth) {
            // Refused credentials: not a transport failure, so no fallback and no retry.
            throw new StreamError(`HTTP ${res.status}${msg ? ": " + msg.slice(0, 300) : ""}`, {
              code: auth === "forbidden" ? "PERMISSION_DENIED" : "UNAUTHENTICATED",
              auth,
            });
          }
          const retriable = res.status >= 500 || res.status === 429;
          if (retriable && !first && query.follow) {
            failures++;
            handlers.onReconnecting?.(`HTTP ${res.status}`);
            await sleep(Math.min(10_000, 500 * 2 ** Math.min(failures, 5)), signal);
            continue;
          }
          throw new StreamError(`HTTP ${res.status}${msg ? ": " + msg.slice(0, 300) : ""}`, {
            fallback: first && (res.status === 404 || res.status === 405 || res.status >= 500),
          });
        }
        let text: string;
        try {
          text = await res.text();
        } catch (e) {
          if (signal.aborted) throw abortError();
          throw new StreamError(`poll read failed: ${(e as Error).message}`, { code: "UNAVAILABLE", retry: true });
        }
        const answer = parsePollJson(text);
        if (first) {
          first = false;
          const total = res.headers.get("logtap-total-count");
          handlers.onHead({
            total: total && /^\d+$/.test(total.trim()) ? BigInt(total.trim()) : undefined,
            requestId: res.headers.get("x-request-id") ?? undefined,
          });
        }
        failures = 0;
        const slicer = new Slicer();
        for (const e of answer.entries) {
          if (signal.aborted) throw abortError();
          handlers.onEntry(e);
          const y = slicer.tick();
          if (y) await y;
        }
        const lastCursor = answer.entries.length ? answer.entries[answer.entries.length - 1].cursor : null;
        const next = answer.nextCursor ?? lastCursor;
        if (next != null && (after == null || next > after)) after = next;
        if (!query.follow && answer.entries.length === 0) return { tail: null };
      }
    },
  };
}
