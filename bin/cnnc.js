#!/usr/bin/env node
// The cnnc command: runs the TypeScript sources through tsx's loader.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../compiler/cli.ts");
process.exitCode = await main(process.argv.slice(2));
