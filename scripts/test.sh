#!/bin/sh
# The one test command: installs what is missing (deps.sh), builds with
# -Werror in build/ and runs make check (C unit tests and the integration
# tests against real Redis, Prosody and lighttpd).
#
#   scripts/test.sh               plain build and check
#   scripts/test.sh --sanitizers  then also an ASan+UBSan build in build-san/
#                                 and its make check, and a libFuzzer build
#                                 in build-fuzz/ running each harness for
#                                 FUZZ_CHECK_TIME s (CI mode, the default
#                                 when $CI is set, as .ci/run does)
# Exits non-zero when any step fails, after printing the failing tests' logs.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-2}

sanitizers=""
case "${CI:-}" in
"" | false | 0) ;;
*) sanitizers=yes ;;
esac
for arg in "$@"; do
	case "$arg" in
	--sanitizers | --ci) sanitizers=yes ;;
	--plain) sanitizers="" ;;
	-h | --help)
		sed -n '2,10p' "$0"
		exit 0
		;;
	*)
		echo "test.sh: unknown option $arg" >&2
		exit 2
		;;
	esac
done

step() {
	printf '\n==> %s\n' "$*"
}

# build DIR CONFIGURE-ARGS...: configure, make and make check in DIR.
# (Called as "build_and_check ... || status=1", where set -e does not
# apply, so every step says what happens when it fails.)
build_and_check() {
	dir=$1
	shift
	step "configure in $dir: $*"
	mkdir -p "$ROOT/$dir" || return 1
	(cd "$ROOT/$dir" && "$ROOT/configure" "$@") || return 1
	step "make in $dir"
	make -C "$ROOT/$dir" -j"$JOBS" || return 1
	step "make check in $dir"
	# shellcheck disable=SC2086 # check_args: make variables, one per word
	if ! make -C "$ROOT/$dir" -j"$JOBS" check $check_args; then
		failed_logs="$failed_logs $ROOT/$dir/test-suite.log"
		return 1
	fi
}

failed_logs=""
check_args=""

step "dependencies (Debian packages, node and tests/js's npm packages)"
"$ROOT/scripts/deps.sh" --node
step "autogen"
"$ROOT/autogen.sh"

status=0
build_and_check build --enable-werror || status=1
if [ -n "$sanitizers" ]; then
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	export ASAN_OPTIONS UBSAN_OPTIONS
	# Sanitized programs start slower; give the harness room.
	TP_START_TIMEOUT=${TP_START_TIMEOUT:-60}
	export TP_START_TIMEOUT
	build_and_check build-san --enable-werror --enable-sanitizers || status=1
	# The libFuzzer harnesses, each for a short fixed time on its corpus
	# (the integration suite has run twice already).
	FUZZ_CHECK_TIME=${FUZZ_CHECK_TIME:-15}
	export FUZZ_CHECK_TIME
	check_args="TESTS=fuzz/check.sh"
	build_and_check build-fuzz --enable-werror --enable-fuzzing CC=clang ||
		status=1
	check_args=""
fi

# The failures' logs last, where whoever reads the output looks first.
for log in $failed_logs; do
	step "make check failed; $log follows"
	if [ -f "$log" ]; then
		cat "$log"
	fi
done
if [ "$status" -eq 0 ]; then
	step "all tests passed"
else
	step "FAILED"
fi
# One closing line over every build's results, in the plain form any CI
# reads: automake's per-build "# PASS:" / "# FAIL:" / "# ERROR:" summed.
summary() {
	sed -n "s/^# $1: *//p" "$ROOT"/build*/test-suite.log 2>/dev/null |
		awk '{ n += $1 } END { print n + 0 }'
}
passed=$(summary PASS)
failed=$(($(summary FAIL) + $(summary ERROR) + $(summary XPASS)))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	failed=1 # a build or configure step failed before any test ran
fi
echo "$passed passed, $failed failed"
exit "$status"
