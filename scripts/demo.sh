#!/bin/sh
# Brings the whole stack up by hand: Redis, Prosody (users alice, bob,
# carol, dave; password <user>-pw), talkproxyd and lighttpd with the shipped
# snippet on http://127.0.0.1:8480 (when free), prints curl examples, and
# runs bob as an XMPP client that prints what he receives. Ctrl-C stops all.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)

"$ROOT/scripts/deps.sh"
if [ ! -x "$ROOT/configure" ]; then
	"$ROOT/autogen.sh"
fi
mkdir -p "$ROOT/build"
if [ ! -f "$ROOT/build/Makefile" ]; then
	(cd "$ROOT/build" && "$ROOT/configure")
fi
make -C "$ROOT/build" -j"${JOBS:-2}"

cd "$ROOT/tests"
TP_BUILDDIR="$ROOT/build" TP_SRCDIR="$ROOT" exec /usr/bin/python3 -m harness.stack --demo
