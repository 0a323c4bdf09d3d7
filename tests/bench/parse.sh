#!/usr/bin/env bash
# Parser benchmark: a generated keepalived.conf of 10,000 virtual servers x 4 real servers
# with HTTP_GET, parsed by gokeepalived (Go benchmark, ns/op and allocations) and checked
# by Debian's "keepalived -t" in the same run, for the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
COUNT=${COUNT:-5}

echo "== keepalived: $(keepalived --version 2>&1 | head -1)"
echo "== go: $($GO version)"
echo "== cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
out=$($GO test ./tests/bench -run '^$' -bench '10kVS$' -benchmem -count "$COUNT" -timeout 30m)
echo "$out" | grep -E '^Benchmark'
echo "$out" | awk '
	/^BenchmarkParse10kVS/ { g[++ng] = $3 }
	/^BenchmarkKeepalivedConfigTest10kVS/ { k[++nk] = $3 }
	function median(a, n,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		if (ng == 0 || nk == 0) { print "missing results"; exit 1 }
		gm = median(g, ng); km = median(k, nk)
		printf "median gokeepalived parse: %.1f ms\n", gm / 1e6
		printf "median keepalived -t:      %.1f ms\n", km / 1e6
		printf "ratio keepalived/gokeepalived: %.2f\n", km / gm
	}'

# The same comparison as whole processes, with peak memory: "gokeepalived -t" against
# "keepalived -t" (which parses the file in its parent and again in each child).
conf=$(mktemp -d)/keepalived.conf
trap 'rm -rf "$(dirname "$conf")"' EXIT
$GO test ./tests/bench -run '^TestWriteLargeConfig$' -count=1 -args -out "$conf" >/dev/null
for bin in bin/gokeepalived keepalived; do
	for i in $(seq "$COUNT"); do
		/usr/bin/time -f "%e %M" "$bin" -t -f "$conf" 2>&1 >/dev/null | tail -1
	done | sort -n | awk -v b="$bin" '{ t[NR] = $1; m[NR] = $2 } END { printf "%-18s -t: median %.2f s, peak RSS %d MB (%d runs)\n", b, t[int((NR + 1) / 2)], m[int((NR + 1) / 2)] / 1024, NR }'
done
