/** The extension's icons (Lab's LabIcon: they follow the theme's colours). */
import { LabIcon } from "@jupyterlab/ui-components";

const svg = (body: string) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">` +
  `<g class="jp-icon3" fill="#616161">${body}</g></svg>`;

export const builderIcon = new LabIcon({
  name: "orchestrator:builder",
  svgstr: svg(
    `<rect x="2" y="3" width="7" height="5" rx="1"/><rect x="15" y="9.5" width="7" height="5" rx="1"/>` +
      `<rect x="2" y="16" width="7" height="5" rx="1"/><path d="M9 5.5h3v12H9v-1.5h1.5V7H9z"/><path d="M12 11h3v2h-3z"/>`,
  ),
});

export const dashboardIcon = new LabIcon({
  name: "orchestrator:dashboard",
  svgstr: svg(`<path d="M3 3h2v16h16v2H3z"/><path d="M7 17V11h3v6zm5 0V7h3v10zm5 0v-4h3v4z"/>`),
});

export const adminIcon = new LabIcon({
  name: "orchestrator:admin",
  svgstr: svg(
    `<circle cx="9" cy="8" r="4"/><path d="M1 20c0-4 3.6-6 8-6s8 2 8 6z"/>` +
      `<path d="M19 7l4 1.5v3c0 2.5-1.7 4.4-4 5-2.3-.6-4-2.5-4-5v-3z"/>`,
  ),
});

export const deployIcon = new LabIcon({
  name: "orchestrator:deploy",
  svgstr: svg(`<path d="M12 2l5 5h-3v7h-4V7H7z"/><path d="M4 15h2v4h12v-4h2v6H4z"/>`),
});

export const scheduleIcon = new LabIcon({
  name: "orchestrator:schedule",
  svgstr: svg(
    `<path d="M12 2a10 10 0 100 20 10 10 0 000-20zm0 2a8 8 0 110 16 8 8 0 010-16z"/><path d="M11 6h2v5.6l4 2.3-1 1.7-5-2.9z"/>`,
  ),
});
