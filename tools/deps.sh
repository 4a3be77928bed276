#!/bin/sh
# Installs what building needs on Debian (and, with --test, what the test
# suite needs too), with sudo when not root. Does nothing when all is there.
set -eu
need=""
for pkg in gcc make libc6-dev libjansson-dev libmicrohttpd-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
if [ "${1:-}" = "--test" ]; then
    # node/npm/git may come from elsewhere than Debian (e.g. nodesource): check the commands
    command -v git >/dev/null 2>&1 || need="$need git"
    command -v npm >/dev/null 2>&1 || need="$need npm"
    # tmux drives the interactive `gemma4 chat` test
    command -v tmux >/dev/null 2>&1 || need="$need tmux"
fi
if [ -n "$need" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq $need
fi
