#!/usr/bin/env bash
# Installs the Node side of the browser tests (playwright-core, pinned in
# tests/browser/package-lock.json) into a cache directory, once per machine:
#
#   tools/browser-env.sh     # into $CELLC_BROWSER_ENV, default ~/.cache/cellc/browser; prints the
#                            # absolute path of the playwright-core package directory in it
#
# An install already made from the same lock is kept (a copy of the lock inside it says which).
# No browser is downloaded (`npx playwright install` cannot work here): the tests drive Debian's
# chromium, at $CELLC_CHROMIUM or /usr/bin/chromium, which this script checks for.
#
# ES modules ignore NODE_PATH, so a test script in tests/browser/ loads playwright-core from the
# printed path, passed in the environment as PLAYWRIGHT_CORE:
#
#   import { createRequire } from 'node:module';
#   const { chromium } = createRequire(import.meta.url)(process.env.PLAYWRIGHT_CORE);
#
# (or `await import(`${process.env.PLAYWRIGHT_CORE}/index.mjs`)`), and launches Chromium with
#
#   chromium.launch({ executablePath: process.env.CELLC_CHROMIUM || '/usr/bin/chromium',
#                     args: ['--disable-gpu'] })
#
# playwright-core itself adds --headless, --no-sandbox (chromiumSandbox is false by default; as
# root, Chromium's sandbox fails to start), --disable-dev-shm-usage, --no-first-run and
# --disable-background-networking, --disable-component-update, --disable-sync (this machine's
# network is closed).
set -euo pipefail
dir="$(realpath -m "${CELLC_BROWSER_ENV:-$HOME/.cache/cellc/browser}")"
cd "$(dirname "$0")/.."
lock=tests/browser/package-lock.json
chromium="${CELLC_CHROMIUM:-/usr/bin/chromium}"

command -v node >/dev/null || { echo "browser-env: node is needed (Node.js >= 20)" >&2; exit 1; }
command -v npm >/dev/null || { echo "browser-env: npm is needed (it comes with Node.js)" >&2; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || { echo "browser-env: playwright-core needs Node.js >= 20, found $(node --version)" >&2; exit 1; }
[ -x "$chromium" ] || { echo "browser-env: no chromium at $chromium (Debian: apt-get install chromium, or set CELLC_CHROMIUM)" >&2; exit 1; }

if [ -f "$dir/node_modules/playwright-core/package.json" ] && cmp -s "$lock" "$dir/cellc-package-lock.json"; then
    echo "$dir/node_modules/playwright-core"
    exit 0
fi
echo "browser-env: installing $lock into $dir" >&2
mkdir -p "$dir"
rm -rf "$dir/node_modules" "$dir/cellc-package-lock.json"
cp tests/browser/package.json "$lock" "$dir/"
(cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2)
cp "$lock" "$dir/cellc-package-lock.json"
echo "$dir/node_modules/playwright-core"
