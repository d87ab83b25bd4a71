// The one interface every transport (gRPC-Web, SSE, long-polling) implements.
import type { AuthProblem } from "../auth.ts";
import type { Level, Query, TransportName } from "../state.ts";

export interface Entry {
  cursor: bigint;
  /** Unix epoch ns (exact: bigint). */
  timestamp: bigint;
  level: Level;
  message: string;
  /** [key, value] pairs, sorted by key; null when none. */
  labels: [string, string][] | null;
}

/** Response headers: sent before the first entry. */
export interface StreamHead {
  /** `logtap-total-count`: entries the stream will carry (non-follow, simple filters). */
  total?: bigint;
  /** `x-request-id`. */
  requestId?: string;
}

/** Trailers: after the last entry, on a clean end. */
export interface StreamTail {
  /** `logtap-sent` */
  sent?: bigint;
  /** `logtap-next-cursor` */
  nextCursor?: bigint;
  /** `logtap-crc32c`, 8 lowercase hex digits. */
  crc32c?: string;
  requestId?: string;
}

export interface StreamHandlers {
  /** The stream is open (headers arrived). May be called again after a reconnect. */
  onHead(head: StreamHead): void;
  onEntry(entry: Entry): void;
  /** The transport lost its connection and is trying again (resuming after the last cursor). */
  onReconnecting?(reason: string): void;
}

export interface StreamEnd {
  /** Trailers, when the transport carries them (gRPC-Web). */
  tail: StreamTail | null;
}

/**
 * Why a stream failed. `fallback`: the transport itself does not work here
 * (endpoint missing, stripped by a proxy...), so another one may; `retry`: a
 * transient failure after the stream had started (resume with the same one);
 * `auth`: the server refused the token (or its absence). An auth refusal is
 * never a transport failure: no fallback, no retry, whatever else is set.
 */
export class StreamError extends Error {
  constructor(
    message: string,
    readonly opts: { code?: string; fallback?: boolean; retry?: boolean; auth?: AuthProblem } = {},
  ) {
    super(message);
    this.name = "StreamError";
  }
  get code(): string | undefined {
    return this.opts.code;
  }
  get fallback(): boolean {
    return !!this.opts.fallback && !this.opts.auth;
  }
  get retry(): boolean {
    return !!this.opts.retry && !this.opts.auth;
  }
  /** The server refused the credentials: "unauthenticated" (401/16) or "forbidden" (403/7). */
  get auth(): AuthProblem | undefined {
    return this.opts.auth;
  }
}

/** What every stream is opened with besides the query. */
export interface StreamContext {
  /** Bearer token for a server with `--auth-token-file`; null/undefined: none sent. */
  token?: string | null;
}

export function abortError(): DOMException {
  return new DOMException("The stream was cancelled", "AbortError");
}

export function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === "AbortError";
}

export interface Transport {
  readonly name: TransportName;
  /**
   * Opens a stream for `query`, calls `handlers` as it goes, and resolves
   * when the server ends it cleanly; rejects with a StreamError, or with an
   * AbortError once `signal` fires (which closes the connection, so the
   * server sees the cancellation). `ctx.token`, when set, goes with every
   * request the stream makes (reconnects included).
   */
  openStream(query: Query, handlers: StreamHandlers, signal: AbortSignal, ctx?: StreamContext): Promise<StreamEnd>;
}

/** Resolves after `ms`, or rejects with AbortError when the signal fires. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError());
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError());
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Time slicing: a fast stream can hand over thousands of entries at once
 * (one network chunk). Decoding them all in one go would freeze the page, so
 * the read loops call `slice.tick()` per entry and give the browser a chance to
 * render every ~8 ms. While yielded the loop does not read, which is ordinary
 * backpressure towards the server.
 */
export class Slicer {
  private start = performance.now();
  constructor(private readonly budgetMs = 8) {}
  /** Resolves at once while within budget, else after yielding to the event loop. */
  tick(): Promise<void> | null {
    const now = performance.now();
    if (now - this.start < this.budgetMs) return null;
    return yieldToMain().then(() => {
      this.start = performance.now();
    });
  }
}

/**
 * Lets every other task of the page run, then resolves. A task of its own
 * (MessageChannel) rather than `scheduler.yield()`, whose continuation goes
 * before the page's other tasks: with a 10M-entry stream that starved the
 * histogram's and facets' responses and the page's own input handling for
 * seconds.
 */
export function yieldToMain(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(0);
  });
}
