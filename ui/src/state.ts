// Pure state helpers: levels, the query a stream is opened with, the page's
// URL parameters, and time conversions. No DOM access here (unit-tested).
import { toServerQuery } from "./logql.ts";

export const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type Level = (typeof LEVELS)[number];

const ALIASES: Record<string, Level> = {
  warning: "warn",
  err: "error",
  critical: "fatal",
  crit: "fatal",
  panic: "fatal",
};

/** A level name as the server sends it, normalised; unknown names read as info. */
export function normLevel(s: string): Level {
  const l = s.toLowerCase();
  if ((LEVELS as readonly string[]).includes(l)) return l as Level;
  return ALIASES[l] ?? "info";
}

export type TransportName = "grpc-web" | "sse" | "poll";
export const TRANSPORTS: readonly TransportName[] = ["grpc-web", "sse", "poll"];

/** What a stream is opened with (mirrors logtap.v1.LogRequest). */
export interface Query {
  /** "" (all) or a level name: this level and above. */
  level: string;
  /** Server-side message filter (case-sensitive substring, or a regex). */
  grep: string;
  regex: boolean;
  /** Unix epoch ns, inclusive; null leaves it open. */
  since: bigint | null;
  /** Unix epoch ns, exclusive; null leaves it open. */
  until: bigint | null;
  /** Go on live after the history. */
  follow: boolean;
  /** Only entries after this cursor (resume); null = from the oldest. */
  after: bigint | null;
  /** The query as typed: LogQL, or plain text searched as a substring (logql.ts `toServerQuery`). */
  logql: string;
  /** A relative range preset (`5m`, `1h`, ...): `since` is now minus it, taken when the stream starts. */
  range: string;
}

export function defaultQuery(): Query {
  return { level: "", grep: "", regex: false, since: null, until: null, follow: true, after: null, logql: "", range: "" };
}

/** The time range presets: URL value, label, length in ns ("" = all). */
export const RANGE_PRESETS: readonly [string, string, bigint][] = [
  ["5m", "Last 5 min", 300_000_000_000n],
  ["15m", "Last 15 min", 900_000_000_000n],
  ["1h", "Last 1 h", 3_600_000_000_000n],
  ["6h", "Last 6 h", 21_600_000_000_000n],
  ["24h", "Last 24 h", 86_400_000_000_000n],
  ["7d", "Last 7 d", 604_800_000_000_000n],
  ["", "All time", 0n],
];

/** The query with a relative preset resolved against `nowNs` (since = now - preset, until open). */
export function resolveRange(q: Query, nowNs: bigint): Query {
  const preset = RANGE_PRESETS.find(([k]) => k === q.range && k !== "");
  if (!preset) return q;
  return { ...q, since: nowNs - preset[2], until: null };
}

export const DEFAULT_MAX = 200_000;
export const MIN_MAX = 100;
export const MAX_MAX = 5_000_000;

/** Everything the page's URL can set. */
export interface PageConfig {
  query: Query;
  /** Forced transport (`?transport=`), or null for grpc-web with fallbacks. */
  transport: TransportName | null;
  /** At most this many lines kept in memory (`?max=`). */
  max: number;
  /** The selected row's cursor (`?sel=`), scrolled to and opened on load. */
  selected: bigint | null;
}

function parseNs(v: string | null): bigint | null {
  if (v == null || v.trim() === "") return null;
  const t = v.trim();
  if (/^-?\d+$/.test(t)) {
    const n = BigInt(t);
    return n === 0n ? null : n;
  }
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : BigInt(ms) * 1_000_000n;
}

function parseBool(v: string | null, dflt: boolean): boolean {
  if (v == null) return dflt;
  return !/^(0|false|no|off)$/i.test(v.trim());
}

