#!/usr/bin/env bash
# Installs everything cnnc needs on a fresh Debian machine with Node 20: the
# system packages of the WebGPU tests (Mesa lavapipe so Dawn finds a Vulkan
# adapter without a GPU, and chromium for the browser test; see
# setup-system.sh) and the npm dependencies exactly as locked. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1; then
  echo "setup: Node.js 20 or newer is required" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is required, found $(node --version)" >&2
  exit 1
fi

bash scripts/setup-system.sh
npm ci --no-audit --no-fund
echo "setup: done"
