import { TestModel } from "./test/support/build.ts";
import { jsExecutor } from "./compiler/codegen/js/execute.ts";
function show(title: string, build: (m: TestModel) => void) {
  const m = new TestModel(); build(m);
  console.log("==== " + title); console.log(jsExecutor(m.graph).program.kernels.join("\n\n"));
}
show("dense", (m) => { const x = m.input("x", "f32", ["N", 400]); m.output("y", m.call("dense", [x, 120], { bias: false }, "f5")); });
show("dense NL", (m) => { const x = m.input("x", "f32", ["N", "L", 10]); m.output("y", m.call("dense", [x, 7], { bias: false }, "f5")); });
show("mm", (m) => { const a = m.input("a", "f32", [5, 6]); const b = m.input("b", "f32", [6, 7]); m.output("y", m.call("matmul", [a, b])); });
show("mm sym", (m) => { const a = m.input("a", "f32", ["N", 5, "K"]); const b = m.input("b", "f32", ["K", "M"]); m.output("y", m.call("matmul", [a, b])); });
show("bcast", (m) => { const a = m.input("a", "f32", [1, 5, 6]); const b = m.input("b", "f32", ["N", 6, 7]); m.output("y", m.call("matmul", [a, b])); });
show("ji,jk", (m) => { const a = m.input("a", "f32", [6, 5]); const b = m.input("b", "f32", [6, 7]); m.output("y", m.call("einsum", ["ji,jk->ik", a, b])); });
show("mv", (m) => { const a = m.input("a", "f32", [5, 6]); const b = m.input("b", "f32", [6]); m.output("y", m.call("matmul", [a, b])); });
show("3op", (m) => { const a = m.input("a", "f32", [2, 3]); const b = m.input("b", "f32", [3, 4]); const c = m.input("c", "f32", [4, 5]); m.output("y", m.call("einsum", ["ij,jk,kl->il", a, b, c])); });
show("trace", (m) => { const a = m.input("a", "f32", [3, 3]); m.output("y", m.call("einsum", ["ii->", a])); });
show("outer", (m) => { const a = m.input("a", "f32", [3]); const b = m.input("b", "f32", ["N"]); m.output("y", m.call("einsum", ["i,j->ij", a, b])); });
show("dot", (m) => { const a = m.input("a", "f32", [3]); const b = m.input("b", "f32", [3]); m.output("y", m.call("einsum", ["i,i->", a, b])); });
