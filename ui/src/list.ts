// A virtualised list with a fixed row height: only the rows in view (plus a
// little overscan) exist in the DOM, recycled as the user scrolls.
//
// Browsers cap an element's height (~33M px in Chromium, less elsewhere), so
// past `maxScrollPx` the scroll range is mapped proportionally onto the rows.

export interface WindowInput {
  scrollTop: number;
  viewportHeight: number;
  rowHeight: number;
  count: number;
  overscan: number;
  /** Tallest spacer we create; beyond it the mapping is proportional. */
  maxScrollPx: number;
}

export interface Window {
  /** First row index to render (inclusive). */
  first: number;
  /** Last row index to render (exclusive). */
  last: number;
  /** Where the first rendered row goes, in px from the spacer's top. */
  offsetY: number;
  /** The spacer's height. */
  totalHeight: number;
  /** Whether the proportional (scaled) mapping is in use. */
  scaled: boolean;
}

export const DEFAULT_MAX_SCROLL_PX = 8_000_000;

/** Which rows to render for a scroll position (pure; unit-tested). */
export function computeWindow(p: WindowInput): Window {
  const { rowHeight, count, overscan } = p;
  const vh = Math.max(0, p.viewportHeight);
  if (count <= 0 || rowHeight <= 0) {
    return { first: 0, last: 0, offsetY: 0, totalHeight: 0, scaled: false };
  }
  const natural = count * rowHeight;
  if (natural <= p.maxScrollPx) {
    const maxTop = Math.max(0, natural - vh);
    const top = Math.min(Math.max(0, p.scrollTop), maxTop);
    const firstVisible = Math.floor(top / rowHeight);
    const lastVisible = Math.min(count, Math.ceil((top + vh) / rowHeight));
    const first = Math.max(0, firstVisible - overscan);
    const last = Math.min(count, Math.max(lastVisible, firstVisible + 1) + overscan);
    return { first, last, offsetY: first * rowHeight, totalHeight: natural, scaled: false };
  }
  // Scaled: the spacer is maxScrollPx tall; scroll fraction → first visible row.
  const totalHeight = p.maxScrollPx;
  const visibleRows = Math.max(1, Math.ceil(vh / rowHeight));
  const maxTop = Math.max(1, totalHeight - vh);
  const top = Math.min(Math.max(0, p.scrollTop), maxTop);
  const frac = top / maxTop;
  const firstVisible = Math.min(count - 1, Math.max(0, Math.round(frac * Math.max(0, count - visibleRows))));
  const first = Math.max(0, firstVisible - overscan);
  const last = Math.min(count, firstVisible + visibleRows + overscan);
  const offsetY = top - (firstVisible - first) * rowHeight;
  return { first, last, offsetY, totalHeight, scaled: true };
}

/** Is the viewport scrolled to (within half a row of) the bottom? */
export function isAtBottom(scrollTop: number, viewportHeight: number, scrollHeight: number, rowHeight: number): boolean {
  return scrollTop + viewportHeight >= scrollHeight - Math.max(2, rowHeight / 2);
}

/** scrollTop that keeps the same rows in view after `dropped` rows left the top (unscaled mode). */
export function scrollTopAfterDrop(scrollTop: number, dropped: number, rowHeight: number): number {
  return Math.max(0, scrollTop - dropped * rowHeight);
}

export interface ListSource<T> {
  readonly size: number;
  get(i: number): T | undefined;
}

export interface VirtualListOptions<T> {
  rowHeight: number;
  overscan?: number;
  maxScrollPx?: number;
  source: ListSource<T>;
  createRow(): HTMLElement;
  renderRow(el: HTMLElement, item: T, index: number): void;
  /** Called when "stuck to the bottom" changes (user scrolled away or back). */
  onStickyChange?(sticky: boolean): void;
}

export class VirtualList<T> {
  readonly spacer: HTMLElement;
  readonly layer: HTMLElement;
  private rows: HTMLElement[] = [];
  private rowItems: (T | undefined)[] = [];
  private win: Window = { first: 0, last: 0, offsetY: 0, totalHeight: 0, scaled: false };
  private frame = 0;
  private lastProgrammaticTop = -1;
  private viewportHeight = 0;
  /** Follows the newest line while true (the user is at the bottom). */
  sticky = true;
  /** Bumped whenever render state must be rebuilt regardless of item identity (e.g. highlight changed). */
  private epoch = 0;
  private rowEpochs: number[] = [];

