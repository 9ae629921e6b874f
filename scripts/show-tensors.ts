// Prints the tensors of a safetensors file: name, dtype, shape and values (rows for 2-D).
import { readFileSync } from "node:fs";
import { decodeSafetensors } from "../runtime/safetensors.ts";

const file = process.argv[2];
if (!file) {
  console.error("usage: show-tensors FILE.safetensors");
  process.exit(2);
}
for (const [name, t] of Object.entries(decodeSafetensors(new Uint8Array(readFileSync(file))))) {
  console.log(`${name}: ${t.dtype}[${t.shape.join(", ")}]`);
  const values = Array.from(t.data as ArrayLike<number>, (v) => (Number.isInteger(v) ? String(v) : v.toFixed(4)));
  const row = t.shape.length === 2 ? t.shape[1]! : values.length;
  for (let i = 0; i < values.length && i < 20 * row; i += row) console.log("  " + values.slice(i, i + row).join(" "));
}
