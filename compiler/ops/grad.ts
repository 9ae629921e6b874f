// grad(y, x): the gradient of scalar y with respect to an input or parameter x.
// Lowering records a `grad` node; the autodiff pass replaces it by the
// backward graph (in IR) before anything executes it.

import { typeToString } from "../ir/types.ts";
import { defineOp, type BuiltinDef, type OpDef } from "./op.ts";

const gradOp = defineOp({
  name: "grad",
  infer: (inputs, _a, ctx) => {
    const [y, x] = inputs as [typeof inputs[0], typeof inputs[0]];
    if (y.shape.length !== 0) ctx.fail("E215", `grad needs a scalar to differentiate, found ${typeToString(y)}`, { notes: [ctx.describeInput(0)], hint: "reduce it first, e.g. sum(y) or a loss" });
    if (y.dtype !== "f32" || x.dtype !== "f32") ctx.fail("E309", `grad is defined for f32 values only, found ${y.dtype} with respect to ${x.dtype}`, { notes: [ctx.describeInput(1)] });
    return [x];
  },
  evaluate: (_inputs, _a, ctx) => ctx.fail("grad() is evaluated by the autodiff pass, which is not part of this build yet"),
});

export const ops: OpDef[] = [gradOp];

export const builtins: BuiltinDef[] = [
  {
    names: ["grad"],
    signature: () => ["y", "x"],
    lower(args, ctx) {
      const y = args.tensor("y");
      const x = args.tensor("x");
      if (x.node.op !== "input" && x.node.op !== "param") {
        ctx.fail("E309", `grad is taken with respect to an input or a parameter, found a computed value`, { arg: "x", notes: [ctx.describe(x)] });
      }
      return ctx.emit1("grad", [y, x]);
    },
  },
];
