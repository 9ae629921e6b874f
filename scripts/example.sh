#!/usr/bin/env bash
# The main job in one command: type-check LeNet-5, print its IR statistics,
# compile it to a self-contained ES module (out/lenet5.js + .d.ts), make an
# input batch, run the model on the JS target through the real CLI, and show
# the predicted class probabilities.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
cnnc() { node bin/cnnc.js "$@"; }
cnnc check dsl-examples/lenet5.cnn
cnnc ir dsl-examples/lenet5.cnn --stats --bind N=4 | tail -n 14
npx tsx scripts/make-example-inputs.ts out/lenet5-inputs.safetensors
cnnc dsl-examples/lenet5.cnn --target=js -o out
cnnc run dsl-examples/lenet5.cnn --target=js --inputs out/lenet5-inputs.safetensors --out out/lenet5-outputs.safetensors
npx tsx scripts/show-tensors.ts out/lenet5-outputs.safetensors
