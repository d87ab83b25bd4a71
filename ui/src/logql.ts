// LogQL in the page: a tokenizer for highlighting, plain text turned into a
// substring search, the server's error position, label matchers added to a
// selector, completion context, and the metric queries the histogram and the
// facets send. Pure (no DOM): unit-tested in tests/unit/logql.test.ts.

export type TokenKind =
  | "brace"
  | "label"
  | "op"
  | "string"
  | "filter"
  | "pipe"
  | "keyword"
  | "func"
  | "number"
  | "duration"
  | "punct"
  | "ws"
  | "text";

export interface Token {
  kind: TokenKind;
  text: string;
  /** UTF-16 offsets into the query: [start, end). */
  start: number;
  end: number;
}

const FUNCS = new Set([
  "count_over_time",
  "rate",
  "bytes_over_time",
  "bytes_rate",
  "sum_over_time",
  "avg_over_time",
  "min_over_time",
  "max_over_time",
  "stddev_over_time",
  "stdvar_over_time",
  "quantile_over_time",
  "first_over_time",
  "last_over_time",
  "absent_over_time",
  "sum",
  "avg",
  "min",
  "max",
  "count",
  "stddev",
  "stdvar",
  "topk",
  "bottomk",
]);
const KEYWORDS = new Set([
  "json",
  "logfmt",
  "regexp",
  "pattern",
  "unpack",
  "line_format",
  "label_format",
  "keep",
  "drop",
  "unwrap",
  "by",
  "without",
  "and",
  "or",
  "unless",
]);

/** Splits a query into tokens covering every character (for highlighting). */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let depth = 0; // inside `{ ... }`
  let i = 0;
  const push = (kind: TokenKind, end: number) => {
    out.push({ kind, text: text.slice(i, end), start: i, end });
    i = end;
  };
  while (i < text.length) {
    const c = text[i];
    const two = text.slice(i, i + 2);
    if (/\s/.test(c)) {
      let j = i + 1;
      while (j < text.length && /\s/.test(text[j])) j++;
      push("ws", j);
    } else if (c === '"' || c === "`") {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += c === '"' && text[j] === "\\" ? 2 : 1;
      push("string", Math.min(text.length, j + 1));
    } else if (c === "{" || c === "}") {
      depth += c === "{" ? 1 : depth > 0 ? -1 : 0;
      push("brace", i + 1);
    } else if (two === "|=" || two === "|~" || (depth === 0 && (two === "!=" || two === "!~"))) {
      push("filter", i + 2);
    } else if (c === "|") {
      push("pipe", i + 1);
    } else if (two === "=~" || two === "!~" || two === "!=" || two === "==" || two === ">=" || two === "<=") {
      push("op", i + 2);
    } else if (c === "=" || c === ">" || c === "<") {
      push("op", i + 1);
    } else if (c === "[") {
      const j = text.indexOf("]", i);
      push("duration", j < 0 ? text.length : j + 1);
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < text.length && /[0-9.a-zA-Z]/.test(text[j])) j++;
      push("number", j);
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < text.length && /[A-Za-z0-9_.]/.test(text[j])) j++;
      const word = text.slice(i, j);
      push(depth > 0 ? "label" : FUNCS.has(word) ? "func" : KEYWORDS.has(word) ? "keyword" : "label", j);
    } else if (c === "(" || c === ")" || c === ",") {
      push("punct", i + 1);
    } else {
      push("text", i + 1);
    }
  }
  return out;
}

