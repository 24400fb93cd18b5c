#!/usr/bin/env bash
# Installs Debian's Chromium (for the browser tests of the merchant pages) and a CJK font, so pages in Chinese
# render as text rather than boxes in screenshots. Idempotent; needs root (or sudo) the first time.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi 'noto.*cjk'; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-chromium: need root or sudo to apt-get install chromium" >&2; exit 1; }
  sudo=sudo
fi
# Through env: sudo resets the environment, so an exported DEBIAN_FRONTEND would not reach apt-get.
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
echo "install-chromium: $(chromium --version)"
