/**
 * Small statistics helpers: percentiles of one run, and the median and spread of a figure over
 * repetitions (what the report shows).
 */

/** The `q` quantile (0–1) of an ascending array, nearest-rank; 0 for an empty array. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

/** A figure over repetitions: median, min, max and spread = (max − min) / median. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  spread_pct: number;
  runs: number[];
}

/** Summarises the values one figure took over the repetitions. */
export function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const median = n === 0
    ? 0
    : n % 2
    ? sorted[(n - 1) / 2] ?? 0
    : ((sorted[n / 2 - 1] ?? 0) + (sorted[n / 2] ?? 0)) / 2;
  const min = sorted[0] ?? 0;
  const max = sorted[n - 1] ?? 0;
  return {
    median,
    min,
    max,
    spread_pct: median === 0 ? 0 : ((max - min) / Math.abs(median)) * 100,
    runs: values,
  };
}

/** Rounds for display: 3 significant digits, no exponent. */
export function round(value: number): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(value))));
  return Number(value.toFixed(Math.min(digits, 3)));
}
