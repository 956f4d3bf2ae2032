import type { Metric, MetricValueWithName, Registry } from 'prom-client';

// A histogram for the request path (issue 25): prom-client's observe() builds a closure, validates the
// label object and hashes it on every call, twice per request. Here each label set's buckets are found
// with one Map lookup, and prom-client formats them at scrape time from get(), the same shape its own
// Histogram returns (so the registry's text format and the workers' AggregatorRegistry sum treat it alike).

/**
 * Series found by their label values one Map level per label: the values are config names and literals
 * whose string hashes V8 keeps, where a joined key is a new string to hash on every request. A series
 * is made by `make` the first time its values are seen, and listed in `all` in that order (for scrapes).
 */
export class SeriesIndex<T> {
  readonly all: T[] = [];
  readonly #root = new Map<string, unknown>();
  readonly #make: (values: readonly string[]) => T;

  constructor(make: (values: readonly string[]) => T) {
    this.#make = make;
  }

  /** The series of these label values. */
  get(values: readonly string[]): T {
    let level = this.#root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      const v = values[i] as string;
      let next = level.get(v) as Map<string, unknown> | undefined;
      if (next === undefined) level.set(v, (next = new Map()));
      level = next;
    }
    const leaf = values[last] as string;
    let series = level.get(leaf) as T | undefined;
    if (series === undefined) {
      series = this.#make(values);
      level.set(leaf, series);
      this.all.push(series);
    }
    return series;
  }
}

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class RequestHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[];
  readonly #labelNames: readonly string[];
  #index = this.#newIndex();

  constructor(options: { name: string; help: string; labelNames: readonly string[]; buckets: readonly number[]; registers: readonly Registry[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#labelNames = options.labelNames;
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
    // prom-client's Registry takes any object with its Metric's name, help, type, get() and reset().
    for (const r of options.registers) r.registerMetric(this as unknown as Metric);
  }

  /** values: one per label name, in labelNames order. */
  observe(values: readonly string[], value: number): void {
    if (!Number.isFinite(value)) return;
    const s = this.#index.get(values);
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        (s.counts[i] as number)++;
        break;
      }
    }
    s.sum += value;
    s.count++;
  }

  get(): Promise<{ readonly name: string; readonly help: string; readonly type: string; readonly values: MetricValueWithName<string>[]; readonly aggregator: string }> {
    const values: MetricValueWithName<string>[] = [];
    for (const s of this.#index.all) {
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += s.counts[i] as number;
        values.push({ labels: { ...s.labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  reset(): void {
    this.#index = this.#newIndex();
  }

  #newIndex(): SeriesIndex<Series> {
    return new SeriesIndex((values) => {
      const labels: Record<string, string> = {};
      this.#labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      return { labels, counts: new Float64Array(this.#bounds.length), sum: 0, count: 0 };
    });
  }
}
