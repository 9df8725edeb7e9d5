// A Vega-Lite chart (vega-embed, rendering with no network, as SVG, which screen readers reach).
// The chart library is not in the dashboard's bundle: once the counts and lists are painted, the dashboard
// asks its kernel for the charts module (static/charts.js, ~0.9 MB) and imports it from a blob URL, the way
// anywidget loads the dashboard itself; each chart is drawn once it has arrived.
import { useModel } from "@anywidget/react";
import type { AnyModel } from "@anywidget/types";
import { useEffect, useRef } from "react";
import type { EmbedOptions, Result, VisualizationSpec } from "vega-embed";

type Embed = (element: HTMLElement, spec: VisualizationSpec, options: EmbedOptions) => Promise<Result>;

let charts: Promise<Embed> | undefined;

/** The charts module, asked of the kernel once per page (every chart of every dashboard shares it). */
function loadCharts(model: AnyModel): Promise<Embed> {
  charts ??= new Promise<Embed>((resolve, reject) => {
    const answer = (message: { type?: string; code?: string }) => {
      if (message?.type !== "charts" || typeof message.code !== "string") return;
      model.off("msg:custom", answer);
      const url = URL.createObjectURL(new Blob([message.code], { type: "text/javascript" }));
      import(/* @vite-ignore */ url)
        .then((module: { default: Embed }) => resolve(module.default), reject)
        .finally(() => URL.revokeObjectURL(url));
    };
    model.on("msg:custom", answer);
    model.send({ type: "charts" });
  });
  return charts;
}

export function Chart(props: { spec: VisualizationSpec; label: string; className: string }) {
  const model = useModel();
  const target = useRef<HTMLDivElement>(null);
  const { spec } = props;
  useEffect(() => {
    const element = target.current;
    if (!element) return;
    let finalize: (() => void) | undefined;
    let live = true;
    loadCharts(model)
      .then((embed) => (live ? embed(element, spec, { actions: false, renderer: "svg" }) : undefined))
      .then(
        (result) => {
          if (!result) return;
          if (live) finalize = () => result.finalize();
          else result.finalize();
        },
        (error: unknown) => {
          element.textContent = `The chart could not be drawn: ${String(error)}`;
        },
      );
    return () => {
      live = false;
      finalize?.();
    };
  }, [spec, model]);
  return <div ref={target} className={props.className} role="figure" aria-label={props.label} />;
}
