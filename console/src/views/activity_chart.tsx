/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * Requests and CPU time over the last minutes, as two small bar charts. The usage route gives
 * all-time totals per class and instance; the chart samples them every few seconds while it
 * is shown and draws the differences, so it starts empty and fills up.
 */

import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { type Api, classPath } from "../api.ts";
import { count } from "../format.ts";
import { useInterval } from "../hooks.ts";
import type { UsageReport } from "../types.ts";

const SAMPLE_MS = 5000;
/** Bars kept: five minutes of samples. */
const BARS = 60;

interface Sample {
  time: number;
  requests: number;
  cpu: number;
}

/** The chart of a class, or of one instance (by name or id). */
export function ActivityChart(
  props: { api: Api; app: string; name: string; instance: string | null },
): JSX.Element {
  const { api, app, name, instance } = props;
  const [totals, setTotals] = useState<Sample[]>([]);
  const sample = async () => {
    try {
      const usage = await api.get<UsageReport>(`${classPath(app, name)}/usage`);
      const row = instance
        ? usage.instances.find((item) => item.name === instance || item.id === instance)
        : usage.class;
      const next = {
        time: Date.now(),
        requests: row?.total.requests ?? 0,
        cpu: row?.total.cpu_ms ?? 0,
      };
      setTotals((old) => [...old.slice(-BARS), next]);
    } catch {
      // a missed sample leaves a gap
    }
  };
  useInterval(sample, SAMPLE_MS);
  const key = `${app}/${name}/${instance ?? ""}`;
  useEffect(() => void sample(), [key]);
  const [shownKey, setShownKey] = useState(key);
  if (shownKey !== key) {
    setShownKey(key);
    setTotals([]);
  }
  const deltas = totals.slice(1).map((item, i) => {
    const before = totals[i] ?? item;
    return {
      requests: Math.max(0, item.requests - before.requests),
      cpu: Math.max(0, item.cpu - before.cpu),
    };
  });
  const requests = deltas.map((item) => item.requests);
  const cpu = deltas.map((item) => item.cpu);
  return (
    <div class="charts">
      <Bars
        title="Requests per 5 s"
        values={requests}
        summary={deltas.length
          ? `${count(sum(requests))} requests in the last ${minutes(deltas.length)}`
          : "collecting the first samples"}
      />
      <Bars
        title="CPU ms per 5 s"
        values={cpu}
        summary={deltas.length
          ? `${count(sum(cpu))} ms of CPU in the last ${minutes(deltas.length)}`
          : "collecting the first samples"}
      />
    </div>
  );
}

function Bars(props: { title: string; values: number[]; summary: string }): JSX.Element {
  const max = Math.max(1, ...props.values);
  const width = 300;
  const height = 60;
  const step = width / BARS;
  const offset = BARS - props.values.length;
  return (
    <figure class="chart">
      <figcaption>
        {props.title} <span class="muted small">{props.summary}</span>
      </figcaption>
      <svg
        viewBox={`0 0 ${width} ${height}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={props.summary}
      >
        <line x1="0" y1={height - 0.5} x2={width} y2={height - 0.5} class="axis" />
        {props.values.map((value, i) => {
          const h = (value / max) * (height - 4);
          return (
            <rect
              key={i}
              x={(offset + i) * step + 0.5}
              y={height - h}
              width={Math.max(step - 1, 1)}
              height={h}
            />
          );
        })}
      </svg>
    </figure>
  );
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function minutes(intervals: number): string {
  const seconds = (intervals * SAMPLE_MS) / 1000;
  return seconds < 60 ? `${seconds} s` : `${(seconds / 60).toFixed(1)} min`;
}
