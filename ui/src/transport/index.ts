// One entry point for all transports: gRPC-Web first, then SSE, then
// long-polling, each resuming after the last cursor received so that nothing
// is lost or duplicated across a fallback or a reconnect.
import { TRANSPORTS, type Query, type TransportName } from "../state.ts";
import { createGrpcWeb } from "./grpcweb.ts";
import { createPoll } from "./poll.ts";
import { createSse } from "./sse.ts";
import { sleep, StreamError, type StreamEnd, type StreamHandlers, type Transport } from "./types.ts";

export * from "./types.ts";

export interface OpenOptions {
  /** Use only this transport (`?transport=`). */
  forced?: TransportName | null;
  /** A transport is being tried; `why` tells why the previous one was left. */
  onTransport?(name: TransportName, why?: string): void;
  baseUrl?: string;
  /** Bearer token sent on every request of every transport (see ../auth.ts). */
  token?: string | null;
  /** Builds a transport (tests inject fakes). */
  make?(name: TransportName, baseUrl: string): Transport;
}

const made = new Map<string, Transport>();
function transportFor(name: TransportName, baseUrl: string): Transport {
  const key = name + " " + baseUrl;
  let t = made.get(key);
  if (!t) {
    t = name === "grpc-web" ? createGrpcWeb(baseUrl) : name === "sse" ? createSse(baseUrl) : createPoll(baseUrl);
    made.set(key, t);
  }
  return t;
}

// Once a transport failed here, later streams in this page start at the one that worked.
let firstWorking = 0;

export function resetTransportPreference(): void {
  firstWorking = 0;
}

export async function openStream(
  query: Query,
  handlers: StreamHandlers,
  signal: AbortSignal,
  opts: OpenOptions = {},
): Promise<StreamEnd & { transport: TransportName }> {
  const baseUrl = opts.baseUrl ?? location.origin;
  const order: readonly TransportName[] = opts.forced ? [opts.forced] : TRANSPORTS;
  let i = opts.forced ? 0 : Math.min(firstWorking, order.length - 1);
  let q: Query = { ...query };
  let retries = 0;
  let why: string | undefined;
  const leftBehind: string[] = [];
  const wrapped: StreamHandlers = {
    onHead(h) {
      retries = 0;
      if (!opts.forced) firstWorking = i;
      handlers.onHead(h);
    },
    onEntry(e) {
      q.after = e.cursor;
      handlers.onEntry(e);
    },
    onReconnecting(reason) {
      handlers.onReconnecting?.(reason);
    },
  };
  for (;;) {
    const t = opts.make ? opts.make(order[i], baseUrl) : transportFor(order[i], baseUrl);
    opts.onTransport?.(t.name, why);
    try {
      const end = await t.openStream(q, wrapped, signal, { token: opts.token ?? null });
      return { ...end, transport: t.name };
    } catch (e) {
      if (signal.aborted || !(e instanceof StreamError)) throw e;
      // A refused token is for a person to fix: trying another transport or
      // again would only be refused the same way (and hide the reason).
      if (e.auth) throw e;
      if (e.fallback && i + 1 < order.length) {
        why = `${t.name}: ${e.message}`;
        leftBehind.push(why);
        i++;
        continue;
      }
      if (e.retry && query.follow) {
        retries++;
        handlers.onReconnecting?.(e.message);
        await sleep(Math.min(10_000, 250 * 2 ** Math.min(retries, 6)), signal);
        why = `reconnect after: ${e.message}`;
        continue;
      }
      if (leftBehind.length) {
        throw new StreamError(`${t.name}: ${e.message} (after ${leftBehind.join("; ")})`, { code: e.code });
      }
      throw e;
    }
  }
}
