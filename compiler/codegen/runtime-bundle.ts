// Turns the runtime's TypeScript modules into plain JS that a generated
// module can inline (self-contained output) or import from one shared file
// (`--runtime=import`). Each runtime module becomes a scope of its own:
//
//   const rt_init = (() => { ...its code...; return { initParam, fans }; })();
//
// so private helpers of different modules never collide, and a module only
// includes the runtime modules it needs (transitively).

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ts } from "ts-morph";

const runtimeDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "runtime");

interface RuntimeModule {
  readonly id: string;
  readonly deps: string[];
  readonly exports: string[];
  readonly body: string;
}

const cache = new Map<string, RuntimeModule>();

function load(id: string): RuntimeModule {
  const hit = cache.get(id);
  if (hit) return hit;
  const source = readFileSync(join(runtimeDir, `${id}.ts`), "utf8");
  const js = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, removeComments: false, verbatimModuleSyntax: false },
  }).outputText;
  const deps: string[] = [];
  const exports: string[] = [];
  const lines: string[] = [];
  for (const line of js.split("\n")) {
    const imp = /^import\s*\{([^}]*)\}\s*from\s*["']\.\/([\w-]+)\.(?:ts|js)["'];?\s*$/.exec(line);
    if (imp) {
      deps.push(imp[2]!);
      const names = imp[1]!.split(",").map((s) => s.trim()).filter((s) => s && !s.startsWith("type "));
      if (names.length) lines.push(`const { ${names.join(", ")} } = rt_${ident(imp[2]!)};`);
      continue;
    }
    if (/^import\s/.test(line)) throw new Error(`runtime/${id}.ts: unsupported import form: ${line}`);
    if (/^export\s*\{\s*\};?\s*$/.test(line)) continue;
    const exp = /^export\s+(?:async\s+)?(function\*?|class|const|let)\s+([A-Za-z_$][\w$]*)/.exec(line);
    if (exp) {
      exports.push(exp[2]!);
      lines.push(line.replace(/^export\s+/, ""));
      continue;
    }
    if (/^export\s/.test(line)) throw new Error(`runtime/${id}.ts: unsupported export form: ${line}`);
    lines.push(line);
  }
  const mod = { id, deps, exports, body: lines.join("\n").trim() };
  cache.set(id, mod);
  return mod;
}

function ident(id: string): string {
  return id.replace(/-/g, "_");
}

/** The runtime modules `roots` need, dependencies first. */
function closure(roots: readonly string[]): RuntimeModule[] {
  const out: RuntimeModule[] = [];
  const seen = new Set<string>();
  const visit = (id: string) => {
    if (seen.has(id)) return;
    seen.add(id);
    const m = load(id);
    m.deps.forEach(visit);
    out.push(m);
  };
  roots.forEach(visit);
  return out;
}

/**
 * JS text defining `rt_<module>` objects for `roots` and their dependencies,
 * then binding the names the generated code uses (`names`, taken from roots).
 */
export function runtimeBundle(roots: readonly string[]): string {
  const parts = closure(roots).map((m) => `const rt_${ident(m.id)} = (() => {\n${m.body}\nreturn { ${m.exports.join(", ")} };\n})();`);
  return parts.join("\n\n");
}

/** The exported names of a runtime module (to destructure after the bundle). */
export function runtimeExports(id: string): string[] {
  return load(id).exports;
}
