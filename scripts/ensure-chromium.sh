#!/usr/bin/env bash
# The browser tests (offline /docs, the customer portal) drive Debian's Chromium headless. Install it
# from Debian's packages when it is missing; if that is impossible, say so: those tests then skip with
# that reason.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }) || true
fi
command -v chromium >/dev/null 2>&1 && exit 0
echo "ensure-chromium: no chromium on PATH; browser tests will be skipped" >&2
exit 0
