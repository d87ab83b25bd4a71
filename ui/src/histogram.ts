// The volume histogram: entries over the range, stacked by level, from one
// QueryMetrics call (`sum by (level) (count_over_time(QUERY[STEP]))`, which
// the server answers from block summaries). Drag across it to zoom the
// range, click a bar to jump there; while following, new entries are added
// to their bar as they arrive.
import type { Api, MetricPoint } from "./api.ts";
import { histogramQuery, levelOnly } from "./logql.ts";
import { formatCount, formatTimestamp, LEVELS, normLevel, type Level } from "./state.ts";

export const BARS = 80;
const SECOND = 1_000_000_000n;

export interface Bucket {
  /** [start, end) in Unix ns. */
  start: bigint;
  end: bigint;
  counts: Record<Level, number>;
}

const zero = (): Record<Level, number> => ({ trace: 0, debug: 0, info: 0, warn: 0, error: 0, fatal: 0 });

/** A step that splits [from, to) into about `bars` buckets, whole seconds, at least one. */
export function stepFor(from: bigint, to: bigint, bars = BARS): bigint {
  const span = to > from ? to - from : SECOND;
  const raw = span / BigInt(bars);
  const s = (raw + SECOND - 1n) / SECOND;
  return (s < 1n ? 1n : s) * SECOND;
}

/** Empty buckets of `step` from `from` until they cover `to`. */
export function emptyBuckets(from: bigint, to: bigint, step: bigint): Bucket[] {
  const out: Bucket[] = [];
  for (let t = from; t < to || out.length === 0; t += step) out.push({ start: t, end: t + step, counts: zero() });
  return out;
}

/**
 * Puts a metric point into its bucket: the value at point T counts the
 * entries in (T - step, T], so it belongs to the bucket that ends at T.
 */
export function addPoint(buckets: Bucket[], p: MetricPoint): void {
  if (!buckets.length) return;
  const step = buckets[0].end - buckets[0].start;
  const k = Number((p.timestamp - buckets[0].start) / step) - 1;
  const b = buckets[k];
  if (!b) return;
  for (const s of p.samples) b.counts[normLevel(s.labels.level ?? "info")] += Math.round(s.value);
}

/** The bucket index a timestamp falls in, or -1. */
export function bucketOf(buckets: Bucket[], ts: bigint): number {
  if (!buckets.length || ts < buckets[0].start) return -1;
  const step = buckets[0].end - buckets[0].start;
  const k = Number((ts - buckets[0].start) / step);
  return k < buckets.length ? k : -1;
}

/** The time at horizontal position x of a `width` wide chart over [from, to). */
export function timeAt(x: number, width: number, from: bigint, to: bigint): bigint {
  const f = Math.min(1, Math.max(0, width > 0 ? x / width : 0));
  return from + BigInt(Math.round(Number(to - from) * f));
}

export interface HistogramEvents {
  /** Dragged across: show this range. */
  onZoom(from: bigint, to: bigint): void;
  /** Clicked a bar: go to its first entry. */
  onJump(from: bigint, to: bigint): void;
}

export class Histogram {
  private buckets: Bucket[] = [];
  private ctl: AbortController | null = null;
  private frame = 0;
  private readonly bars: HTMLElement;
  private readonly axis: HTMLElement;
  private readonly band: HTMLElement;
  /** How long the last load took, request to drawn (ms). */
  drawnMs: number | null = null;
  /** Bumped on each load that finished drawing (the e2e waits on it). */
  loads = 0;
  error: string | null = null;

  constructor(
    readonly el: HTMLElement,
    private readonly api: Api,
    private readonly events: HistogramEvents,
  ) {
    el.textContent = "";
    this.bars = div("hist-bars");
    this.axis = div("hist-axis");
    this.band = div("hist-band");
    this.band.hidden = true;
    el.append(this.bars, this.band, this.axis);
    this.wireDrag();
  }

  /** Loads the histogram of `serverQuery` over [from, to). */
  async load(serverQuery: string, from: bigint, to: bigint): Promise<void> {
    this.ctl?.abort();
    const ctl = new AbortController();
    this.ctl = ctl;
    const t0 = performance.now();
    const step = stepFor(from, to);
    const buckets = emptyBuckets(from, to, step);
    const last = buckets[buckets.length - 1].end;
    this.error = null;
    try {
      // The value at T counts (T - step, T]; asked one nanosecond early,
      // each bar counts [start, end) as the rows' range does.
      const keep = levelOnly(serverQuery);
      const query = histogramQuery(keep ? "" : serverQuery, step);
      await this.api.metrics(query, from + step - 1n, last - 1n, step, ctl.signal, (p) => {
        const samples = keep ? p.samples.filter((x) => keep.includes(normLevel(x.labels.level ?? "info"))) : p.samples;
        addPoint(buckets, { timestamp: p.timestamp + 1n, samples });
      });
    } catch (e) {
      if (ctl.signal.aborted) return;
      this.error = e instanceof Error ? e.message : String(e);
    }
    if (ctl.signal.aborted) return;
    this.buckets = buckets;
    this.render();
    this.drawnMs = performance.now() - t0;
    this.loads++;
    this.el.dataset.loads = String(this.loads);
  }

