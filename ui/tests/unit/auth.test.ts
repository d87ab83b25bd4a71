// Token plumbing: where the token comes from, where it is kept, how each
// transport sends it, and how refusals are told apart from transport failures.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  authHeaders,
  authMessage,
  authProblemOfStatus,
  normalizeToken,
  takeTokenFromUrl,
  TOKEN_STORAGE_KEY,
  TokenStore,
  withAccessToken,
  type TokenStorage,
} from "../../src/auth.ts";
import { defaultQuery, type Query, type TransportName } from "../../src/state.ts";
import { createGrpcWeb } from "../../src/transport/grpcweb.ts";
import { openStream, resetTransportPreference, StreamError, type StreamContext, type StreamHandlers, type Transport } from "../../src/transport/index.ts";
import { createPoll, errorBodyMessage, pollUrl } from "../../src/transport/poll.ts";
import { createSse, sseUrl } from "../../src/transport/sse.ts";

const TOKEN = "r3ad+tok/en=";
const noHandlers = (): StreamHandlers & { heads: number; cursors: bigint[] } => {
  const h = {
    heads: 0,
    cursors: [] as bigint[],
    onHead() {
      h.heads++;
    },
    onEntry(e: { cursor: bigint }) {
      h.cursors.push(e.cursor);
    },
  };
  return h;
};
const signal = () => new AbortController().signal;
const finite: Query = { ...defaultQuery(), level: "error", follow: false };

class MemStorage implements TokenStorage {
  map = new Map<string, string>();
  getItem(k: string) {
    return this.map.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.map.set(k, v);
  }
  removeItem(k: string) {
    this.map.delete(k);
  }
}

// ---- pure helpers ----

test("?token= is taken out of the page URL, the rest kept", () => {
  const r = takeTokenFromUrl("http://h:1/?level=error&token=abc%2B1&transport=sse#x");
  assert.equal(r.token, "abc+1");
  assert.equal(r.cleaned, "/?level=error&transport=sse#x");
  const only = takeTokenFromUrl("http://h:1/?token=abc");
  assert.deepEqual(only, { token: "abc", cleaned: "/" });
  // A stray access_token is taken out too, and read when there is no token.
  assert.deepEqual(takeTokenFromUrl("http://h/?access_token=zz&grep=a"), { token: "zz", cleaned: "/?grep=a" });
  // Empty: removed from the URL, no token.
  assert.deepEqual(takeTokenFromUrl("http://h/?token=&level=warn"), { token: null, cleaned: "/?level=warn" });
  // Nothing to do: the URL stays as it is.
  assert.deepEqual(takeTokenFromUrl("http://h/?level=error"), { token: null, cleaned: null });
  assert.deepEqual(takeTokenFromUrl("http://h/?tokens=1"), { token: null, cleaned: null });
});

test("tokens are trimmed; a pasted Bearer prefix is dropped", () => {
  assert.equal(normalizeToken("  abc \n"), "abc");
  assert.equal(normalizeToken("Bearer abc"), "abc");
  assert.equal(normalizeToken("bearer   abc"), "abc");
  assert.equal(normalizeToken("   "), null);
  assert.equal(normalizeToken(null), null);
});

test("the token store keeps the token in the storage it is given (sessionStorage in the page)", () => {
  const s = new MemStorage();
  const a = new TokenStore(s);
  assert.equal(a.get(), null);
  a.set(" tok ");
  assert.equal(a.get(), "tok");
  assert.equal(s.getItem(TOKEN_STORAGE_KEY), "tok");
  // A reload in the same tab finds it.
  assert.equal(new TokenStore(s).get(), "tok");
  a.set("");
  assert.equal(a.get(), null);
  assert.equal(s.map.size, 0);
});

