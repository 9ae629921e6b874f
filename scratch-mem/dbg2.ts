import { readFileSync } from "node:fs";
import { compileSource } from "../compiler/compile.ts";
import { graphStats, trainStats } from "../compiler/passes/stats.ts";
for (const f of ["lenet5", "resnet_block", "unet", "char_lstm", "inception"]) {
  const g = compileSource(readFileSync(`dsl-examples/${f}.cnn`, "utf8"), "l.cnn").graphs[0]!;
  const s = graphStats(g, { N: 64, L: 32, H: 32, W: 32 });
  const t = trainStats(g, { N: 64, L: 32, H: 32, W: 32 });
  console.log(f, s.peakBytes, s.naivePeakBytes, (s.peakBytes / s.naivePeakBytes).toFixed(3), t.trainPeakBytes, t.trainNaivePeakBytes, t.trainPeakBytes && (t.trainPeakBytes / t.trainNaivePeakBytes!).toFixed(3));
}
