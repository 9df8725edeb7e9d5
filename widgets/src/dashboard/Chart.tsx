// A Vega-Lite chart (vega-embed, bundled: renders with no network, as SVG, which screen readers reach).
import { useEffect, useRef } from "react";
import embed, { type VisualizationSpec } from "vega-embed";

export function Chart(props: { spec: VisualizationSpec; label: string; className: string }) {
  const target = useRef<HTMLDivElement>(null);
  const { spec } = props;
  useEffect(() => {
    const element = target.current;
    if (!element) return;
    let finalize: (() => void) | undefined;
    let live = true;
    embed(element, spec, { actions: false, renderer: "svg" }).then(
      (result) => {
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
  }, [spec]);
  return <div ref={target} className={props.className} role="figure" aria-label={props.label} />;
}