test("the token store works in memory when storage is missing or throws", () => {
  const broken: TokenStorage = {
    getItem() {
      throw new Error("SecurityError");
    },
    setItem() {
      throw new Error("QuotaExceededError");
    },
    removeItem() {
      throw new Error("SecurityError");
    },
  };
  const t = new TokenStore(broken);
  assert.equal(t.get(), null);
  t.set("x");
  assert.equal(t.get(), "x");
  const n = new TokenStore(null);
  n.set("y");
  assert.equal(n.get(), "y");
});

test("headers, access_token, statuses and messages", () => {
  assert.deepEqual(authHeaders(TOKEN), { authorization: `Bearer ${TOKEN}` });
  assert.deepEqual(authHeaders(null), {});
  assert.deepEqual(authHeaders(""), {});
  const u = new URL(withAccessToken("http://h/api/v1/sse?level=error", TOKEN));
  assert.equal(u.searchParams.get("access_token"), TOKEN);
  assert.equal(u.searchParams.get("level"), "error");
  assert.equal(withAccessToken("http://h/api/v1/sse?a=1", null), "http://h/api/v1/sse?a=1");
  assert.equal(authProblemOfStatus(401), "unauthenticated");
  assert.equal(authProblemOfStatus(403), "forbidden");
  assert.equal(authProblemOfStatus(404), null);
  assert.equal(authMessage("unauthenticated", false), "this server needs a read token");
  assert.match(authMessage("unauthenticated", true), /^this server needs a read token/);
  assert.equal(authMessage("forbidden", true), "this token cannot read");
  assert.equal(errorBodyMessage('{"error":"no token"}\n'), "no token");
  assert.equal(errorBodyMessage("plain"), "plain");
});

test("an auth StreamError is never a fallback nor a retry", () => {
  const e = new StreamError("x", { auth: "unauthenticated", fallback: true, retry: true });
  assert.equal(e.fallback, false);
  assert.equal(e.retry, false);
  assert.equal(e.auth, "unauthenticated");
});

// ---- gRPC-Web: authorization header, UNAUTHENTICATED / PERMISSION_DENIED ----

type Call = { url: string; headers: Headers };
function grpcFetch(status: number, grpcStatus: number, calls: Call[], message = "") {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(input), headers: new Headers(init?.headers) });
    const h = new Headers({ "content-type": "application/grpc-web+proto", "grpc-status": String(grpcStatus) });
    if (message) h.set("grpc-message", encodeURIComponent(message));
    return new Response(new Uint8Array(0), { status, headers: h });
  }) as typeof fetch;
}

test("gRPC-Web sends authorization: Bearer on the call", async () => {
  const calls: Call[] = [];
  const t = createGrpcWeb("http://h:1", { fetch: grpcFetch(200, 0, calls) });
  const h = noHandlers();
  await t.openStream(finite, h, signal(), { token: TOKEN });
  assert.equal(h.heads, 1, "the (trailers-only, OK) stream was accepted");
  assert.equal(calls.length, 1);
  assert.equal(calls[0].url, "http://h:1/logtap.v1.LogService/GetLogs");
  assert.equal(calls[0].headers.get("authorization"), `Bearer ${TOKEN}`);
  // Without a token: no authorization header at all.
  await createGrpcWeb("http://h:1", { fetch: grpcFetch(200, 0, calls) }).openStream(finite, noHandlers(), signal());
  assert.equal(calls[1].headers.has("authorization"), false);
});

test("gRPC-Web UNAUTHENTICATED / PERMISSION_DENIED are auth errors, not fallbacks", async () => {
  const calls: Call[] = [];
  for (const [status, grpc, auth, code] of [
    [200, 16, "unauthenticated", "UNAUTHENTICATED"],
    [200, 7, "forbidden", "PERMISSION_DENIED"],
    [401, 0, "unauthenticated", "UNAUTHENTICATED"], // a proxy's 401
    [403, 0, "forbidden", "PERMISSION_DENIED"],
  ] as const) {
    const t = createGrpcWeb("http://h:1", { fetch: grpcFetch(status, grpc, calls, "no token") });
    await assert.rejects(t.openStream(finite, noHandlers(), signal(), { token: null }), (e: unknown) => {
      assert.ok(e instanceof StreamError);
      assert.equal(e.auth, auth, `${status}/${grpc}`);
      assert.equal(e.code, code);
      assert.equal(e.fallback, false);
      assert.equal(e.retry, false);
      return true;
    });
  }
  // UNAVAILABLE before headers is still a fallback.
  const t = createGrpcWeb("http://h:1", { fetch: grpcFetch(200, 14, calls) });
  await assert.rejects(t.openStream(finite, noHandlers(), signal()), (e: unknown) => e instanceof StreamError && e.fallback && !e.auth);
});

