// The front end's entry point: source text → parsed → lowered → verified IR
// graphs, or diagnostics. Never throws for anything a user can write.

import { parseProgram } from "./dsl/parse.ts";
import { CompileError, renderDiagnostics, type Diagnostic } from "./diagnostics.ts";
import type { Graph } from "./ir/graph.ts";
import { verifyGraph } from "./ir/verifier.ts";
import { lowerProgram } from "./lower/lower.ts";
import { expandGradCalls } from "./autodiff/grad-calls.ts";
import { buildTrainingGraph } from "./autodiff/training.ts";

export interface CompileResult {
  readonly file: string;
  readonly source: string;
  /** One graph per model (present even when some statements failed; use only when diagnostics is empty). */
  readonly graphs: Graph[];
  readonly diagnostics: Diagnostic[];
}

export function compileSource(source: string, file: string): CompileResult {
  const parsed = parseProgram(source, file);
  if (parsed.diagnostics.length) return { file, source, graphs: [], diagnostics: parsed.diagnostics };
  let lowered;
  try {
    lowered = lowerProgram(parsed.program);
  } catch (e) {
    if (e instanceof CompileError) return { file, source, graphs: [], diagnostics: [...e.diagnostics] };
    throw e;
  }
  if (lowered.diagnostics.length === 0) {
    try {
      for (const g of lowered.graphs) expandGradCalls(g);
      // A model with a loss must be trainable: its backward graph is built (and discarded) now, so
      // a loss that cannot be differentiated is a located compile error, not a failure at emit time.
      for (const g of lowered.graphs) buildTrainingGraph(g);
    } catch (e) {
      if (e instanceof CompileError) return { file, source, graphs: [], diagnostics: [...e.diagnostics] };
      throw e;
    }
    for (const g of lowered.graphs) {
      const problems = verifyGraph(g);
      // The verifier guards the compiler, not the user: a failure here is a compiler bug.
      if (problems.length) throw new Error(`internal: IR of model ${g.name} fails verification:\n  ${problems.join("\n  ")}`);
    }
  }
  return { file, source, graphs: lowered.graphs, diagnostics: lowered.diagnostics };
}

/** Render a result's diagnostics as DSL.md §7 text. */
export function formatDiagnostics(r: CompileResult): string {
  return renderDiagnostics(r.diagnostics, new Map([[r.file, r.source]]));
}
