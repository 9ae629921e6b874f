#!/usr/bin/env bash
# System packages for the WebGPU tests on a machine with no GPU (Debian bookworm):
#  * Mesa's lavapipe Vulkan driver from bookworm-backports (25.x; the 22.x in
#    bookworm main lacks a feature Dawn requires), so the npm `webgpu` package
#    (Dawn) finds a Vulkan adapter;
#  * Debian's chromium for the browser test (driven by playwright-core).
# The backports source reuses the mirror and keyring of the system's own Debian
# source. Idempotent; needs root (or sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

have_lavapipe() { ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; }
have_chromium() { command -v chromium >/dev/null 2>&1; }

if have_lavapipe && have_chromium; then
  echo "setup-system: lavapipe and chromium already installed"
  exit 0
fi

src=/etc/apt/sources.list.d/debian.sources
if [ ! -f "$src" ]; then
  echo "setup-system: $src not found; this script expects Debian bookworm's deb822 sources" >&2
  exit 1
fi
uris=$(awk '/^URIs:/ {print $2; exit}' "$src")
keyring=$(awk '/^Signed-By:/ {print $2; exit}' "$src")
backports=/etc/apt/sources.list.d/bookworm-backports.sources
if [ ! -f "$backports" ]; then
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uris" "$keyring" | $SUDO tee "$backports" >/dev/null
fi
$SUDO apt-get update -qq
export DEBIAN_FRONTEND=noninteractive
have_lavapipe || $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers
have_chromium || $SUDO apt-get install -y -qq --no-install-recommends chromium
have_lavapipe || { echo "setup-system: lavapipe did not install" >&2; exit 1; }
echo "setup-system: done"