/** Reads the page's query string (`?level=error&grep=x&follow=0&transport=sse&max=5000`). */
export function parsePageParams(search: string): PageConfig {
  const p = new URLSearchParams(search);
  const q = defaultQuery();
  q.level = (p.get("level") ?? "").trim().toLowerCase();
  if (q.level === "all") q.level = "";
  q.grep = p.get("grep") ?? "";
  q.regex = parseBool(p.get("regex"), false);
  q.since = parseNs(p.get("since"));
  q.until = parseNs(p.get("until"));
  q.follow = parseBool(p.get("follow"), true);
  q.after = parseNs(p.get("after"));
  q.logql = p.get("q") ?? "";
  const r = (p.get("range") ?? "").trim();
  q.range = RANGE_PRESETS.some(([k]) => k === r) ? r : "";
  const sel = (p.get("sel") ?? "").trim();
  const selected = /^\d+$/.test(sel) ? BigInt(sel) : null;
  const t = (p.get("transport") ?? "").trim().toLowerCase();
  const transport = (TRANSPORTS as readonly string[]).includes(t) ? (t as TransportName) : null;
  let max = DEFAULT_MAX;
  const m = p.get("max");
  if (m != null && /^\d+$/.test(m.trim())) {
    max = Math.min(MAX_MAX, Math.max(MIN_MAX, parseInt(m.trim(), 10)));
  }
  return { query: q, transport, max, selected };
}

/** The page's query string for a config (only what differs from the defaults). */
export function pageSearch(cfg: PageConfig): string {
  const p = new URLSearchParams();
  const q = cfg.query;
  if (q.level) p.set("level", q.level);
  if (q.grep) p.set("grep", q.grep);
  if (q.regex) p.set("regex", "1");
  if (q.logql) p.set("q", q.logql);
  if (q.range) p.set("range", q.range);
  else {
    if (q.since != null) p.set("since", q.since.toString());
    if (q.until != null) p.set("until", q.until.toString());
  }
  if (!q.follow) p.set("follow", "0");
  if (cfg.selected != null) p.set("sel", cfg.selected.toString());
  if (cfg.transport) p.set("transport", cfg.transport);
  if (cfg.max !== DEFAULT_MAX) p.set("max", String(cfg.max));
  const s = p.toString();
  return s ? "?" + s : "";
}

/**
 * Query parameters of the HTTP fallbacks (`/api/v1/sse`, `/api/v1/poll`),
 * mirroring the gRPC request: level, grep, regex, since, until, after, follow.
 */
export function queryToHttpParams(q: Query): URLSearchParams {
  const p = new URLSearchParams();
  if (q.level) p.set("level", q.level);
  if (q.grep) p.set("grep", q.grep);
  if (q.regex) p.set("regex", "true");
  const server = toServerQuery(q.logql);
  if (server) p.set("query", server);
  if (q.since != null) p.set("since", q.since.toString());
  if (q.until != null) p.set("until", q.until.toString());
  if (q.after != null) p.set("after", q.after.toString());
  p.set("follow", q.follow ? "true" : "false");
  return p;
}

/** Same filter, same after? (used to decide whether a control changed anything) */
export function sameFilter(a: Query, b: Query): boolean {
  return (
    a.level === b.level &&
    a.grep === b.grep &&
    a.regex === b.regex &&
    a.since === b.since &&
    a.until === b.until &&
    a.follow === b.follow &&
    a.logql === b.logql &&
    a.range === b.range
  );
}

// ---- time ----

const pad2 = (n: number) => (n < 10 ? "0" : "") + n;
const pad3 = (n: number) => (n < 10 ? "00" : n < 100 ? "0" : "") + n;

/** `<input type="datetime-local">` value (local time) → Unix ns; "" → null. */
export function localInputToNs(v: string): bigint | null {
  if (!v) return null;
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(v);
  if (!m) return null;
  const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], m[6] ? +m[6] : 0, m[7] ? +m[7].padEnd(3, "0") : 0);
  const ms = d.getTime();
  return Number.isNaN(ms) ? null : BigInt(ms) * 1_000_000n;
}

/** Unix ns → `<input type="datetime-local" step="1">` value in local time. */
export function nsToLocalInput(ns: bigint): string {
  const d = new Date(Number(ns / 1_000_000n));
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}` +
    `T${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
  );
}

/** Unix ns → "2024-05-01 12:34:56.789" in local time. */
export function formatTimestamp(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return "????-??-?? ??:??:??.???";
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${pad3(d.getMilliseconds())}`
  );
}

/** Thousands separators without locale surprises: 1234567 → "1,234,567". */
export function formatCount(n: number | bigint): string {
  return n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
