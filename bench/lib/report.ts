/**
 * Turns the raw runs into the result document: per target and scenario, every metric's median
 * and spread over the repetitions, the ratio dohost / peer for the headline metrics, as JSON and
 * as one Markdown table.
 */

import { type Metrics, SCENARIOS } from "./scenarios.ts";
import { round, summarize, type Summary } from "./stats.ts";
import type { TargetName } from "./targets.ts";

/** One scenario run on one target in one repetition. */
export interface RunRecord {
  target: TargetName;
  scenario: string;
  rep: number;
  metrics: Metrics;
  /** Set when the scenario failed (e.g. a feature the target does not have). */
  error?: string;
  /** Other processes used more CPU than allowed during this run. */
  disturbed: boolean;
}

/** The whole result file. */
export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  machine: Record<string, string>;
  versions: Record<string, string>;
  commands: Record<string, string>;
  options: Record<string, unknown>;
  runs: RunRecord[];
  summary: Record<string, Record<string, Record<string, Summary | { correct: boolean[] }>>>;
}

/** Median/spread of every numeric metric, per scenario and target. */
export function summarizeRuns(runs: RunRecord[]): BenchReport["summary"] {
  const out: BenchReport["summary"] = {};
  for (const run of runs) {
    if (run.error) continue;
    const scenario = out[run.scenario] ??= {};
    const target = scenario[run.target] ??= {};
    for (const [name, value] of Object.entries(run.metrics)) {
      if (typeof value === "boolean") {
        const entry = (target[name] ??= { correct: [] }) as { correct: boolean[] };
        entry.correct.push(value);
      } else {
        const entry = (target[name] ??= summarize([])) as Summary;
        entry.runs.push(value);
      }
    }
  }
  for (const scenario of Object.values(out)) {
    for (const target of Object.values(scenario)) {
      for (const [name, entry] of Object.entries(target)) {
        if ("runs" in entry) target[name] = summarize(entry.runs);
      }
    }
  }
  return out;
}

/** The Markdown table: one row per headline metric, one column per target, then ratios. */
export function markdownTable(report: BenchReport, targets: TargetName[]): string {
  const peers = targets.filter((t) => t !== "dohost" && t !== "deno-bare");
  const header = [
    "scenario",
    "metric",
    ...targets,
    ...(targets.includes("dohost") ? peers.map((p) => `dohost / ${p}`) : []),
  ];
  const lines = [
    `| ${header.join(" | ")} |`,
    `| ${header.map((_, i) => (i < 2 ? "---" : "---:")).join(" | ")} |`,
  ];
  for (const scenario of SCENARIOS) {
    const data = report.summary[scenario.key];
    if (!data) continue;
    const errors = report.runs.filter((r) => r.scenario === scenario.key && r.error);
    scenario.headline.forEach((headline, index) => {
      const cells = targets.map((target) => cell(data[target]?.[headline.metric], target, errors));
      const ratios = targets.includes("dohost")
        ? peers.map((peer) => ratio(data.dohost?.[headline.metric], data[peer]?.[headline.metric]))
        : [];
      lines.push(
        `| ${index === 0 ? scenario.key : ""} | ${headline.label} | ${cells.join(" | ")} | ${
          ratios.join(" | ")
        } |`.replace(/ \| {2}\|$/, " |"),
      );
    });
    const correctness = targets.map((target) => {
      const entry = data[target]?.correct;
      if (!entry || !("correct" in entry)) return "";
      return entry.correct.every(Boolean)
        ? `yes ×${entry.correct.length}`
        : `**NO** (${entry.correct.map((c) => (c ? "y" : "n")).join("")})`;
    });
    if (correctness.some(Boolean)) {
      lines.push(
        `| | correct | ${correctness.join(" | ")} | ${peers.map(() => "").join(" | ")} |`,
      );
    }
  }
  const failed = report.runs.filter((r) => r.error);
  const notes = failed.length
    ? [
      "",
      "Failed runs:",
      ...unique(failed.map((r) => `- ${r.target} ${r.scenario}: ${r.error}`)),
    ]
    : [];
  const disturbed = report.runs.filter((r) => r.disturbed && !r.error);
  if (disturbed.length) {
    notes.push(
      "",
      `Runs disturbed by other load on the machine (kept): ${
        disturbed.map((r) => `${r.target}/${r.scenario}#${r.rep}`).join(", ")
      }`,
    );
  }
  return [...lines, ...notes].join("\n");
}

function cell(
  entry: Summary | { correct: boolean[] } | undefined,
  target: TargetName,
  errors: { target: TargetName }[],
): string {
  if (!entry || !("median" in entry)) {
    return errors.some((e) => e.target === target) ? "failed" : "";
  }
  return `${round(entry.median)} (±${Math.round(entry.spread_pct / 2)}%)`;
}

function ratio(
  ours: Summary | { correct: boolean[] } | undefined,
  peer: Summary | { correct: boolean[] } | undefined,
): string {
  if (!ours || !peer || !("median" in ours) || !("median" in peer) || peer.median === 0) return "";
  return `${round(ours.median / peer.median)}×`;
}

function unique(lines: string[]): string[] {
  return [...new Set(lines)];
}
