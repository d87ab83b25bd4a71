// Facets: for the current query and range, each label's top values with
// their counts, one QueryMetrics call per label
// (`topk(5, sum by (NAME) (count_over_time(QUERY[RANGE])))` at one point, so
// the server takes the whole range as one bucket). Label names come from the
// entries the server sent. Click a value to add `label="value"` to the
// selector, alt-click to exclude it.
import type { Api } from "./api.ts";
import { facetQuery, levelOnly } from "./logql.ts";
import { formatCount } from "./state.ts";

/** At most this many labels get a facet. */
export const MAX_FACETS = 8;

export interface FacetValue {
  value: string;
  count: number;
}

/** Label names to facet on: `level` first, then the names seen, most frequent first. */
export function facetNames(seen: Map<string, number>, max = MAX_FACETS): string[] {
  const names = [...seen.entries()].filter(([n]) => n !== "level").sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return ["level", ...names.map(([n]) => n)].slice(0, max);
}

/** Top values of one label from a metric answer's samples, highest count first. */
export function topValues(label: string, samples: { labels: Record<string, string>; value: number }[]): FacetValue[] {
  return samples
    .filter((s) => s.labels[label] != null && s.labels[label] !== "")
    .map((s) => ({ value: s.labels[label], count: Math.round(s.value) }))
    .sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : 1));
}

export class Facets {
  private ctl: AbortController | null = null;
  /** Bumped on each load that finished (the e2e waits on it). */
  loads = 0;

  constructor(
    readonly el: HTMLElement,
    private readonly api: Api,
    private readonly onPick: (label: string, value: string, exclude: boolean) => void,
  ) {
    el.addEventListener("click", (ev) => {
      const b = (ev.target as HTMLElement).closest<HTMLElement>(".facet-value");
      if (!b?.dataset.label || b.dataset.value == null) return;
      this.onPick(b.dataset.label, b.dataset.value, ev.altKey);
    });
  }

  /** Stops a load in progress (a new query is on its way). */
  cancel(): void {
    this.ctl?.abort();
  }

  /** Loads the facets of `names` for `serverQuery` over [from, to). */
  async load(serverQuery: string, names: string[], from: bigint, to: bigint): Promise<void> {
    this.ctl?.abort();
    const ctl = new AbortController();
    this.ctl = ctl;
    const range = to > from ? to - from : 1_000_000_000n;
    const keep = levelOnly(serverQuery);
    // One label at a time: a label other than level makes the server read
    // every entry of the range, and a query applied meanwhile cancels the rest.
    const results: { name: string; values: FacetValue[]; error: string | null }[] = [];
    for (const name of names) {
      if (ctl.signal.aborted) return;
      const samples: { labels: Record<string, string>; value: number }[] = [];
      // Levels of a level-only query: counted from the block summaries over `{}`.
      const q = name === "level" && keep ? facetQuery("", "level", range, 6) : facetQuery(serverQuery, name, range);
      try {
        await this.api.metrics(q, to, to, range, ctl.signal, (p) => samples.push(...p.samples));
        const values = topValues(name, samples).filter((v) => name !== "level" || !keep || keep.includes(v.value));
        results.push({ name, values, error: null });
        this.render(results);
      } catch (e) {
        if (ctl.signal.aborted) return;
        results.push({ name, values: [], error: e instanceof Error ? e.message : String(e) });
      }
    }
    if (ctl.signal.aborted) return;
    this.render(results);
    this.loads++;
    this.el.dataset.loads = String(this.loads);
  }

  private render(results: { name: string; values: FacetValue[]; error: string | null }[]): void {
    this.el.textContent = "";
    const title = document.createElement("div");
    title.className = "facets-title";
    title.textContent = "Labels";
    title.title = "Click a value to keep only it, Alt-click to leave it out";
    this.el.append(title);
    for (const r of results) {
      if (!r.values.length) continue;
      const box = document.createElement("section");
      box.className = "facet";
      box.dataset.label = r.name;
      const h = document.createElement("h3");
      h.textContent = r.name;
      box.append(h);
      for (const v of r.values) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "facet-value";
        b.dataset.label = r.name;
        b.dataset.value = v.value;
        b.title = `${r.name}="${v.value}" (Alt-click: ${r.name}!="${v.value}")`;
        const name = document.createElement("span");
        name.className = "facet-name";
        name.textContent = v.value;
        const count = document.createElement("span");
        count.className = "facet-count";
        count.textContent = formatCount(v.count);
        b.append(name, count);
        box.append(b);
      }
      this.el.append(box);
    }
    const failed = results.find((r) => r.error);
    if (failed && !results.some((r) => r.values.length)) {
      const p = document.createElement("p");
      p.className = "facet-error";
      p.textContent = failed.error;
      this.el.append(p);
    }
  }
}
