// The viewer's calls besides the main stream, over gRPC-Web with the token:
// QueryMetrics (histogram, facets, completion) and short GetLogs reads
// (context lines, the oldest/newest time of a result).
import { create } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { authHeaders } from "./auth.ts";
import { LogRequestSchema, LogService, MetricRequestSchema } from "./gen/logtap/v1/logtap_pb.ts";
import { toEntry } from "./transport/grpcweb.ts";
import type { Entry } from "./transport/types.ts";

export interface MetricPoint {
  timestamp: bigint;
  samples: { labels: Record<string, string>; value: number }[];
}

export interface LogRead {
  query: string;
  since?: bigint | null;
  until?: bigint | null;
  after?: bigint | null;
  limit?: number;
  reverse?: boolean;
}

/** A refusal from the server, its message as sent (`bad query at 14: …`). */
export class ApiError extends Error {}

export class Api {
  private client: Client<typeof LogService>;
  constructor(
    baseUrl: string,
    private readonly token: () => string | null,
  ) {
    this.client = createClient(LogService, createGrpcWebTransport({ baseUrl }));
  }

  /** Runs a metric query, calling `onStep` as each point arrives. */
  async metrics(query: string, start: bigint, end: bigint, step: bigint, signal: AbortSignal, onStep: (p: MetricPoint) => void): Promise<void> {
    const req = create(MetricRequestSchema, { query, start, end, step });
    try {
      for await (const s of this.client.queryMetrics(req, { signal, headers: authHeaders(this.token()) })) {
        onStep({ timestamp: s.timestamp, samples: s.samples.map((x) => ({ labels: { ...x.labels }, value: x.value })) });
      }
    } catch (e) {
      throw wrap(e);
    }
  }

  /**
   * Reads entries (never following); `onEntry` returning false stops the
   * read (the call is cancelled, so the server stops too).
   */
  async logs(r: LogRead, signal: AbortSignal, onEntry: (e: Entry) => boolean | void): Promise<void> {
    const req = create(LogRequestSchema, {
      query: r.query,
      since: r.since ?? 0n,
      until: r.until ?? 0n,
      afterCursor: r.after ?? undefined,
      limit: BigInt(r.limit ?? 0),
      reverse: !!r.reverse,
      follow: false,
    });
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const e of this.client.getLogs(req, { signal: ctl.signal, headers: authHeaders(this.token()) })) {
        if (onEntry(toEntry(e)) === false) {
          ctl.abort();
          return;
        }
      }
    } catch (e) {
      if (ctl.signal.aborted && !signal.aborted) return;
      throw wrap(e);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** The oldest and newest timestamps a query matches in a range (null when nothing does). */
  async bounds(query: string, since: bigint | null, until: bigint | null, signal: AbortSignal): Promise<[bigint, bigint] | null> {
    let oldest: bigint | null = null;
    let newest: bigint | null = null;
    await Promise.all([
      this.logs({ query, since, until, limit: 1 }, signal, (e) => void (oldest = e.timestamp)),
      this.logs({ query, since, until, limit: 1, reverse: true }, signal, (e) => void (newest = e.timestamp)),
    ]);
    return oldest != null && newest != null ? [oldest, newest] : null;
  }
}

function wrap(e: unknown): unknown {
  if (e instanceof DOMException && e.name === "AbortError") return e;
  const ce = ConnectError.from(e);
  if (ce.name === "AbortError" || ce.code === 1) return new DOMException("cancelled", "AbortError");
  return new ApiError(ce.rawMessage || ce.message);
}