/** Does the text use LogQL syntax (a selector, a line filter, a function)? Otherwise it is plain text. */
export function isLogql(text: string): boolean {
  const t = text.trim();
  if (!t) return false;
  if (t.startsWith("{")) return true;
  if (/^(\|=|\|~|!=|!~)/.test(t)) return true;
  const m = /^([a-z_]+)\s*\(/.exec(t);
  return !!m && FUNCS.has(m[1]);
}

/** A LogQL double-quoted string holding exactly `s`. */
export function quote(s: string): string {
  return '"' + s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") + '"';
}

/** What the server is sent for what was typed: LogQL as is, plain text as a substring search. */
export function toServerQuery(text: string): string {
  const t = text.trim();
  if (!t) return "";
  if (isLogql(t)) return t.startsWith("{") ? t : "{} " + t;
  return `{} |= ${quote(t)}`;
}

/** Reads a LogQL string literal's value (double-quoted with escapes, or backticks). */
function unquote(lit: string): string {
  if (lit.startsWith("`")) return lit.slice(1, lit.endsWith("`") && lit.length > 1 ? -1 : undefined);
  const body = lit.slice(1, lit.endsWith('"') && lit.length > 1 ? -1 : undefined);
  return body.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : c));
}

/** The texts of the query's `|= "…"` line filters: what rows highlight. */
export function lineFilterTerms(query: string): string[] {
  const toks = tokenize(query).filter((t) => t.kind !== "ws");
  const out: string[] = [];
  for (let k = 0; k + 1 < toks.length; k++) {
    if (toks[k].kind === "filter" && toks[k].text === "|=" && toks[k + 1].kind === "string") {
      const v = unquote(toks[k + 1].text);
      if (v) out.push(v);
    }
  }
  return out;
}

/**
 * Where the server's message puts the error, as a UTF-16 offset into `query`
 * ("bad query at 14: expected …": a byte offset into the UTF-8 query), or
 * null when it names no position.
 */
export function errorPosition(message: string, query: string): number | null {
  const m = /\bat (\d+)\b/.exec(message);
  if (!m) return null;
  const byte = Number(m[1]);
  const enc = new TextEncoder();
  let bytes = 0;
  for (let i = 0; i < query.length; ) {
    if (bytes >= byte) return i;
    const cp = query.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    bytes += enc.encode(ch).length;
    i += ch.length;
  }
  return query.length;
}

/** The selector `{…}` at the start of a query and the rest; selector null when there is none. */
export function splitSelector(query: string): { selector: string | null; rest: string } {
  const t = query.trim();
  if (!t.startsWith("{")) return { selector: null, rest: t };
  for (const tok of tokenize(t)) {
    if (tok.kind === "brace" && tok.text === "}") return { selector: t.slice(0, tok.end), rest: t.slice(tok.end).trim() };
  }
  return { selector: null, rest: t };
}

/**
 * The query with `label="value"` (or `label!="value"` to exclude) added to
 * its selector; plain text keeps its substring search after the selector.
 * A matcher already there for the same label with the same operator is replaced.
 */
export function withMatcher(text: string, label: string, value: string, exclude = false): string {
  const op = exclude ? "!=" : "=";
  const matcher = `${label}${op}${quote(value)}`;
  const t = text.trim();
  const server = isLogql(t) ? toServerQuery(t) : t ? toServerQuery(t) : "{}";
  const { selector, rest } = splitSelector(server);
  const inner = selector ? selector.slice(1, -1).trim() : "";
  const kept = inner
    ? splitMatchers(inner).filter((m) => {
        const mm = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)/.exec(m);
        return !(mm && mm[1] === label && mm[2] === op);
      })
    : [];
  kept.push(matcher);
  return `{${kept.map((m) => m.trim()).join(", ")}}${rest ? " " + rest : ""}`;
}

/** A selector's inside split at top-level commas (not inside strings). */
function splitMatchers(inner: string): string[] {
  const out: string[] = [];
  let from = 0;
  for (const tok of tokenize(inner)) {
    if (tok.kind === "punct" && tok.text === ",") {
      out.push(inner.slice(from, tok.start));
      from = tok.end;
    }
  }
  out.push(inner.slice(from));
  return out.filter((m) => m.trim());
}

/** The query a level preset sets: this level and above ("" = all levels). */
export function levelQuery(level: string): string {
  const order = ["trace", "debug", "info", "warn", "error", "fatal"];
  const at = order.indexOf(level);
  if (at <= 0) return "";
  return `{level=~"${order.slice(at).join("|")}"}`;
}

