// The HTTP fallbacks' JSON entries: {"cursor","timestamp","level","message","labels"}.
// Integers there can exceed 2^53 (timestamps in ns, cursors), which JSON.parse
// would round: they are quoted before parsing and read as BigInt.
import { normLevel } from "../state.ts";
import type { Entry } from "./types.ts";

// Matches `"timestamp": 123` style members (never inside a JSON string: there
// the quotes are escaped as \").
const BIG_INT_MEMBERS = /"(cursor|timestamp|next_cursor|nextCursor|stored|last_cursor|sent)"(\s*:\s*)(-?\d+)(?=\s*[,}\]])/g;

function quoteBigInts(text: string): string {
  return text.replace(BIG_INT_MEMBERS, '"$1"$2"$3"');
}

function toBigInt(v: unknown, what: string): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isFinite(v)) return BigInt(Math.trunc(v));
  if (typeof v === "string") {
    const t = v.trim();
    if (/^-?\d+$/.test(t)) return BigInt(t);
    // An RFC 3339 timestamp, in case a server sends one.
    const ms = Date.parse(t);
    if (!Number.isNaN(ms)) return BigInt(ms) * 1_000_000n;
  }
  throw new Error(`bad ${what}: ${JSON.stringify(v)}`);
}

function labelsOf(v: unknown): [string, string][] | null {
  if (!v || typeof v !== "object" || Array.isArray(v)) return null;
  const out: [string, string][] = [];
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    out.push([k, typeof val === "string" ? val : JSON.stringify(val)]);
  }
  if (!out.length) return null;
  out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return out;
}

export function entryFromJson(o: unknown): Entry {
  if (!o || typeof o !== "object") throw new Error("entry is not an object");
  const r = o as Record<string, unknown>;
  return {
    cursor: toBigInt(r.cursor ?? 0, "cursor"),
    timestamp: toBigInt(r.timestamp ?? 0, "timestamp"),
    level: normLevel(typeof r.level === "string" ? r.level : "info"),
    message: typeof r.message === "string" ? r.message : r.message == null ? "" : String(r.message),
    labels: labelsOf(r.labels),
  };
}

/** One entry from its JSON text (an SSE event's data, an NDJSON line). */
export function parseEntryJson(text: string): Entry {
  return entryFromJson(JSON.parse(quoteBigInts(text)));
}

export interface PollAnswer {
  entries: Entry[];
  nextCursor: bigint | null;
}

/** `GET /api/v1/poll` answer: {"entries":[...],"next_cursor":N}. */
export function parsePollJson(text: string): PollAnswer {
  const o = JSON.parse(quoteBigInts(text)) as Record<string, unknown>;
  if (!o || typeof o !== "object" || !Array.isArray(o.entries)) throw new Error("poll answer without entries");
  const entries = (o.entries as unknown[]).map(entryFromJson);
  const nc = o.next_cursor ?? o.nextCursor;
  return { entries, nextCursor: nc == null ? null : toBigInt(nc, "next_cursor") };
}
