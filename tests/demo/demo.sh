#!/usr/bin/env bash
# make demo — first the configuration front end on the sample configs in etc/ (the config
# test, per-director conditional configuration, the diagnostics for a broken file; no
# network), then the seed's scenario: 3 directors, 6 real servers and a client in network
# namespaces, narrated. Where the host kernel has no IPVS, the scenario runs inside the
# tests/vm VM (tests/demo/vmdemo); it never touches the host's interfaces.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=bin/gokeepalived
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "gokeepalived -t on every sample in etc/ (exit 0 = clean)"
for f in etc/*.conf; do
	if $bin -t -f "$f" 2>"$tmp/err"; then
		printf '  %-28s ok\n' "$f"
	else
		printf '  %-28s exit %d\n' "$f" $?
		cat "$tmp/err"
		exit 1
	fi
done

step "One file, three directors: @director1/2/3 lines pick router_id and priority"
for id in director1 director2 director3; do
	$bin --dump-config -i "$id" -f etc/keepalived.conf >"$tmp/$id.json"
	rid=$(grep -m1 '"router_id"' "$tmp/$id.json" | sed 's/.*: "\(.*\)".*/\1/')
	prio=$(grep -m1 '"priority"' "$tmp/$id.json" | sed 's/[^0-9]//g')
	printf '  -i %-10s router_id=%-10s priority=%s\n' "$id" "$rid" "$prio"
done
rs=$(grep -c "\"type\": \"\(HTTP\|SSL\)_GET\"" "$tmp/director1.json" || true)
echo "  ~SEQ(N, 11, 16) with a multi-line \$RS_HTTP definition expanded to $rs checked real servers"

step "A broken file: every problem once, with file:line:col and a hint"
cat >"$tmp/broken.conf" <<'CONF'
vrrp_instance VI_1 {
    state MASTR
    interface eth0
    virtual_router_id 300
    priorty 150
    vendor_extension {
        anything goes here
    }
    virtual_ipaddress {
        192.168.71.205/24
        2001:db8::5/64
    }
}
CONF
cat -n "$tmp/broken.conf" | sed 's/^/  /'
echo
set +e
$bin -t -f "$tmp/broken.conf" 2>&1 | sed "s|$tmp/||; s/^/  /"
code=${PIPESTATUS[0]}
set -e
echo "  exit code $code (5: errors, but the daemon would run; keepalived's codes)"
[ "$code" = 5 ]

step "The seed's scenario: 3 directors, VIP 192.168.71.205, 6 real servers, a client"
if [ ! -e /proc/net/ip_vs ]; then
	echo "  The host kernel has no IPVS: running the scenario inside the test VM (tests/vm)"
fi
# The scenario runs in the VM in every case: it creates its own bridges and namespaces
# there, so the host's network is never touched.
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
"$go" run ./tests/demo/vmdemo

step "demo finished: all steps held"
