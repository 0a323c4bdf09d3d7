package parser

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// parsedOnly are keywords read into the typed model that the engines do not act on yet;
// the reference says so. Remove a name when its feature lands.
var parsedOnly = map[string]bool{
	"static_ipaddress": true, "static_routes": true, "static_rules": true,
	"virtual_routes": true, "virtual_rules": true,
	"notification_email": true, "notification_email_from": true, "smtp_server": true, "smtp_helo_name": true,
	"smtp_connect_timeout": true, "smtp_alert": true, "smtp_alert_vrrp": true, "smtp_alert_checker": true,
	"no_email_faults": true, "startup_script": true, "startup_script_timeout": true, "shutdown_script": true,
	"shutdown_script_timeout": true, "vrrp_notify_priority_changes": true, "notify_priority_changes": true,
	"fifo_write_vrrp_states_on_reload": true, "vrrp_startup_delay": true, "data_use_instance": true,
	"default_interface": true, "dynamic_interfaces": true, "json_version": true,
	"track_src_ip": true, "unicast_fault_no_peer": true, "garp_extra_if": true, "timer_expired_backup": true,
	"owner_ignore_adverts": true, "kernel_rx_buf_size": true, "old_unicast_checksum": true,
	"promote_secondaries": true, "debug": true, "accept": true, "no_accept": true, "strict_mode": true,
	"vrrp_strict": true, "snmp_name": true, "notify_deleted": true,
}

// referenceBlock is one block of docs/configuration.md.
type referenceBlock struct {
	title, about string
	keys         []string
}

// TestConfigurationReference keeps docs/configuration.md in line with the keyword tables:
// every keyword gokeepalived reads, and whether it is implemented or accepted with a
// warning. Run "go test ./parser -run ConfigurationReference -update" after adding one.
func TestConfigurationReference(t *testing.T) {
	blocks := []referenceBlock{
		{"top level", "Blocks of keepalived.conf.", keysOf(topLevel)},
		{"global_defs", "", keysOf(globalKeywords)},
		{"vrrp_script NAME", "", keysOf(vrrpScriptKeywords)},
		{"track_file NAME (also vrrp_track_file)", "", keysOf(trackFileKeywords)},
		{"vrrp_track_process NAME", "", keysOf(trackProcessKeywords)},
		{"vrrp_track_ping NAME (gokeepalived extension)", "Ping targets weighting the priority, like Heartbeat's pingd.", keysOf(trackPingKeywords)},
		{"vrrp_sync_group NAME", "", keysOf(syncGroupKeywords)},
		{"vrrp_instance NAME", "", keysOf(instanceKeywords)},
		{"vrrp_instance / authentication", "", keysOf(authKeywords)},
		{"virtual_server", "`virtual_server IP PORT`, `virtual_server fwmark N`, `virtual_server group NAME`.", keysOf(virtualServerKeywords)},
		{"real_server IP PORT", "", keysOf(realServerKeywords)},
		{"HTTP_GET / SSL_GET", "", keysOf(httpCheckKeywords)},
		{"HTTP_GET / SSL_GET url", "", keysOf(urlKeywords)},
		{"TCP_CHECK, PING_CHECK", "", keysOf(checkerCommonKeywords)},
		{"UDP_CHECK", "", keysOf(udpCheckKeywords)},
		{"SMTP_CHECK", "", keysOf(smtpCheckKeywords)},
		{"DNS_CHECK", "", keysOf(dnsCheckKeywords)},
		{"MISC_CHECK", "", keysOf(miscCheckKeywords)},
		{"FILE_CHECK", "", keysOf(fileCheckKeywords)},
		{"BFD_CHECK", "Parsed and reported: gokeepalived has no BFD.", keysOf(bfdCheckKeywords)},
		{"SSL", "", keysOf(sslKeywords)},
	}
	var b bytes.Buffer
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("Generated from the parser's keyword tables by `go test ./parser -run ConfigurationReference -update`.\n")
	b.WriteString("Every keyword here is read; \"ignored\" ones are keepalived keywords gokeepalived accepts with a\n")
	b.WriteString("warning and does not act on (the file stays valid). Syntax and defaults are keepalived's\n")
	b.WriteString("(`man keepalived.conf`); where gokeepalived differs, see [differences.md](differences.md).\n")
	for _, blk := range blocks {
		fmt.Fprintf(&b, "\n## %s\n\n", blk.title)
		if blk.about != "" {
			fmt.Fprintf(&b, "%s\n\n", blk.about)
		}
		b.WriteString("| keyword | status |\n|---|---|\n")
		for _, k := range blk.keys {
			status := "implemented"
			switch {
			case ignoredKeywords[k]:
				status = "ignored (warning)"
			case parsedOnly[k]:
				status = "parsed and checked; not acted on yet"
			}
			fmt.Fprintf(&b, "| `%s` | %s |\n", k, status)
		}
	}
	const path = "../docs/configuration.md"
	if *update {
		must(t, os.WriteFile(path, b.Bytes(), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(want, b.Bytes()) {
		t.Errorf("%s is out of date: run go test ./parser -run ConfigurationReference -update", path)
	}
}
