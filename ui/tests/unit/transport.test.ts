import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultQuery, type Query, type TransportName } from "../../src/state.ts";
import { openStream, resetTransportPreference, StreamError, type Entry, type StreamHandlers, type Transport } from "../../src/transport/index.ts";

const entry = (c: number): Entry => ({ cursor: BigInt(c), timestamp: BigInt(c) * 1000n, level: "error", message: `m${c}`, labels: null });

/** A scripted transport: each call runs the next script step. */
function fake(name: TransportName, steps: ((q: Query, h: StreamHandlers) => Promise<void>)[], calls: Query[]): Transport {
  let n = 0;
  return {
    name,
    async openStream(q, h) {
      calls.push({ ...q });
      const step = steps[Math.min(n++, steps.length - 1)];
      await step(q, h);
      return { tail: null };
    },
  };
}

function collector() {
  const got: bigint[] = [];
  const transports: string[] = [];
  const handlers: StreamHandlers = { onHead() {}, onEntry: (e) => got.push(e.cursor) };
  return { got, transports, handlers };
}

test("falls back to SSE when gRPC-Web does not get through, then prefers it", async () => {
  resetTransportPreference();
  const calls: Record<string, Query[]> = { "grpc-web": [], sse: [], poll: [] };
  const make = (name: TransportName): Transport =>
    name === "grpc-web"
      ? fake(name, [async () => { throw new StreamError("HTTP 415", { fallback: true }); }], calls[name])
      : fake(name, [async (_q, h) => { h.onHead({}); h.onEntry(entry(1)); h.onEntry(entry(2)); }], calls[name]);
  const c = collector();
  const whys: string[] = [];
  const end = await openStream({ ...defaultQuery(), follow: false }, c.handlers, new AbortController().signal, {
    baseUrl: "http://x",
    make,
    onTransport: (n, why) => whys.push(`${n}${why ? " (" + why + ")" : ""}`),
  });
  assert.equal(end.transport, "sse");
  assert.deepEqual(c.got, [1n, 2n]);
  assert.deepEqual(whys, ["grpc-web", "sse (grpc-web: HTTP 415)"]);
  // The next stream in this page starts with SSE.
  const c2 = collector();
  const end2 = await openStream({ ...defaultQuery(), follow: false }, c2.handlers, new AbortController().signal, { baseUrl: "http://x", make });
  assert.equal(end2.transport, "sse");
  assert.equal(calls["grpc-web"].length, 1);
  resetTransportPreference();
});

test("a dropped stream resumes after the last cursor: no gap, no duplicate", async () => {
  resetTransportPreference();
  const calls: Query[] = [];
  const t = fake(
    "grpc-web",
    [
      async (_q, h) => {
        h.onHead({});
        for (const c of [1, 2, 3]) h.onEntry(entry(c));
        throw new StreamError("connection reset", { retry: true });
      },
      async (q, h) => {
        h.onHead({});
        for (let c = Number(q.after) + 1; c <= 5; c++) h.onEntry(entry(c));
      },
    ],
    calls,
  );
  const c = collector();
  let reconnecting = 0;
  await openStream({ ...defaultQuery(), follow: true }, { ...c.handlers, onReconnecting: () => reconnecting++ }, new AbortController().signal, {
    baseUrl: "http://x",
    forced: "grpc-web",
    make: () => t,
  });
  assert.deepEqual(c.got, [1n, 2n, 3n, 4n, 5n]);
  assert.equal(calls[0].after, null);
  assert.equal(calls[1].after, 3n);
  assert.equal(reconnecting, 1);
});

test("errors a person must act on are not retried nor hidden by a fallback", async () => {
  resetTransportPreference();
  const calls: Query[] = [];
  const t = fake("grpc-web", [async () => { throw new StreamError('unknown level "loud"', { code: "INVALID_ARGUMENT" }); }], calls);
  await assert.rejects(
    openStream({ ...defaultQuery(), level: "loud" }, collector().handlers, new AbortController().signal, { baseUrl: "http://x", make: () => t }),
    (e: unknown) => e instanceof StreamError && e.code === "INVALID_ARGUMENT",
  );
  assert.equal(calls.length, 1);
});

test("all transports failing names each one", async () => {
  resetTransportPreference();
  const make = (name: TransportName): Transport =>
    fake(name, [async () => { throw new StreamError(`${name} down`, { fallback: true }); }], []);
  await assert.rejects(
    openStream(defaultQuery(), collector().handlers, new AbortController().signal, { baseUrl: "http://x", make }),
    (e: unknown) => e instanceof StreamError && /poll: poll down \(after grpc-web: grpc-web down; sse: sse down\)/.test(e.message),
  );
});

test("abort while waiting to reconnect ends with AbortError", async () => {
  resetTransportPreference();
  const ctl = new AbortController();
  const t = fake("sse", [async (_q, h) => { h.onHead({}); throw new StreamError("lost", { retry: true }); }], []);
  const p = openStream({ ...defaultQuery(), follow: true }, collector().handlers, ctl.signal, { baseUrl: "http://x", forced: "sse", make: () => t });
  setTimeout(() => ctl.abort(), 50);
  await assert.rejects(p, (e: unknown) => e instanceof DOMException && e.name === "AbortError");
});
