#!/bin/sh
# Installs the Debian 12 packages talkproxy is built and tested with, and
# only those that are missing: a machine that has them all needs no network.
# Services the packages would start on install (Redis, Prosody, lighttpd,
# Apache on their standard ports) are kept from starting; services already
# running are left alone. The tests start their own servers on free ports.
#
#   scripts/deps.sh          the Debian packages
#   scripts/deps.sh --node   also node and npm, and the npm packages of
#                            tests/js (the independent Web Push check and the
#                            local push endpoint the tests and benchmarks use)
set -eu
cd "$(dirname "$0")/.."

node=""
for arg in "$@"; do
	case "$arg" in
	--node) node=yes ;;
	*)
		echo "deps.sh: unknown option $arg" >&2
		exit 2
		;;
	esac
done

PACKAGES="build-essential autoconf automake libtool pkg-config
libfcgi-dev libstrophe-dev libhiredis-dev libsodium-dev libjansson-dev
libcurl4-openssl-dev libssl-dev libinih-dev libexpat1-dev
redis-server prosody lighttpd apache2 libapache2-mod-fcgid spawn-fcgi
ejabberd erlang-p1-oauth2 valgrind wrk clang libclang-rt-14-dev python3-slixmpp python3-nacl openssl curl"
if [ -n "$node" ] && ! command -v npm >/dev/null 2>&1; then
	PACKAGES="$PACKAGES nodejs npm"
fi

# npm_packages: tests/js's packages, pinned by its package-lock.json.
npm_packages() {
	if [ -n "$node" ] && [ ! -d tests/js/node_modules/http_ece ]; then
		npm ci --prefix tests/js --no-audit --no-fund
	fi
}

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q ' installed$'; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "deps.sh: every package is installed"
	npm_packages
	exit 0
fi
echo "deps.sh: installing$missing"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi

# policy-rc.d exiting 101 tells invoke-rc.d not to start services; lighttpd
# and Apache would otherwise fight over port 80 during the install. Only a
# file created here is removed again.
POLICY=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$POLICY" ] && [ -z "${TP_DEPS_START_SERVICES:-}" ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
	$SUDO chmod 755 "$POLICY"
	made_policy=yes
fi
cleanup() {
	if [ -n "$made_policy" ]; then
		$SUDO rm -f "$POLICY"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# shellcheck disable=SC2086 # one word per package
$SUDO apt-get install -y --no-install-recommends $missing
npm_packages
