// A Vega-Lite chart (vega-embed, bundled: renders with no network, as SVG, which screen readers reach).
// Vega is evaluated on first use and drawn when the page is idle: the counts and lists paint first.
import { useEffect, useRef } from "react";
import type { VisualizationSpec } from "vega-embed";

const idle = (callback: () => void): void => {
  if ("requestIdleCallback" in window) window.requestIdleCallback(callback, { timeout: 500 });
  else setTimeout(callback, 50);
};

export function Chart(props: { spec: VisualizationSpec; label: string; className: string }) {
  const target = useRef<HTMLDivElement>(null);
  const { spec } = props;
  useEffect(() => {
    const element = target.current;
    if (!element) return;
    let finalize: (() => void) | undefined;
    let live = true;
    idle(() => {
      if (!live) return;
      import("vega-embed")
        .then(({ default: embed }) => embed(element, spec, { actions: false, renderer: "svg" }))
        .then(
          (result) => {
            if (live) finalize = () => result.finalize();
            else result.finalize();
          },
          (error: unknown) => {
            element.textContent = `The chart could not be drawn: ${String(error)}`;
          },
        );
    });
    return () => {
      live = false;
      finalize?.();
    };
  }, [spec]);
  return <div ref={target} className={props.className} role="figure" aria-label={props.label} />;
}