// ---- poll: authorization header (never the URL), 401 / 403 ----

function pollFetch(answers: (() => Response)[], calls: Call[]) {
  let n = 0;
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(input), headers: new Headers(init?.headers) });
    return answers[Math.min(n++, answers.length - 1)]();
  }) as typeof fetch;
}
const json = (status: number, body: string) => () => new Response(body, { status, headers: { "content-type": "application/json" } });

test("poll sends the token as authorization: Bearer, not in the URL", async () => {
  const calls: Call[] = [];
  const t = createPoll("http://h:1", {
    fetch: pollFetch(
      [
        json(200, '{"entries":[{"cursor":7,"timestamp":1,"level":"error","message":"m"}],"next_cursor":7}'),
        json(200, '{"entries":[],"next_cursor":7}'),
      ],
      calls,
    ),
  });
  const h = noHandlers();
  await t.openStream(finite, h, signal(), { token: TOKEN });
  assert.deepEqual(h.cursors, [7n]);
  assert.equal(calls.length, 2);
  for (const c of calls) {
    assert.equal(c.headers.get("authorization"), `Bearer ${TOKEN}`);
    assert.equal(new URL(c.url).searchParams.has("access_token"), false);
    assert.equal(new URL(c.url).searchParams.has("token"), false);
  }
  assert.equal(calls[0].url, pollUrl("http://h:1", finite, null, "0s"));
});

test("poll 401 / 403 are auth errors, not fallbacks", async () => {
  for (const [status, auth] of [
    [401, "unauthenticated"],
    [403, "forbidden"],
  ] as const) {
    const calls: Call[] = [];
    const t = createPoll("http://h:1", { fetch: pollFetch([json(status, '{"error":"nope"}')], calls) });
    await assert.rejects(t.openStream({ ...finite, follow: true }, noHandlers(), signal(), { token: "bad" }), (e: unknown) => {
      assert.ok(e instanceof StreamError);
      assert.equal(e.auth, auth);
      assert.equal(e.fallback, false);
      assert.equal(e.retry, false);
      assert.match(e.message, new RegExp(`HTTP ${status}: nope`));
      return true;
    });
    assert.equal(calls.length, 1, "not retried");
  }
});

// ---- SSE: access_token in the URL; a failed EventSource is probed for 401/403 ----

class FakeEventSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  static last: FakeEventSource | null = null;
  readyState = 0;
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent<string>) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  listeners = new Map<string, (ev: Event) => void>();
  constructor(readonly url: string) {
    FakeEventSource.last = this;
  }
  addEventListener(name: string, fn: (ev: Event) => void) {
    this.listeners.set(name, fn);
  }
  close() {
    this.readyState = 2;
  }
  // test side
  open() {
    this.readyState = 1;
    this.onopen?.(new Event("open"));
  }
  message(data: string) {
    this.onmessage?.(new MessageEvent("message", { data }));
  }
  fail(closed: boolean) {
    this.readyState = closed ? 2 : 0;
    this.onerror?.(new Event("error"));
  }
}
const ES = FakeEventSource as unknown as typeof EventSource;

