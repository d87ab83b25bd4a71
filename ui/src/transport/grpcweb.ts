// gRPC-Web server streaming: logtap.v1.LogService/GetLogs via connect-web.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { authHeaders, type AuthProblem } from "../auth.ts";
import { LogRequestSchema, LogService, type LogEntry } from "../gen/logtap/v1/logtap_pb.ts";
import { toServerQuery } from "../logql.ts";
import { normLevel, type Query } from "../state.ts";
import {
  abortError,
  Slicer,
  StreamError,
  type Entry,
  type StreamEnd,
  type StreamContext,
  type StreamHandlers,
  type StreamTail,
  type Transport,
} from "./types.ts";

/** No response headers within this long: gRPC-Web is being held up (a buffering proxy?). */
export const HEADER_TIMEOUT_MS = 5000;

// Failures that say "gRPC-Web does not get through here" when they happen
// before any response header: try the next transport.
const FALLBACK_CODES = new Set<Code>([Code.Unimplemented, Code.Unavailable, Code.Unknown, Code.Internal, Code.DeadlineExceeded]);
// Failures after the stream had started that are worth resuming from.
const RETRY_CODES = new Set<Code>([Code.Unavailable, Code.Unknown, Code.Internal, Code.Aborted]);
// The server refused the token (or its absence): for a person to fix, not a transport failure.
const AUTH_CODES = new Map<Code, AuthProblem>([
  [Code.Unauthenticated, "unauthenticated"],
  [Code.PermissionDenied, "forbidden"],
]);

function headerBigInt(h: Headers, name: string): bigint | undefined {
  const v = h.get(name);
  if (v == null) return undefined;
  const t = v.trim();
  return /^-?\d+$/.test(t) ? BigInt(t) : undefined;
}

/** A gRPC LogEntry as the page holds it (labels sorted by name). */
export function toEntry(e: LogEntry): Entry {
  let labels: [string, string][] | null = null;
  for (const k in e.labels) {
    (labels ??= []).push([k, e.labels[k]]);
  }
  if (labels && labels.length > 1) labels.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { cursor: e.cursor, timestamp: e.timestamp, level: normLevel(e.level), message: e.message, labels };
}

function tailOf(t: Headers): StreamTail {
  return {
    sent: headerBigInt(t, "logtap-sent"),
    nextCursor: headerBigInt(t, "logtap-next-cursor"),
    crc32c: t.get("logtap-crc32c")?.trim().toLowerCase() || undefined,
    requestId: t.get("x-request-id") ?? undefined,
  };
}

export interface GrpcWebOptions {
  /** fetch to use (tests inject one). */
  fetch?: typeof globalThis.fetch;
}

export function createGrpcWeb(baseUrl: string, opts: GrpcWebOptions = {}): Transport {
  const client = createClient(LogService, createGrpcWebTransport({ baseUrl, fetch: opts.fetch }));
  return {
    name: "grpc-web",
    async openStream(query: Query, handlers: StreamHandlers, signal: AbortSignal, ctx: StreamContext = {}): Promise<StreamEnd> {
      if (signal.aborted) throw abortError();
      const req = create(LogRequestSchema, {
        level: query.level,
        grep: query.grep,
        regex: query.regex,
        since: query.since ?? 0n,
        until: query.until ?? 0n,
        follow: query.follow,
        afterCursor: query.after ?? undefined,
        query: toServerQuery(query.logql),
      });
      // Our own controller, so a header timeout can cancel the call too.
      const ctl = new AbortController();
      const onAbort = () => ctl.abort();
      signal.addEventListener("abort", onAbort, { once: true });
      let gotHead = false;
      let timedOut = false;
      const timer = setTimeout(() => {
        if (!gotHead) {
          timedOut = true;
          ctl.abort();
        }
      }, HEADER_TIMEOUT_MS);
      let tail: StreamTail | null = null;
      try {
        const stream = client.getLogs(req, {
          signal: ctl.signal,
          headers: authHeaders(ctx.token),
          onHeader(h) {
            gotHead = true;
            clearTimeout(timer);
            handlers.onHead({ total: headerBigInt(h, "logtap-total-count"), requestId: h.get("x-request-id") ?? undefined });
          },
          onTrailer(t) {
            tail = tailOf(t);
          },
        });
        const slicer = new Slicer();
        for await (const e of stream) {
          handlers.onEntry(toEntry(e));
          const y = slicer.tick();
          if (y) await y;
        }
        return { tail };
      } catch (err) {
        if (signal.aborted) throw abortError();
        if (timedOut) {
          throw new StreamError(`no response headers within ${HEADER_TIMEOUT_MS} ms`, { code: "deadline_exceeded", fallback: true });
        }
        const ce = ConnectError.from(err);
        const code = Code[ce.code]?.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase() ?? String(ce.code);
        const auth = AUTH_CODES.get(ce.code);
        throw new StreamError(ce.rawMessage || code, {
          code,
          auth,
          fallback: !gotHead && !auth && FALLBACK_CODES.has(ce.code),
          retry: gotHead && RETRY_CODES.has(ce.code),
        });
      } finally {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
