// Package bench holds the on-demand benchmarks (make bench). They print numbers; they
// never assert wall-clock times.
package bench

import (
	"bufio"
	"fmt"
	"io"
)

// writeLargeConfig writes a keepalived.conf with nVS virtual servers of nRS real servers
// each, every real server checked by HTTP_GET: the parser benchmark's input.
func writeLargeConfig(w io.Writer, nVS, nRS int) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "global_defs {\n    router_id bench\n}")
	for v := 0; v < nVS; v++ {
		fmt.Fprintf(bw, "virtual_server 10.%d.%d.1 80 {\n", v/250, v%250)
		fmt.Fprintln(bw, "    delay_loop 6\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP")
		for r := 0; r < nRS; r++ {
			fmt.Fprintf(bw, "    real_server 172.16.%d.%d 80 {\n", v%250, r+10)
			fmt.Fprintln(bw, "        weight 1\n        HTTP_GET {\n            url {\n                path /index.html\n                status_code 200\n            }")
			fmt.Fprintln(bw, "            connect_timeout 3\n            retry 3\n            delay_before_retry 2\n        }\n    }")
		}
		fmt.Fprintln(bw, "}")
	}
	return bw.Flush()
}
