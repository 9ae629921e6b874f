import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "dsl-examples/**/*.test.ts"],
    testTimeout: 60_000,
    pool: "forks",
    // Dawn (the webgpu package) wants a runtime dir; headless CI machines often have none.
    env: { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp" },
  },
});
