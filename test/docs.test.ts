// Documentation that is derived from code stays in step with it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { errorsDoc } from "../scripts/gen-errors-doc.ts";

describe("docs", () => {
  it("docs/errors.md lists exactly the diagnostic catalogue (regenerate with npx tsx scripts/gen-errors-doc.ts)", () => {
    expect(readFileSync(join(import.meta.dirname, "..", "docs", "errors.md"), "utf8")).toBe(errorsDoc());
  });
});
