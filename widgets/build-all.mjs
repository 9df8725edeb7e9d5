// What the install's build hook runs (`npm run build:all`, after `npm install` here): the widgets' bundles
// (build.mjs), then the prebuilt JupyterLab extension in ../labextension (its own `npm install`, tsc and
// jupyter-builder). Each step runs only when its inputs are newer than what it built last, so building the
// wheel again (the hub tests do, and every `pip install -e .`) costs seconds when nothing changed.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const LAB = "../labextension";

/** The newest modification time under the paths (0 when none exists), node_modules left out. */
function newest(...paths) {
  let found = 0;
  for (const path of paths) {
    if (!existsSync(path)) continue;
    const stat = statSync(path);
    if (!stat.isDirectory()) {
      found = Math.max(found, stat.mtimeMs);
      continue;
    }
    for (const entry of readdirSync(path)) {
      if (entry !== "node_modules") found = Math.max(found, newest(join(path, entry)));
    }
  }
  return found;
}

function stale(outputs, inputs) {
  const built = newest(...outputs);
  return built === 0 || newest(...inputs) > built;
}

function run(cwd, ...args) {
  console.log(`[build:all] ${cwd}: npm ${args.join(" ")}`);
  execFileSync("npm", args, { cwd, stdio: "inherit" });
}

if (stale(["orchestrator_widgets/static"], ["src", "build.mjs", "package-lock.json"])) run(".", "run", "build");
else console.log("[build:all] the widgets' bundles are up to date");

if (stale([join(LAB, "node_modules/.package-lock.json")], [join(LAB, "package.json"), join(LAB, "package-lock.json")])) {
  run(LAB, "install", "--no-audit", "--no-fund");
}
const labInputs = ["src", "style", "schema", "package.json", "tsconfig.json"].map((name) => join(LAB, name));
if (stale([join(LAB, "prebuilt")], labInputs)) run(LAB, "run", "build");
else console.log("[build:all] the JupyterLab extension is up to date");