/** The level preset a query is exactly (the buttons show it pressed), or null. */
export function presetOf(query: string): string | null {
  const t = query.trim();
  if (!t) return "";
  for (const l of ["warn", "error"]) if (t === levelQuery(l)) return l;
  return null;
}

const LEVEL_NAMES = ["trace", "debug", "info", "warn", "error", "fatal"];

/**
 * The levels a query keeps when it selects by level alone (nothing, `{}`,
 * `{level="error"}`, `{level=~"error|fatal"}`), else null. Such a query's
 * counts by level are the whole store's, less the other levels: the server
 * answers `sum by (level)` over `{}` from its block summaries, where a
 * level matcher would make it read every entry.
 */
export function levelOnly(serverQuery: string): string[] | null {
  const t = serverQuery.trim();
  if (!t || t === "{}") return [...LEVEL_NAMES];
  const { selector, rest } = splitSelector(t);
  if (!selector || rest) return null;
  const m = /^\{\s*level\s*(=~|=)\s*"([a-z|]+)"\s*\}$/.exec(selector);
  if (!m) return null;
  const names = m[1] === "=" ? [m[2]] : m[2].split("|");
  return names.every((n) => LEVEL_NAMES.includes(n)) ? names : null;
}

/** A duration in LogQL form, whole seconds (at least 1s). */
export function durationOf(ns: bigint): string {
  const s = ns / 1_000_000_000n;
  return `${s < 1n ? 1n : s}s`;
}

/** The log query inside a metric query: the server's form, `{}` when empty. */
function inner(serverQuery: string): string {
  return serverQuery.trim() || "{}";
}

/** Entries per level per step: the histogram's metric query. */
export function histogramQuery(serverQuery: string, stepNs: bigint): string {
  return `sum by (level) (count_over_time(${inner(serverQuery)}[${durationOf(stepNs)}]))`;
}

/** A label's top values over a range: one facet's metric query. */
export function facetQuery(serverQuery: string, label: string, rangeNs: bigint, k = 5): string {
  return `topk(${k}, sum by (${label}) (count_over_time(${inner(serverQuery)}[${durationOf(rangeNs)}])))`;
}

export interface Completion {
  kind: "name" | "value";
  /** For a value: the label it is a value of. */
  label?: string;
  /** What is typed so far. */
  prefix: string;
  /** The span a chosen completion replaces (UTF-16 offsets). */
  from: number;
  to: number;
}

/** What completion fits at `caret`: a label name or a label's value inside the selector, or nothing. */
export function completionAt(text: string, caret: number): Completion | null {
  const toks = tokenize(text.slice(0, caret));
  let depth = 0;
  for (const t of toks) if (t.kind === "brace") depth += t.text === "{" ? 1 : -1;
  if (depth <= 0) return null;
  const sig = toks.filter((t) => t.kind !== "ws");
  const last = sig[sig.length - 1];
  if (!last) return null;
  if (last.kind === "string") {
    const closed = last.text.length > 1 && last.text.endsWith(last.text[0]) && !last.text.endsWith('\\"');
    const op = sig[sig.length - 2];
    const name = sig[sig.length - 3];
    if (closed || op?.kind !== "op" || name?.kind !== "label") return null;
    return { kind: "value", label: name.text, prefix: unquote(last.text), from: last.start, to: caret };
  }
  if (last.kind === "op") {
    const name = sig[sig.length - 2];
    if (name?.kind !== "label") return null;
    return { kind: "value", label: name.text, prefix: "", from: caret, to: caret };
  }
  if (last.kind === "label" && last.end === caret) {
    const before = sig[sig.length - 2];
    if (before && (before.text === "{" || before.text === ",")) return { kind: "name", prefix: last.text, from: last.start, to: caret };
    return null;
  }
  if (last.text === "{" || last.text === ",") return { kind: "name", prefix: "", from: caret, to: caret };
  return null;
}
