// Row details: every label and field (a JSON message pretty-printed), the
// cursor and exact time, copy buttons, and the Context button.
import { formatTimestamp } from "./state.ts";
import type { Entry } from "./transport/types.ts";

/** A JSON object message pretty-printed, or null when the message is not one. */
export function prettyJson(message: string): string | null {
  const t = message.trim();
  if (!t.startsWith("{") && !t.startsWith("[")) return null;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return null;
  }
}

/** The entry in the HTTP API's JSON form (`{"cursor","timestamp","level","message","labels"}`). */
export function entryJson(e: Entry): string {
  const labels: Record<string, string> = {};
  for (const [k, v] of e.labels ?? []) labels[k] = v;
  // Cursor and timestamp as exact integers (JSON.stringify cannot write a bigint).
  const body = JSON.stringify({ cursor: "C", timestamp: "T", level: e.level, message: e.message, labels });
  return body.replace('"cursor":"C"', `"cursor":${e.cursor}`).replace('"timestamp":"T"', `"timestamp":${e.timestamp}`);
}

/** Unix ns → RFC 3339 in UTC with all nine digits. */
export function rfc3339(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // …T12:34:56.789Z
  const frac = (((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, "0");
  return iso.slice(0, 19) + "." + frac + "Z";
}

/** Copies text, with the old execCommand way where the clipboard API is refused. */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = document.createElement("textarea");
    ta.value = text;
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    return ok;
  }
}

export interface DetailsEvents {
  onContext(e: Entry): void;
  onClose(): void;
  /** The link to this row (permalink). */
  linkFor(e: Entry): string;
}

export class Details {
  entry: Entry | null = null;

  constructor(
    readonly el: HTMLElement,
    private readonly events: DetailsEvents,
  ) {}

  show(e: Entry): void {
    this.entry = e;
    const el = this.el;
    el.textContent = "";
    el.dataset.cursor = e.cursor.toString();
    const head = document.createElement("div");
    head.className = "details-head";
    const ctx = button("Context", "details-context", () => this.events.onContext(e));
    ctx.title = "The lines before and after this one (c)";
    head.append(
      ctx,
      button("Copy message", "copy-message", (b) => flash(b, copyText(e.message))),
      button("Copy JSON", "copy-json", (b) => flash(b, copyText(entryJson(e)))),
      button("Copy link", "copy-link", (b) => flash(b, copyText(this.events.linkFor(e)))),
      button("×", "details-close", () => this.events.onClose()),
    );
    const table = document.createElement("table");
    table.className = "details-fields";
    const row = (k: string, v: string, cls = "") => {
      const tr = document.createElement("tr");
      tr.className = cls;
      const th = document.createElement("th");
      th.textContent = k;
      const td = document.createElement("td");
      td.textContent = v;
      const copy = document.createElement("td");
      copy.append(button("copy", "copy-field", (b) => flash(b, copyText(v))));
      tr.append(th, td, copy);
      table.append(tr);
    };
    row("time", `${formatTimestamp(e.timestamp)} (local)`);
    row("time (UTC)", rfc3339(e.timestamp));
    row("timestamp", `${e.timestamp} ns`);
    row("cursor", e.cursor.toString());
    row("level", e.level, "lvl-" + e.level);
    for (const [k, v] of e.labels ?? []) row(k, v, "label");
    const pretty = prettyJson(e.message);
    const msg = document.createElement("pre");
    msg.className = "details-message" + (pretty ? " json" : "");
    msg.textContent = pretty ?? e.message;
    el.append(head, table, msg);
    el.hidden = false;
  }

  close(): void {
    this.entry = null;
    this.el.hidden = true;
  }
}

function button(text: string, cls: string, on: (b: HTMLButtonElement) => void): HTMLButtonElement {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.dataset.testid = cls;
  b.textContent = text;
  b.addEventListener("click", () => on(b));
  return b;
}

function flash(b: HTMLButtonElement, done: Promise<boolean>): void {
  void done.then((ok) => {
    b.classList.add(ok ? "copied" : "copy-failed");
    setTimeout(() => b.classList.remove("copied", "copy-failed"), 900);
  });
}
