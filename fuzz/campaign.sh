#!/bin/sh
# campaign.sh: a long fuzzing run, before a release or after a change to a
# parser. Runs in a --enable-fuzzing build directory (make fuzz-long does
# this): each harness in turn for the given seconds with one worker, its
# corpus kept in fuzz/campaign/<name>/corpus across campaigns (seeded from
# the tree's), crash inputs in fuzz/campaign/<name>/. Ends with a table:
# runs, coverage, corpus size and crashes per harness; exit 1 on a crash.
# libFuzzer stops a harness at its first crash; -k keeps going (fork mode,
# one job at a time) and collects every crash it finds.
#
#   fuzz/campaign.sh [-k] [-t SECONDS_EACH] [request envelope record pushaddr stanza]
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(pwd)
time=600
keep=""
while getopts kt: opt; do
	case $opt in
	k) keep="-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1" ;;
	t) time=$OPTARG ;;
	*) echo "usage: $0 [-k] [-t seconds] [harness...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- request envelope record pushaddr stanza

failed=0
summary=$build/fuzz/campaign/summary.txt
mkdir -p "$build/fuzz/campaign"
# See check.sh on LSAN_OPTIONS.
LSAN_OPTIONS=
export LSAN_OPTIONS
printf '%-9s %7s %11s %8s %6s %6s %7s %s\n' harness seconds runs runs/s cov ft corpus crashes >"$summary"
for name in "$@"; do
	bin=$build/fuzz/fuzz_$name
	dir=$build/fuzz/campaign/$name
	if [ ! -x "$bin" ]; then
		echo "campaign: $bin not built (make check_PROGRAMS in a --enable-fuzzing build)" >&2
		exit 2
	fi
	mkdir -p "$dir/corpus"
	cp -n "$src/fuzz/corpus/$name/"* "$dir/corpus/" 2>/dev/null
	echo "campaign: fuzz_$name for $time s, log in $dir/log" >&2
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$time" -timeout=5 -rss_limit_mb=2048 $keep \
		-dict="$src/fuzz/$name.dict" -artifact_prefix="$dir/" \
		-print_final_stats=1 "$dir/corpus" >"$dir/log" 2>&1
	rc=$?
	last=$(grep -E '^#[0-9]+.*cov: ' "$dir/log" | tail -n 1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
	[ -n "$runs" ] || runs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
	secs=$(echo "$last" | sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p')
	cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	crashes=$(ls "$dir" | grep -cE '^(crash|leak|timeout|oom)-')
	[ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ] || failed=1
	printf '%-9s %7s %11s %8s %6s %6s %7s %s\n' "$name" "$time" "${runs:-?}" \
		"${secs:-?}" "${cov:-?}" "${ft:-?}" "$(ls "$dir/corpus" | wc -l)" \
		"$crashes (exit $rc)" >>"$summary"
done
cat "$summary"
exit $failed