test("SSE carries the token as access_token (EventSource cannot set headers)", async () => {
  const t = createSse("http://h:1", { EventSource: ES });
  const h = noHandlers();
  const p = t.openStream(finite, h, signal(), { token: TOKEN });
  const es = FakeEventSource.last!;
  const u = new URL(es.url);
  assert.equal(u.pathname, "/api/v1/sse");
  assert.equal(u.searchParams.get("access_token"), TOKEN);
  assert.equal(u.searchParams.get("level"), "error");
  assert.equal(es.url, sseUrl("http://h:1", finite, TOKEN));
  es.open();
  es.message('{"cursor":3,"timestamp":1,"level":"error","message":"m"}');
  es.fail(false); // a finite stream: the server closed it after the history
  await p;
  assert.deepEqual(h.cursors, [3n]);
  assert.equal(new URL(sseUrl("http://h:1", finite, null)).searchParams.has("access_token"), false);
});

test("SSE that never opens: 401/403 become auth errors, anything else a fallback", async () => {
  for (const [status, auth] of [
    [401, "unauthenticated"],
    [403, "forbidden"],
    [404, undefined],
  ] as const) {
    const calls: Call[] = [];
    const t = createSse("http://h:1", { EventSource: ES, fetch: pollFetch([json(status, "{}")], calls) });
    const p = t.openStream({ ...finite, follow: true }, noHandlers(), signal(), { token: "bad" });
    FakeEventSource.last!.fail(true);
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof StreamError);
      assert.equal(e.auth, auth, String(status));
      assert.equal(e.fallback, auth === undefined, String(status));
      return true;
    });
    assert.equal(calls.length, 1, "one probe");
    assert.equal(new URL(calls[0].url).searchParams.get("access_token"), "bad");
  }
});

// ---- openStream: the token reaches every transport; no fallback on auth errors ----

function scripted(name: TransportName, run: (ctx: StreamContext | undefined, h: StreamHandlers) => Promise<void>, seen: Record<string, (string | null | undefined)[]>): Transport {
  return {
    name,
    async openStream(_q, h, _s, ctx) {
      (seen[name] ??= []).push(ctx?.token);
      await run(ctx, h);
      return { tail: null };
    },
  };
}

test("openStream passes the token to the transport, including after a fallback", async () => {
  resetTransportPreference();
  const seen: Record<string, (string | null | undefined)[]> = {};
  const make = (name: TransportName) =>
    scripted(
      name,
      async (_ctx, h) => {
        if (name === "grpc-web") throw new StreamError("HTTP 415", { fallback: true });
        h.onHead({});
      },
      seen,
    );
  const end = await openStream(finite, noHandlers(), signal(), { baseUrl: "http://h", make, token: TOKEN });
  assert.equal(end.transport, "sse");
  assert.deepEqual(seen, { "grpc-web": [TOKEN], sse: [TOKEN] });
  resetTransportPreference();
});

test("openStream does not fall back on UNAUTHENTICATED / PERMISSION_DENIED", async () => {
  for (const auth of ["unauthenticated", "forbidden"] as const) {
    resetTransportPreference();
    const seen: Record<string, (string | null | undefined)[]> = {};
    const make = (name: TransportName) =>
      scripted(
        name,
        async () => {
          // A fallback flag on an auth error must not matter either.
          throw new StreamError("refused", { code: "X", auth, fallback: true });
        },
        seen,
      );
    await assert.rejects(openStream({ ...finite, follow: true }, noHandlers(), signal(), { baseUrl: "http://h", make }), (e: unknown) => e instanceof StreamError && e.auth === auth);
    assert.deepEqual(Object.keys(seen), ["grpc-web"]);
    assert.equal(seen["grpc-web"].length, 1, "not retried");
  }
  // After a real fallback, the auth error comes through as it is (still marked).
  resetTransportPreference();
  const make = (name: TransportName) =>
    scripted(
      name,
      async () => {
        if (name === "grpc-web") throw new StreamError("HTTP 415", { fallback: true });
        throw new StreamError("HTTP 401", { auth: "unauthenticated" });
      },
      {},
    );
  await assert.rejects(openStream(finite, noHandlers(), signal(), { baseUrl: "http://h", make }), (e: unknown) => e instanceof StreamError && e.auth === "unauthenticated");
  resetTransportPreference();
});
