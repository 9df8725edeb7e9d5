// The dashboard's Vega-Lite specs: runs per hour by status, p50/p95 durations and model tokens per framework.
import type { VisualizationSpec } from "vega-embed";
import type { Board } from "./types";

export const STATUS_COLOURS: Record<string, string> = {
  queued: "#6b7280",
  running: "#1d4ed8",
  waiting: "#7c3aed",
  succeeded: "#15803d",
  failed: "#b91c1c",
  cancelled: "#9ca3af",
  timed_out: "#c2410c",
};

// the figure around the chart is labelled; the marks, axes and legend get no ARIA roles of their own
// (Vega gives their groups an image role with no text, which axe counts as serious)
const CONFIG = { mark: { aria: false }, axis: { aria: false }, legend: { aria: false } };

export function perHourSpec(board: Board): VisualizationSpec {
  const statuses = Object.keys(STATUS_COLOURS);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    description: `Runs started per hour by status, last ${board.hours ?? 24} hours`,
    config: CONFIG,
    width: 420,
    height: 160,
    data: { values: board.per_hour ?? [] },
    mark: { type: "bar", tooltip: true },
    encoding: {
      // one band per hour that had runs (a bar per hour, not a bar stretched over the time axis)
      x: { field: "hour", type: "ordinal", timeUnit: "utcmonthdatehours", title: "hour (UTC)", axis: { format: "%d %b %H:00", labelAngle: -30 } },
      y: { field: "runs", type: "quantitative", aggregate: "sum", title: "runs" },
      color: {
        field: "status",
        type: "nominal",
        scale: { domain: statuses, range: statuses.map((s) => STATUS_COLOURS[s]) },
      },
    },
  };
}

export function durationSpec(board: Board): VisualizationSpec {
  const rows = (board.durations ?? []).flatMap((d) => [
    { framework: d.framework, percentile: "p50", seconds: d.p50_s },
    { framework: d.framework, percentile: "p95", seconds: d.p95_s },
  ]);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    description: "Run duration per framework, p50 and p95, in seconds",
    config: CONFIG,
    width: 260,
    height: 160,
    data: { values: rows },
    mark: { type: "bar", tooltip: true },
    encoding: {
      x: { field: "framework", type: "nominal", title: "framework" },
      xOffset: { field: "percentile" },
      y: { field: "seconds", type: "quantitative", title: "seconds" },
      color: { field: "percentile", type: "nominal", scale: { range: ["#1d4ed8", "#c2410c"] } },
    },
  };
}

export function tokensSpec(board: Board): VisualizationSpec {
  const rows = (board.tokens ?? []).flatMap((t) => [
    { framework: t.framework, kind: "prompt", tokens: t.prompt_tokens },
    { framework: t.framework, kind: "completion", tokens: t.completion_tokens },
  ]);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    description: "Model tokens per framework, prompt and completion, over the window",
    config: CONFIG,
    width: 260,
    height: 160,
    data: { values: rows },
    mark: { type: "bar", tooltip: true },
    encoding: {
      x: { field: "framework", type: "nominal", title: "framework" },
      y: { field: "tokens", type: "quantitative", aggregate: "sum", title: "tokens" },
      color: { field: "kind", type: "nominal", title: "tokens", scale: { range: ["#1d4ed8", "#15803d"] } },
    },
  };
}
