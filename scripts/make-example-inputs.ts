// Writes a small LeNet-5 input batch: four 28×28 images of simple strokes
// (a vertical bar, a horizontal bar, a ring, a diagonal) and their labels.
import { writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { encodeSafetensors } from "../runtime/safetensors.ts";

const out = process.argv[2] ?? "out/lenet5-inputs.safetensors";
const N = 4;
const x = new Float32Array(N * 28 * 28);
const draw = (n: number, f: (r: number, c: number) => boolean) => {
  for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) if (f(r, c)) x[n * 784 + r * 28 + c] = 1;
};
draw(0, (r, c) => c >= 12 && c <= 15 && r >= 4 && r <= 23);
draw(1, (r, c) => r >= 12 && r <= 15 && c >= 4 && c <= 23);
draw(2, (r, c) => Math.abs(Math.hypot(r - 13.5, c - 13.5) - 8) < 1.5);
draw(3, (r, c) => Math.abs(r - c) <= 1 && r >= 3 && r <= 24);
const labels = Int32Array.from([1, 7, 0, 1]);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, encodeSafetensors({ x: { dtype: "F32", shape: [N, 1, 28, 28], data: x }, labels: { dtype: "I32", shape: [N], data: labels } }));
console.log(`wrote ${out}: x f32[${N}, 1, 28, 28], labels i32[${N}]`);
