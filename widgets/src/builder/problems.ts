// Problems (from the browser's schema check and from the server) grouped by what they point at.
import { targetOf } from "../shared/schema";
import type { Problem, Spec } from "../shared/types";

export interface Grouped {
  byNode: Record<string, string[]>;
  byNodeField: Record<string, Record<string, string[]>>;
  byEdge: Record<number, string[]>;
  general: Problem[];
}

export function groupProblems(problems: Problem[], spec: Spec): Grouped {
  const grouped: Grouped = { byNode: {}, byNodeField: {}, byEdge: {}, general: [] };
  for (const problem of problems) {
    const target = targetOf(problem.field, spec);
    if (target.node !== undefined) {
      (grouped.byNode[target.node] ??= []).push(problem.message);
      const rest = problem.field.replace(/^spec\./, "").split(".").slice(2).join(".");
      const fields = (grouped.byNodeField[target.node] ??= {});
      (fields[rest] ??= []).push(problem.message);
    } else if (target.edge !== undefined) {
      (grouped.byEdge[target.edge] ??= []).push(problem.message);
    } else {
      grouped.general.push(problem);
    }
  }
  return grouped;
}

/** Server problems repeat what the browser found: keep one of each (field, message). */
export function mergeProblems(local: Problem[], server: Problem[]): Problem[] {
  const seen = new Set(local.map((p) => `${p.field}|${p.message}`));
  const fromServer = server
    .map((p) => ({ ...p, field: p.field.replace(/^spec\./, "") }))
    .filter((p) => !seen.has(`${p.field}|${p.message}`));
  return [...local, ...fromServer];
}
