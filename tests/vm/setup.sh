#!/usr/bin/env bash
# Prepares the IPVS test VM (see README.md beside this file): installs qemu, a static
# busybox and ipvsadm with apt-get if missing, and unpacks Debian's kernel package into the
# cache directory ($GKA_VM_CACHE, default <repo>/.cache/vm), recording its version in
# kernel-version there. Idempotent: silent when everything is already in place, one line
# when it did something.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${GKA_VM_CACHE:-$repo/.cache/vm}
did=()

need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
command -v ipvsadm >/dev/null 2>&1 || need+=(ipvsadm)

updated=
apt_update() {
	if [ -z "$updated" ]; then
		apt-get update -qq >/dev/null
		updated=1
	fi
}

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "tests/vm/setup.sh: need root to install: ${need[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt_update
	log=$(mktemp)
	if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		exit 1
	fi
	rm -f "$log"
	did+=("installed ${need[*]}")
fi

mkdir -p "$cache"
# One setup at a time per cache directory (parallel test binaries may all call us).
exec 9>"$cache/.lock"
flock -w 900 9

ready() {
	[ -s "$cache/kernel-version" ] || return 1
	local v
	v=$(cat "$cache/kernel-version")
	[ -f "$cache/root/boot/vmlinuz-$v" ] && [ -f "$cache/root/lib/modules/$v/modules.order" ]
}

# Resolves the versioned kernel package behind linux-image-amd64 and downloads it into $tmp.
fetch() {
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
	[ -n "$pkg" ] && (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>"$tmp/err")
}

if ! ready; then
	tmp=$(mktemp -d "$cache/.dl.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	chmod 755 "$tmp" # lets apt's sandbox user write the download
	if ! fetch; then
		# Stale or missing package lists: refresh them once and retry.
		apt_update
		if ! fetch; then
			echo "tests/vm/setup.sh: cannot download the kernel package behind linux-image-amd64 (${pkg:-unresolved})" >&2
			cat "$tmp/err" >&2 2>/dev/null || true
			exit 1
		fi
	fi
	version=${pkg#linux-image-}
	dpkg -x "$tmp"/"$pkg"_*.deb "$tmp/root"
	[ -f "$tmp/root/boot/vmlinuz-$version" ] || { echo "tests/vm/setup.sh: $pkg has no vmlinuz-$version" >&2; exit 1; }
	rm -rf "$cache/root"
	mv "$tmp/root" "$cache/root"
	echo "$version" >"$cache/kernel-version"
	did+=("kernel $version in $cache")
fi

if [ ${#did[@]} -gt 0 ]; then
	echo "tests/vm/setup.sh: $(IFS=';'; echo "${did[*]}" | sed 's/;/; /g')"
fi
