// Rendering of one log row, and search-match highlighting.
import { lineFilterTerms, toServerQuery } from "./logql.ts";
import { formatTimestamp, type Query } from "./state.ts";
import type { Entry } from "./transport/types.ts";

export const ROW_HEIGHT = 22;

/** [start, end) ranges of `needle` in `text` (case-sensitive, like the server's grep). */
export function matchRanges(text: string, needle: string | RegExp | null, maxRanges = 64): [number, number][] {
  const out: [number, number][] = [];
  if (!needle) return out;
  if (typeof needle === "string") {
    let from = 0;
    while (out.length < maxRanges) {
      const at = text.indexOf(needle, from);
      if (at < 0) break;
      out.push([at, at + needle.length]);
      from = at + needle.length;
    }
    return out;
  }
  const re = new RegExp(needle.source, needle.flags.includes("g") ? needle.flags : needle.flags + "g");
  let m: RegExpExecArray | null;
  while (out.length < maxRanges && (m = re.exec(text))) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    out.push([m.index, m.index + m[0].length]);
  }
  return out;
}

/** What to highlight for a search: the text, a RegExp in regex mode, or null (invalid/empty). */
export function highlighterFor(grep: string, regex: boolean): string | RegExp | null {
  if (!grep) return null;
  if (!regex) return grep;
  try {
    return new RegExp(grep, "g");
  } catch {
    return null; // Rust regex syntax the browser cannot read: no highlight.
  }
}

/** What to highlight for a query: its `|= "…"` terms (plain text typed is one) and the legacy grep. */
export function highlighterForQuery(q: Pick<Query, "logql" | "grep" | "regex">): string | RegExp | null {
  const terms = lineFilterTerms(toServerQuery(q.logql));
  if (!terms.length) return highlighterFor(q.grep, q.regex);
  if (terms.length === 1 && !q.grep) return terms[0];
  const parts = terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  if (q.grep) parts.push(q.regex ? q.grep : q.grep.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  try {
    return new RegExp(parts.join("|"), "g");
  } catch {
    return terms[0];
  }
}

const LEVEL_TEXT: Record<string, string> = {
  trace: "TRACE",
  debug: "DEBUG",
  info: "INFO",
  warn: "WARN",
  error: "ERROR",
  fatal: "FATAL",
};

// Messages are shown on one line; very long ones are cut for the DOM (the
// detail panel shows them whole).
const MAX_SHOWN = 2000;

export function createRowElement(): HTMLElement {
  const row = document.createElement("div");
  row.className = "row";
  row.dataset.testid = "row";
  const ts = document.createElement("span");
  ts.className = "ts";
  const lvl = document.createElement("span");
  lvl.className = "lvl";
  const msg = document.createElement("span");
  msg.className = "msg";
  const labels = document.createElement("span");
  labels.className = "labels";
  row.append(ts, lvl, msg, labels);
  return row;
}

export function renderRow(row: HTMLElement, e: Entry, hl: string | RegExp | null): void {
  row.dataset.level = e.level;
  row.dataset.cursor = e.cursor.toString();
  const [ts, lvl, msg, labels] = row.children as unknown as HTMLElement[];
  ts.textContent = formatTimestamp(e.timestamp);
  lvl.textContent = LEVEL_TEXT[e.level] ?? e.level.toUpperCase();
  const text = e.message.length > MAX_SHOWN ? e.message.slice(0, MAX_SHOWN) + "…" : e.message;
  const ranges = matchRanges(text, hl);
  if (!ranges.length) {
    msg.textContent = text;
  } else {
    msg.textContent = "";
    let at = 0;
    for (const [s, end] of ranges) {
      if (s > at) msg.append(text.slice(at, s));
      const m = document.createElement("mark");
      m.textContent = text.slice(s, end);
      msg.append(m);
      at = end;
    }
    if (at < text.length) msg.append(text.slice(at));
  }
  labels.textContent = "";
  if (e.labels) {
    for (const [k, v] of e.labels) {
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.textContent = `${k}=${v}`;
      labels.append(chip);
    }
  }
}