  constructor(readonly viewport: HTMLElement, private opts: VirtualListOptions<T>) {
    this.spacer = document.createElement("div");
    this.spacer.className = "vl-spacer";
    this.layer = document.createElement("div");
    this.layer.className = "vl-layer";
    this.spacer.appendChild(this.layer);
    viewport.appendChild(this.spacer);
    this.viewportHeight = viewport.clientHeight;
    viewport.addEventListener("scroll", () => this.onScroll(), { passive: true });
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(() => {
        this.viewportHeight = viewport.clientHeight;
        this.refresh();
      }).observe(viewport);
    }
  }

  get rowHeight(): number {
    return this.opts.rowHeight;
  }

  get window(): Window {
    return this.win;
  }

  private onScroll(): void {
    const v = this.viewport;
    const atBottom = isAtBottom(v.scrollTop, this.viewportHeight, v.scrollHeight, this.opts.rowHeight);
    let sticky: boolean;
    if (atBottom) sticky = true;
    else if (this.sticky && this.lastProgrammaticTop >= 0 && v.scrollTop >= this.lastProgrammaticTop - 1) {
      // Our own scroll-to-bottom, overtaken by rows appended since: still stuck.
      sticky = true;
    } else sticky = false;
    this.setSticky(sticky);
    this.schedule();
  }

  private setSticky(s: boolean): void {
    if (s !== this.sticky) {
      this.sticky = s;
      this.opts.onStickyChange?.(s);
    }
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** Forces every visible row to be re-rendered (e.g. the highlight changed). */
  invalidate(): void {
    this.epoch++;
    this.refresh();
  }

  /** Rows were dropped from the top: keep the rows in view where they are (unless stuck to the bottom). */
  droppedFromTop(n: number): void {
    if (n <= 0 || this.sticky || this.win.scaled) return;
    const top = scrollTopAfterDrop(this.viewport.scrollTop, n, this.opts.rowHeight);
    this.lastProgrammaticTop = -1;
    this.viewport.scrollTop = top;
  }

  /** Call after the source changed: resizes the spacer, follows the bottom if stuck, renders. */
  refresh(): void {
    const count = this.opts.source.size;
    const h = this.totalHeightFor(count);
    if (this.spacer.style.height !== h + "px") this.spacer.style.height = h + "px";
    if (this.sticky) this.scrollToBottom(false);
    this.render();
  }

  scrollToBottom(user = true): void {
    const v = this.viewport;
    const target = Math.max(0, v.scrollHeight - this.viewportHeight);
    if (Math.abs(v.scrollTop - target) >= 1) {
      v.scrollTop = target;
      this.lastProgrammaticTop = v.scrollTop;
    }
    if (user) {
      this.setSticky(true);
      this.render();
    }
  }

  /** Scrolls row `i` into view (centred when it was out of view); stops following the bottom. */
  scrollToIndex(i: number): void {
    const o = this.opts;
    const count = o.source.size;
    if (i < 0 || i >= count) return;
    const vh = this.viewportHeight || this.viewport.clientHeight;
    const total = this.totalHeightFor(count);
    const maxTop = Math.max(0, total - vh);
    let top: number;
    if (!this.win.scaled && total === count * o.rowHeight) {
      const y = i * o.rowHeight;
      const cur = this.viewport.scrollTop;
      if (y >= cur && y + o.rowHeight <= cur + vh) return;
      top = y - vh / 2 + o.rowHeight / 2;
    } else {
      const visible = Math.max(1, Math.ceil(vh / o.rowHeight));
      top = (i / Math.max(1, count - visible)) * maxTop;
    }
    this.setSticky(false);
    this.lastProgrammaticTop = -1;
    this.viewport.scrollTop = Math.min(maxTop, Math.max(0, top));
    this.render();
  }

  private totalHeightFor(count: number): number {
    const natural = count * this.opts.rowHeight;
    return Math.min(natural, this.opts.maxScrollPx ?? DEFAULT_MAX_SCROLL_PX);
  }

  /** Renders the rows in view now. */
  render(): void {
    const o = this.opts;
    const win = computeWindow({
      scrollTop: this.viewport.scrollTop,
      viewportHeight: this.viewportHeight || this.viewport.clientHeight,
      rowHeight: o.rowHeight,
      count: o.source.size,
      overscan: o.overscan ?? 8,
      maxScrollPx: o.maxScrollPx ?? DEFAULT_MAX_SCROLL_PX,
    });
    this.win = win;
    const need = win.last - win.first;
    while (this.rows.length < need) {
      const el = o.createRow();
      this.layer.appendChild(el);
      this.rows.push(el);
      this.rowItems.push(undefined);
      this.rowEpochs.push(-1);
    }
    while (this.rows.length > need) {
      this.rows.pop()!.remove();
      this.rowItems.pop();
      this.rowEpochs.pop();
    }
    for (let k = 0; k < need; k++) {
      const item = o.source.get(win.first + k);
      if (item === undefined) continue;
      if (this.rowItems[k] !== item || this.rowEpochs[k] !== this.epoch) {
        o.renderRow(this.rows[k], item, win.first + k);
        this.rowItems[k] = item;
        this.rowEpochs[k] = this.epoch;
      }
    }
    this.layer.style.transform = `translateY(${win.offsetY}px)`;
  }

  /** Empties the DOM rows (the source was cleared). */
  reset(): void {
    for (const r of this.rows) r.remove();
    this.rows = [];
    this.rowItems = [];
    this.rowEpochs = [];
    this.sticky = true;
    this.lastProgrammaticTop = -1;
    this.viewport.scrollTop = 0;
    this.refresh();
  }
}
