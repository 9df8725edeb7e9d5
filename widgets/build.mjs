// Bundles each widget's front end into one ES module (and its CSS) under orchestrator_widgets/static/.
// anywidget loads a widget's module from a blob URL, so each bundle is self-contained: no chunks, no CDN.
// A new widget is one more line in ENTRIES (src/<name>/index.tsx -> static/<name>.js and <name>.css).
import * as esbuild from "esbuild";

// charts: the dashboard's Vega, loaded after the dashboard's first paint (src/dashboard/Chart.tsx)
const ENTRIES = ["builder", "execution", "dashboard", "admin", "charts"];
const dev = process.argv.includes("--dev");

await esbuild.build({
  entryPoints: Object.fromEntries(ENTRIES.map((name) => [name, `src/${name}/index.tsx`])),
  outdir: "orchestrator_widgets/static",
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: !dev,
  sourcemap: dev ? "inline" : false,
  jsx: "automatic",
  define: { "process.env.NODE_ENV": JSON.stringify(dev ? "development" : "production") },
  legalComments: "eof",
  logLevel: "info",
});
