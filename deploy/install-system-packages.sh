#!/usr/bin/env bash
# Debian packages the project needs beyond Python: Chromium for the browser tests,
# Pango and fonts for WeasyPrint's invoice PDFs, poppler for reading PDFs back, and Debian's
# docker-compose to check deploy/compose.yaml (`config`) where the Docker client has no compose plugin.
# Idempotent; run as root (or with sudo) on a fresh Debian/Ubuntu machine.
set -euo pipefail
packages=(chromium docker-compose fonts-dejavu-core libharfbuzz-subset0 libpango-1.0-0 libpangoft2-1.0-0 poppler-utils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
