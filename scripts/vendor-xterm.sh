#!/usr/bin/env bash
# Vendor xterm.js into oven's static files: run on a dev machine with npm, commit the result.
# Production installs only Python, so nothing here is fetched at build or run time.
# Usage: scripts/vendor-xterm.sh [XTERM_VERSION] [FIT_VERSION]   (defaults: pinned below)
set -euo pipefail

XTERM_VERSION="${1:-6.0.0}"
FIT_VERSION="${2:-0.11.0}"

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/oven/http/static/pty/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "@xterm/xterm@$XTERM_VERSION" "@xterm/addon-fit@$FIT_VERSION" >/dev/null
mkdir xterm fit
tar -xzf xterm-xterm-"$XTERM_VERSION".tgz -C xterm --strip-components=1
tar -xzf xterm-addon-fit-"$FIT_VERSION".tgz -C fit --strip-components=1

# The UMD builds: loaded by plain <script> tags, so the page needs no bundler.
test -f xterm/lib/xterm.js && test -f xterm/css/xterm.css && test -f fit/lib/addon-fit.js

rm -rf "$dest"
mkdir -p "$dest"
cp xterm/lib/xterm.js xterm/css/xterm.css fit/lib/addon-fit.js "$dest/"
cp xterm/LICENSE "$dest/LICENSE.xterm"
# The source maps are not vendored: drop their references so devtools does not ask for them.
sed -i '/^\/\/# sourceMappingURL=/d' "$dest/xterm.js" "$dest/addon-fit.js"
{
  echo "@xterm/xterm $(node -p 'require("./xterm/package.json").version')"
  echo "@xterm/addon-fit $(node -p 'require("./fit/package.json").version')"
} >"$dest/VERSIONS"
(cd "$dest" && sha256sum xterm.js xterm.css addon-fit.js >SHA256SUMS)
echo "vendored into $dest:"
cat "$dest/VERSIONS"