  clear(): void {
    this.ctl?.abort();
    this.buckets = [];
    this.render();
  }

  /** Whether a live entry at `ts` falls past the last bar (the caller reloads then). */
  pastEnd(ts: bigint): boolean {
    return this.buckets.length > 0 && ts >= this.buckets[this.buckets.length - 1].end;
  }

  /** A live entry: counted in its bar. */
  add(ts: bigint, level: Level): void {
    const k = bucketOf(this.buckets, ts);
    if (k < 0) return;
    this.buckets[k].counts[level]++;
    if (!this.frame) this.frame = requestAnimationFrame(() => ((this.frame = 0), this.render()));
  }

  private render(): void {
    const max = Math.max(1, ...this.buckets.map((b) => LEVELS.reduce((n, l) => n + b.counts[l], 0)));
    const cols = this.bars.children;
    while (cols.length > this.buckets.length) cols[cols.length - 1].remove();
    this.buckets.forEach((b, k) => {
      let col = cols[k] as HTMLElement | undefined;
      if (!col) {
        col = div("hist-col");
        this.bars.append(col);
      }
      col.dataset.start = b.start.toString();
      col.dataset.end = b.end.toString();
      const total = LEVELS.reduce((n, l) => n + b.counts[l], 0);
      col.title = `${formatTimestamp(b.start)} · ${formatCount(total)} entries` + LEVELS.filter((l) => b.counts[l]).map((l) => `\n${l}: ${formatCount(b.counts[l])}`).join("");
      // Highest level on top: fatal and error stand out at a glance.
      const levels = LEVELS.filter((l) => b.counts[l] > 0).reverse();
      while (col.children.length > levels.length) col.lastElementChild!.remove();
      levels.forEach((l, i) => {
        let bar = col!.children[i] as HTMLElement | undefined;
        if (!bar) {
          bar = div("hist-bar");
          col!.append(bar);
        }
        bar.dataset.level = l;
        bar.dataset.count = String(b.counts[l]);
        bar.style.height = `${(b.counts[l] / max) * 100}%`;
      });
    });
    this.axis.textContent = "";
    if (this.buckets.length) {
      const a = document.createElement("span");
      a.textContent = formatTimestamp(this.buckets[0].start).slice(0, 19);
      const m = document.createElement("span");
      m.textContent = this.error ? `histogram: ${this.error}` : `${formatCount(max)} max per ${Number((this.buckets[0].end - this.buckets[0].start) / SECOND)} s`;
      m.className = this.error ? "hist-error" : "";
      const z = document.createElement("span");
      z.textContent = formatTimestamp(this.buckets[this.buckets.length - 1].end).slice(0, 19);
      this.axis.append(a, m, z);
    }
  }

  private range(): [bigint, bigint] | null {
    if (!this.buckets.length) return null;
    return [this.buckets[0].start, this.buckets[this.buckets.length - 1].end];
  }

  private wireDrag(): void {
    let x0: number | null = null;
    const xOf = (ev: MouseEvent) => ev.clientX - this.bars.getBoundingClientRect().left;
    this.bars.addEventListener("mousedown", (ev) => {
      if (ev.button !== 0) return;
      ev.preventDefault();
      x0 = xOf(ev);
    });
    addEventListener("mousemove", (ev) => {
      if (x0 == null) return;
      const x = xOf(ev);
      if (Math.abs(x - x0) < 4) return;
      this.band.hidden = false;
      this.band.style.left = `${Math.min(x, x0)}px`;
      this.band.style.width = `${Math.abs(x - x0)}px`;
    });
    addEventListener("mouseup", (ev) => {
      if (x0 == null) return;
      const start = x0;
      x0 = null;
      this.band.hidden = true;
      const r = this.range();
      if (!r) return;
      const x = xOf(ev);
      const w = this.bars.clientWidth;
      if (Math.abs(x - start) >= 4) {
        const a = timeAt(Math.min(x, start), w, r[0], r[1]);
        const b = timeAt(Math.max(x, start), w, r[0], r[1]);
        if (b > a) this.events.onZoom(a, b);
        return;
      }
      const col = (ev.target as HTMLElement).closest<HTMLElement>(".hist-col");
      if (col?.dataset.start && col.dataset.end) this.events.onJump(BigInt(col.dataset.start), BigInt(col.dataset.end));
    });
  }
}

function div(cls: string): HTMLElement {
  const d = document.createElement("div");
  d.className = cls;
  return d;
}
