// The node types of the agent's framework: drag one onto the canvas, or press it (Enter) to add it
// at the canvas's centre.
import { DRAG_TYPE } from "./Canvas";

export interface PaletteItem {
  type: string;
  label: string;
  description: string;
}

export function Palette(props: { items: PaletteItem[]; framework: string; onAdd: (type: string) => void }) {
  return (
    <nav className="ow-palette" aria-label={`Node types for ${props.framework}`}>
      <h3 id="ow-palette-title">Nodes</h3>
      <ul aria-labelledby="ow-palette-title">
        {props.items.map((item) => (
          <li key={item.type}>
            <button
              type="button"
              className={`ow-palette-item ow-type-${item.type}`}
              draggable
              data-node-type={item.type}
              title={item.description || undefined}
              aria-label={`Add a ${item.label} node`}
              onDragStart={(event) => {
                event.dataTransfer.setData(DRAG_TYPE, item.type);
                event.dataTransfer.effectAllowed = "copy";
              }}
              onClick={() => props.onAdd(item.type)}
            >
              {item.label}
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}
