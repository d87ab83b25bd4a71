// Context: the N lines before and after a row from the same stream (same
// service, or all), read by cursor range, the row marked; "More" widens.
// Shown in its own panel, so the current result stays as it is.
import type { Api } from "./api.ts";
import { quote } from "./logql.ts";
import { renderRow, createRowElement } from "./row.ts";
import type { Entry } from "./transport/types.ts";

export const CONTEXT_LINES = 10;
export const CONTEXT_MORE = 20;

export type Scope = "service" | "all";

/** The selector of a row's stream for a scope: its `service` (or, without one, all its labels but level), or all. */
export function contextSelector(e: Entry, scope: Scope): string {
  if (scope === "all") return "{}";
  const labels = (e.labels ?? []).filter(([k]) => k !== "level");
  const svc = labels.find(([k]) => k === "service");
  const pick = svc ? [svc] : labels;
  return `{${pick.map(([k, v]) => `${k}=${quote(v)}`).join(", ")}}`;
}

/**
 * The last `n` entries before cursor `c`: reads forwards from a window of
 * cursors below `c`, widening it fourfold until `n` are found or the start
 * of the store is reached (a sparse stream needs a wide window).
 */
export async function before(api: Api, query: string, c: bigint, n: number, signal: AbortSignal): Promise<Entry[]> {
  let window = BigInt(Math.max(64, n * 4));
  for (let attempt = 0; ; attempt++) {
    const from = c - 1n - window;
    const got: Entry[] = [];
    await api.logs({ query, after: from > 0n ? from : null }, signal, (e) => {
      if (e.cursor >= c) return false;
      got.push(e);
      if (got.length > n) got.shift();
    });
    if (got.length >= n || from <= 0n || attempt >= 6) return got;
    window *= 4n;
  }
}

/** The first `n` entries after cursor `c`. */
export async function after(api: Api, query: string, c: bigint, n: number, signal: AbortSignal): Promise<Entry[]> {
  const got: Entry[] = [];
  await api.logs({ query, after: c, limit: n }, signal, (e) => void got.push(e));
  return got;
}

export class Context {
  private entry: Entry | null = null;
  private n = CONTEXT_LINES;
  private scope: Scope = "service";
  private ctl: AbortController | null = null;
  private readonly list: HTMLElement;
  private readonly title: HTMLElement;
  private readonly scopeSel: HTMLSelectElement;
  /** Bumped each time lines are shown (the e2e waits on it). */
  loads = 0;

  constructor(
    readonly el: HTMLElement,
    private readonly api: Api,
  ) {
    el.textContent = "";
    const head = document.createElement("div");
    head.className = "context-head";
    this.title = document.createElement("span");
    this.title.className = "context-title";
    this.scopeSel = document.createElement("select");
    this.scopeSel.className = "context-scope";
    this.scopeSel.append(new Option("same service", "service"), new Option("all streams", "all"));
    this.scopeSel.addEventListener("change", () => {
      this.scope = this.scopeSel.value as Scope;
      void this.load();
    });
    const more = document.createElement("button");
    more.type = "button";
    more.className = "context-more";
    more.textContent = `More (±${CONTEXT_MORE})`;
    more.addEventListener("click", () => {
      this.n += CONTEXT_MORE;
      void this.load();
    });
    const close = document.createElement("button");
    close.type = "button";
    close.className = "context-close";
    close.textContent = "×";
    close.addEventListener("click", () => this.close());
    head.append(this.title, this.scopeSel, more, close);
    this.list = document.createElement("div");
    this.list.className = "context-list";
    el.append(head, this.list);
  }

  open(e: Entry): void {
    this.entry = e;
    this.n = CONTEXT_LINES;
    this.el.hidden = false;
    void this.load();
  }

  close(): void {
    this.ctl?.abort();
    this.entry = null;
    this.el.hidden = true;
  }

  private async load(): Promise<void> {
    const e = this.entry;
    if (!e) return;
    this.ctl?.abort();
    const ctl = new AbortController();
    this.ctl = ctl;
    const query = contextSelector(e, this.scope);
    this.title.textContent = `Context of cursor ${e.cursor}: ${this.n} lines either side, ${query}`;
    try {
      const [b, a] = await Promise.all([before(this.api, query, e.cursor, this.n, ctl.signal), after(this.api, query, e.cursor, this.n, ctl.signal)]);
      if (ctl.signal.aborted) return;
      this.list.textContent = "";
      for (const x of [...b, e, ...a]) {
        const row = createRowElement();
        renderRow(row, x, null);
        if (x.cursor === e.cursor) row.classList.add("anchor");
        this.list.append(row);
      }
      this.list.querySelector(".anchor")?.scrollIntoView({ block: "center" });
      this.loads++;
      this.el.dataset.loads = String(this.loads);
    } catch (err) {
      if (ctl.signal.aborted) return;
      this.list.textContent = err instanceof Error ? err.message : String(err);
    }
  }
}
