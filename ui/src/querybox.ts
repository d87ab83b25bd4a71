// The query box: one input over a highlighting layer (the input's own text
// is transparent, so the coloured copy behind shows through with the caret
// on top), the server's error marked at its position, and completion of
// label names and values inside the selector.
import { completionAt, errorPosition, isLogql, tokenize, type Completion } from "./logql.ts";

export interface QueryBoxEvents {
  /** Enter: run the query as typed. */
  onRun(text: string): void;
  /** Candidates for a completion context (label names, or a label's values). */
  complete(c: Completion): Promise<string[]>;
}

export class QueryBox {
  private readonly hl: HTMLElement;
  private readonly menu: HTMLUListElement;
  private readonly err: HTMLElement;
  private items: string[] = [];
  private active = 0;
  private ctx: Completion | null = null;
  private errorAt: number | null = null;
  private asked = 0;
  /** The arrows moved in the menu: Enter takes the item rather than running. */
  private navigated = false;

  constructor(
    readonly input: HTMLInputElement,
    private readonly events: QueryBoxEvents,
  ) {
    const box = input.parentElement!;
    this.hl = box.querySelector<HTMLElement>(".qb-hl")!;
    this.menu = box.querySelector<HTMLUListElement>(".qb-complete")!;
    this.err = box.querySelector<HTMLElement>(".qb-error")!;
    input.addEventListener("input", () => {
      this.setError(null);
      this.paint();
      void this.suggest();
    });
    input.addEventListener("scroll", () => this.syncScroll());
    input.addEventListener("keydown", (ev) => this.onKey(ev));
    // Later, so that a click on the menu is taken first; and only if the
    // focus did not come back meanwhile (a blur just before typing again).
    input.addEventListener("blur", () => setTimeout(() => document.activeElement !== input && this.hideMenu(), 150));
    this.menu.addEventListener("mousedown", (ev) => {
      const li = (ev.target as HTMLElement).closest("li");
      if (!li) return;
      ev.preventDefault();
      this.accept(Number(li.dataset.index));
    });
    this.paint();
  }

  get value(): string {
    return this.input.value;
  }

  /** Shows `text` (a button or a link set the query). */
  set(text: string): void {
    if (this.input.value === text) return;
    this.input.value = text;
    this.setError(null);
    this.paint();
  }

  /** Marks the server's refusal: the message, and its position when it names one. */
  setError(message: string | null): void {
    this.errorAt = message ? errorPosition(message, this.input.value) : null;
    this.err.hidden = !message;
    this.err.textContent = message ?? "";
    this.input.setAttribute("aria-invalid", String(!!message));
    this.input.parentElement!.classList.toggle("invalid", !!message);
    this.paint();
  }

  private paint(): void {
    const text = this.input.value;
    this.hl.textContent = "";
    if (!isLogql(text)) {
      this.hl.append(text);
    } else {
      for (const t of tokenize(text)) {
        if (t.kind === "ws") {
          this.hl.append(t.text);
          continue;
        }
        const s = document.createElement("span");
        s.className = "tk-" + t.kind;
        s.textContent = t.text;
        this.hl.append(s);
      }
    }
    if (this.errorAt != null) this.markError(this.errorAt);
    this.hl.append(" ");
    this.syncScroll();
  }

  /** Wraps the character at `at` (or a space past the end) in the error mark. */
  private markError(at: number): void {
    const walker = document.createTreeWalker(this.hl, NodeFilter.SHOW_TEXT);
    let seen = 0;
    for (let n = walker.nextNode() as Text | null; n; n = walker.nextNode() as Text | null) {
      const len = n.data.length;
      if (at < seen + len) {
        const mid = n.splitText(at - seen);
        mid.splitText(1);
        const mark = document.createElement("span");
        mark.className = "qb-error-at";
        mid.replaceWith(mark);
        mark.append(mid);
        return;
      }
      seen += len;
    }
    const mark = document.createElement("span");
    mark.className = "qb-error-at";
    mark.textContent = " ";
    this.hl.append(mark);
  }

  private syncScroll(): void {
    this.hl.style.transform = `translateX(${-this.input.scrollLeft}px)`;
  }

  private async suggest(): Promise<void> {
    const ask = ++this.asked;
    const c = completionAt(this.input.value, this.input.selectionStart ?? this.input.value.length);
    if (!c) return this.hideMenu();
    const all = await this.events.complete(c).catch(() => [] as string[]);
    if (ask !== this.asked) return;
    const p = c.prefix.toLowerCase();
    const items = all.filter((v) => v.toLowerCase().startsWith(p) && v !== c.prefix).slice(0, 12);
    if (!items.length) return this.hideMenu();
    // The same list again (a keystroke that changed nothing it depends on): keep the choice made in it.
    const same = !this.menu.hidden && this.ctx?.kind === c.kind && items.join("\n") === this.items.join("\n");
    this.ctx = c;
    this.items = items;
    if (!same) {
      this.active = 0;
      this.navigated = false;
    }
    this.menu.textContent = "";
    items.forEach((v, i) => {
      const li = document.createElement("li");
      li.textContent = v;
      li.dataset.index = String(i);
      li.dataset.kind = c.kind;
      this.menu.append(li);
    });
    this.menu.hidden = false;
    this.highlight();
  }

  private highlight(): void {
    [...this.menu.children].forEach((li, i) => li.classList.toggle("active", i === this.active));
  }

  private hideMenu(): void {
    this.menu.hidden = true;
    this.navigated = false;
    this.ctx = null;
    this.items = [];
  }

  private accept(i: number): void {
    const c = this.ctx;
    const v = this.items[i];
    if (!c || v == null) return;
    const text = this.input.value;
    const insert = c.kind === "name" ? v : JSON.stringify(v);
    const next = text.slice(0, c.from) + insert + text.slice(c.kind === "value" && text[c.to] === '"' ? c.to + 1 : c.to);
    this.input.value = next;
    const caret = c.from + insert.length;
    this.input.setSelectionRange(caret, caret);
    this.hideMenu();
    this.paint();
    this.input.focus();
  }

  private onKey(ev: KeyboardEvent): void {
    const open = !this.menu.hidden && this.items.length > 0;
    if (open && (ev.key === "ArrowDown" || ev.key === "ArrowUp")) {
      ev.preventDefault();
      this.active = (this.active + (ev.key === "ArrowDown" ? 1 : this.items.length - 1)) % this.items.length;
      this.navigated = true;
      this.highlight();
    } else if (open && (ev.key === "Tab" || (ev.key === "Enter" && this.navigated))) {
      ev.preventDefault();
      this.accept(this.active);
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      this.hideMenu();
      this.events.onRun(this.input.value);
    } else if (ev.key === "Escape") {
      if (open) this.hideMenu();
      else this.input.blur();
      ev.preventDefault();
    }
  }
}
