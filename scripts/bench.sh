#!/bin/sh
# The one benchmark command (issue 6): installs what is missing (deps.sh),
# builds an optimised tree in build/ when it is not there, then runs both
# halves one after the other (they must not share the two cores) and prints
# their markdown tables: figures 1-2 (bench/api/run.py) and 3-7
# (bench/sessions/run.py). Benchmarks print; they fail nothing, so this
# exits non-zero only when it could not build or a half could not run.
#
#   scripts/bench.sh                 all seven figures, about 10 minutes
#   scripts/bench.sh --quick         small sizes (figure 1-2 with one round)
#   scripts/bench.sh --api-only | --sessions-only
#   scripts/bench.sh --out FILE      also write the tables to FILE
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-2}

quick="" api=yes sessions=yes out=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=yes ;;
	--api-only) sessions="" ;;
	--sessions-only) api="" ;;
	--out)
		[ $# -ge 2 ] || { echo "bench.sh: --out needs a file" >&2; exit 2; }
		out=$2
		shift
		;;
	-h | --help)
		sed -n '2,12p' "$0"
		exit 0
		;;
	*)
		echo "bench.sh: unknown option $1" >&2
		exit 2
		;;
	esac
	shift
done

step() {
	printf '\n==> %s\n' "$*" >&2
}

step "dependencies"
"$ROOT/scripts/deps.sh" --node >&2
if [ ! -x "$ROOT/build/talkproxyd" ]; then
	step "build in build/"
	[ -x "$ROOT/configure" ] || "$ROOT/autogen.sh" >&2
	mkdir -p "$ROOT/build"
	(cd "$ROOT/build" && "$ROOT/configure") >&2
fi
# make is cheap when nothing changed and keeps a stale tree from being
# measured.
make -C "$ROOT/build" -j"$JOBS" >&2
TP_BUILDDIR="$ROOT/build"
export TP_BUILDDIR

tables=$(mktemp)
trap 'rm -f "$tables"' EXIT
status=0
if [ -n "$api" ]; then
	step "figures 1-2: bench/api/run.py"
	set --
	[ -z "$quick" ] || set -- --rounds 1
	/usr/bin/python3 "$ROOT/bench/api/run.py" "$@" >>"$tables" || status=1
	echo >>"$tables"
fi
if [ -n "$sessions" ]; then
	step "figures 3-7: bench/sessions/run.py"
	set --
	[ -z "$quick" ] || set -- --quick
	/usr/bin/python3 "$ROOT/bench/sessions/run.py" "$@" >>"$tables" ||
		status=1
fi
cat "$tables"
[ -z "$out" ] || cp "$tables" "$out"
[ "$status" -eq 0 ] || step "a benchmark half could not run (see above)"
exit "$status"
