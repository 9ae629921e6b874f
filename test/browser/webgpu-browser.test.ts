// A compiled WebGPU module imported by a page served from 127.0.0.1 and run
// on navigator.gpu in headless Debian Chromium (SwiftShader), driven by
// playwright-core; its numbers are checked against the reference.

import { createServer, type Server } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileSource } from "../../compiler/compile.ts";
import { emitModule } from "../../compiler/codegen/module.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { expectAllClose } from "../support/conformance.ts";

export const CHROMIUM_FLAGS = [
  "--no-sandbox", "--disable-gpu-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader",
];

const root = join(import.meta.dirname, "..", "..");
const MODEL = "lenet5.cnn";
const N = 2;

let server: Server;
let browser: Browser;
let url: string;

const source = readFileSync(join(root, "dsl-examples", MODEL), "utf8");
const graph = compileSource(source, MODEL).graphs[0]!;
const x = Float32Array.from({ length: N * 784 }, (_, i) => Math.sin(i * 0.37));

beforeAll(async () => {
  const module = emitModule(graph, { target: "webgpu", runtime: "inline", sourceFile: MODEL });
  const page = `<!doctype html><meta charset="utf-8"><title>cnnc webgpu</title>
<script type="module">
  import { createLeNet5 } from "./model.js";
  try {
    if (!navigator.gpu) throw new Error("navigator.gpu is missing");
    const m = await createLeNet5({ seed: 0 });
    const x = new Float32Array(await (await fetch("./x.bin")).arrayBuffer());
    const { probs } = await m.run({ x: { data: x, shape: [${N}, 1, 28, 28] } });
    window.result = { probs: Array.from(probs.data), shape: probs.shape };
    m.dispose();
  } catch (e) {
    window.result = { error: String(e && e.stack || e) };
  }
</script>`;
  server = createServer((req, res) => {
    const path = req.url ?? "/";
    if (path === "/") res.writeHead(200, { "content-type": "text/html" }).end(page);
    else if (path === "/model.js") res.writeHead(200, { "content-type": "text/javascript" }).end(module.js);
    else if (path === "/x.bin") res.writeHead(200, { "content-type": "application/octet-stream" }).end(Buffer.from(x.buffer));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/`;
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_FLAGS, headless: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  server?.close();
});

describe("WebGPU in headless Chromium", () => {
  it(`runs the compiled ${MODEL} on navigator.gpu and matches the reference`, async () => {
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on("console", (m) => logs.push(m.text()));
    await page.goto(url);
    await page.waitForFunction(() => (globalThis as unknown as { result?: unknown }).result !== undefined, undefined, { timeout: 120_000 });
    const result = (await page.evaluate(() => (globalThis as unknown as { result: unknown }).result)) as { probs?: number[]; shape?: number[]; error?: string };
    expect(result.error, logs.join("\n")).toBeUndefined();
    const want = interpret(graph, { x: new RefTensor("f32", [N, 1, 28, 28], Float64Array.from(x)) }, initialParams(graph, 0)).outputs.probs!;
    expectAllClose(new RefTensor("f32", result.shape!, Float64Array.from(result.probs!)), want, "probs");
    await page.close();
  }, 180_000);
});
