// Where a builder call was written: the first stack frame outside this
// folder, turned into a Span, so a shape error raised through the builder
// points at the user's TypeScript line the way a DSL error points at the .cnn
// line. Works with V8 stacks (Node, Chromium; source-mapped under tsx and
// vitest) and with the `fn@url:line:col` form of Firefox and Safari.

import type { Span } from "../diagnostics.ts";

export interface Frame {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

/** A file URL becomes a path; other locations (http URLs, paths) are kept. */
export function normalizeFile(location: string): string {
  if (!location.startsWith("file://")) return location;
  try {
    const path = decodeURIComponent(new URL(location).pathname);
    // file:///C:/x → C:/x on Windows.
    return /^\/[A-Za-z]:\//.test(path) ? path.slice(1) : path;
  } catch {
    return location;
  }
}

/** One stack line → its location, or undefined for native/internal frames. */
export function parseFrame(text: string): Frame | undefined {
  let loc = text.trim();
  if (loc.endsWith(")")) loc = loc.slice(loc.lastIndexOf("(") + 1, -1);
  else if (loc.startsWith("at ")) loc = loc.slice(3).replace(/^async /, "");
  else if (loc.includes("@")) loc = loc.slice(loc.lastIndexOf("@") + 1);
  const m = /^(.*):(\d+):(\d+)$/.exec(loc);
  if (!m || m[1]!.startsWith("node:") || m[1] === "<anonymous>" || m[1] === "native") return undefined;
  return { file: normalizeFile(m[1]!), line: Number(m[2]), col: Number(m[3]) };
}

/** The stack of an error, as frames (unparseable lines dropped). */
export function framesOf(stack: string | undefined): Frame[] {
  return (stack ?? "").split("\n").map(parseFrame).filter((f): f is Frame => f !== undefined);
}

const BUILDER_DIR = (() => {
  const here = normalizeFile(import.meta.url);
  return here.slice(0, Math.max(here.lastIndexOf("/"), here.lastIndexOf("\\")) + 1);
})();

function isBuilderFrame(f: Frame): boolean {
  return BUILDER_DIR !== "" && f.file.startsWith(BUILDER_DIR);
}

type ErrorWithLimit = ErrorConstructor & { stackTraceLimit?: number };

/**
 * The span of the user's call that is running now; `width` is the length of
 * the callee's name, so a rendered diagnostic underlines it.
 */
export function callerSpan(width = 1): Span | undefined {
  const E = Error as ErrorWithLimit;
  const saved = E.stackTraceLimit;
  // Deep user code (test runners, frameworks) must not push the caller out of the trace.
  if (typeof saved === "number") E.stackTraceLimit = Math.max(saved, 64);
  let stack: string | undefined;
  try {
    stack = new Error().stack;
  } finally {
    if (typeof saved === "number") E.stackTraceLimit = saved;
  }
  const frame = framesOf(stack).find((f) => !isBuilderFrame(f));
  if (!frame) return undefined;
  return { file: frame.file, line: frame.line, col: frame.col, endLine: frame.line, endCol: frame.col + Math.max(1, width) - 1 };
}
