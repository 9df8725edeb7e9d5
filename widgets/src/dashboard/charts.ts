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

type Row = Record<string, string | number | null>;
// the encoding of a Vega-Lite unit spec, as vega-embed types it
type Encoding = NonNullable<Extract<VisualizationSpec, { mark: unknown }>["encoding"]>;

// every chart of the dashboard: bars with tooltips, 160 px high, unlabelled marks (see CONFIG)
function barSpec(description: string, width: number, values: Row[], encoding: Encoding): VisualizationSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    description,
    config: CONFIG,
    width,
    height: 160,
    data: { values },
    mark: { type: "bar", tooltip: true },
    encoding,
  };
}

// Two measures per framework, coloured by which one: side by side (`grouped`, p50 beside p95) or stacked
// (prompt under completion tokens).
interface PairChart {
  description: string;
  // the value's field and axis title (seconds, tokens)
  value: string;
  // the field naming which of the two a bar is, its legend's title, its two names in order, their colours
  series: string;
  legend: string;
  names: [string, string];
  colours: [string, string];
  grouped: boolean;
}

type Pair = [number, number];

function perFrameworkSpec(chart: PairChart, rows: { framework: string; values: Pair }[]): VisualizationSpec {
  const values = rows.flatMap((r) =>
    chart.names.map((name, i) => ({ framework: r.framework, [chart.series]: name, [chart.value]: r.values[i] })),
  );
  const y = { field: chart.value, type: "quantitative", title: chart.value } as const;
  const layout: Encoding = chart.grouped
    ? { xOffset: { field: chart.series }, y }
    : { y: { ...y, aggregate: "sum" } };
  return barSpec(chart.description, 260, values, {
    x: { field: "framework", type: "nominal", title: "framework" },
    ...layout,
    color: { field: chart.series, type: "nominal", title: chart.legend, scale: { range: chart.colours } },
  });
}

export function perHourSpec(board: Board): VisualizationSpec {
  const statuses = Object.keys(STATUS_COLOURS);
  return barSpec(`Runs started per hour by status, last ${board.hours ?? 24} hours`, 420, board.per_hour ?? [], {
    // one band per hour that had runs (a bar per hour, not a bar stretched over the time axis)
    x: { field: "hour", type: "ordinal", timeUnit: "utcmonthdatehours", title: "hour (UTC)", axis: { format: "%d %b %H:00", labelAngle: -30 } },
    y: { field: "runs", type: "quantitative", aggregate: "sum", title: "runs" },
    color: {
      field: "status",
      type: "nominal",
      scale: { domain: statuses, range: statuses.map((s) => STATUS_COLOURS[s]) },
    },
  });
}

export function durationSpec(board: Board): VisualizationSpec {
  const chart: PairChart = {
    description: "Run duration per framework, p50 and p95, in seconds",
    value: "seconds",
    series: "percentile",
    legend: "percentile",
    names: ["p50", "p95"],
    colours: ["#1d4ed8", "#c2410c"],
    grouped: true,
  };
  const rows = (board.durations ?? []).map((d) => ({ framework: d.framework, values: [d.p50_s, d.p95_s] as Pair }));
  return perFrameworkSpec(chart, rows);
}

export function tokensSpec(board: Board): VisualizationSpec {
  const chart: PairChart = {
    description: "Model tokens per framework, prompt and completion, over the window",
    value: "tokens",
    series: "kind",
    legend: "tokens",
    names: ["prompt", "completion"],
    colours: ["#1d4ed8", "#15803d"],
    grouped: false,
  };
  const rows = (board.tokens ?? []).map((t) => ({
    framework: t.framework,
    values: [t.prompt_tokens, t.completion_tokens] as Pair,
  }));
  return perFrameworkSpec(chart, rows);
}
