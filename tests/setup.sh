#!/usr/bin/env bash
# Installs what the test suite, the benchmarks and the demo need on a fresh Debian
# machine. Idempotent and quiet when everything is already there.
set -euo pipefail

need=()
command -v keepalived >/dev/null 2>&1 || need+=(keepalived)
command -v ipvsadm >/dev/null 2>&1 || need+=(ipvsadm)
command -v git >/dev/null 2>&1 || need+=(git)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v vtysh >/dev/null 2>&1 || need+=(frr)
[ -x /usr/bin/time ] || need+=(time)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v busybox >/dev/null 2>&1 || need+=(busybox)
[ -x /usr/bin/python3 ] || need+=(python3)
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup: need root to install: ${need[*]}" >&2
		exit 1
	fi
	echo "setup: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# keepalived and frr ship services; they must never start on the host's interfaces.
	# policy-rc.d (exit 101) tells the packages' scripts not to start anything.
	created_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		created_policy=1
	fi
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	[ -z "$created_policy" ] || rm -f /usr/sbin/policy-rc.d
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
	echo "setup: Go is missing (expected at /usr/local/go)" >&2
	exit 1
fi
