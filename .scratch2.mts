import { TestModel } from "./test/support/build.ts";
import { jsExecutor } from "./compiler/codegen/js/execute.ts";
const m = new TestModel(); const a = m.input("a", "f32", [1]); const b = m.input("b", "f32", [1]); m.output("y", m.call("einsum", ["i,i->", a, b]));
console.log(jsExecutor(m.graph).source);
