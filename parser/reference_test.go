package parser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"testing"
)

// parsedOnly are keywords read into the typed model that the engines do not act on yet;
// the reference says so. Remove a name when its feature lands.
var parsedOnly = map[string]bool{
	"data_use_instance": true,
	"default_interface": true, "dynamic_interfaces": true, "json_version": true,
	"track_src_ip": true, "unicast_fault_no_peer": true, "garp_extra_if": true, "timer_expired_backup": true,
	"old_unicast_checksum": true,
	"debug":                true, "snmp_name": true,
	"use_vmac_addr": true, "vmac_addr_prefix": true, "vmac_garp_intvl": true,
}

// referenceBlock is one block of docs/configuration.md.
type referenceBlock struct {
	title, about string
	keys         []string
	sample       any // the block as parsed from a minimal configuration: its defaults
}

// referenceSample is the minimal configuration whose typed model gives the defaults.
const referenceSample = `
global_defs {
}
vrrp_script chk {
    script /bin/true
}
track_file tf {
    file /tmp/gka-reference
}
vrrp_track_process proc {
    process x
}
vrrp_track_ping up {
    address 10.0.0.1
}
vrrp_sync_group G {
    group {
        VI_1
    }
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        10.0.0.1
    }
}
virtual_server 10.0.0.1 80 {
    real_server 10.0.0.2 80 {
        TCP_CHECK {
        }
        HTTP_GET {
            url {
                path /
            }
        }
        UDP_CHECK {
        }
        SMTP_CHECK {
        }
        DNS_CHECK {
        }
        MISC_CHECK {
            misc_path /bin/true
        }
        FILE_CHECK {
            track_file tf
        }
    }
}
`

// defaultsOf flattens a parsed block's JSON into keyword -> default value.
func defaultsOf(v any) map[string]string {
	out := map[string]string{}
	if v == nil {
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return out
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return out
	}
	// Breadth first and in key order, so that a block's own value wins over a nested
	// one of the same name, and the result is the same on every run.
	var walk func(m map[string]any)
	walk = func(m map[string]any) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var nested []map[string]any
		for _, k := range keys {
			switch x := m[k].(type) {
			case map[string]any:
				nested = append(nested, x)
			case []any:
				if _, ok := out[k]; !ok && len(x) == 0 {
					out[k] = "none"
				}
			default:
				if _, ok := out[k]; !ok {
					out[k] = fmt.Sprint(x)
				}
			}
		}
		for _, n := range nested {
			walk(n)
		}
	}
	walk(m)
	return out
}

// TestConfigurationReference keeps docs/configuration.md in line with the keyword tables:
// every keyword gokeepalived reads, and whether it is implemented or accepted with a
// warning. Run "go test ./parser -run ConfigurationReference -update" after adding one.
func TestConfigurationReference(t *testing.T) {
	cfg, ds := LoadBytes("reference.conf", []byte(referenceSample), Options{ConfigID: "x"})
	if ds.ExitCode() == ExitFatal || len(cfg.Instances) != 1 || len(cfg.VirtualServers) != 1 {
		t.Fatalf("reference sample: %v", ds)
	}
	vs := cfg.VirtualServers[0]
	rs := vs.RealServers[0]
	checker := func(typ string) any {
		for _, c := range rs.Checkers {
			if c.Type == typ {
				return c
			}
		}
		return nil
	}
	var url any
	if c, ok := checker("HTTP_GET").(*Checker); ok && c.HTTP != nil && len(c.HTTP.URLs) > 0 {
		url = c.HTTP.URLs[0]
	}
	blocks := []referenceBlock{
		{"top level", "Blocks of keepalived.conf.", keysOf(topLevel), nil},
		{"global_defs", "", keysOf(globalKeywords), cfg.Global},
		{"vrrp_script NAME", "", keysOf(vrrpScriptKeywords), cfg.Scripts[0]},
		{"track_file NAME (also vrrp_track_file)", "", keysOf(trackFileKeywords), cfg.TrackFiles[0]},
		{"vrrp_track_process NAME", "", keysOf(trackProcessKeywords), cfg.TrackProcesses[0]},
		{"vrrp_track_ping NAME (gokeepalived extension)", "Ping targets weighting the priority, like Heartbeat's pingd.", keysOf(trackPingKeywords), cfg.TrackPings[0]},
		{"vrrp_sync_group NAME", "", keysOf(syncGroupKeywords), cfg.SyncGroups[0]},
		{"vrrp_instance NAME", "", keysOf(instanceKeywords), cfg.Instances[0]},
		{"vrrp_instance / authentication", "", keysOf(authKeywords), nil},
		{"virtual_server", "`virtual_server IP PORT`, `virtual_server fwmark N`, `virtual_server group NAME`.", keysOf(virtualServerKeywords), vs},
		{"real_server IP PORT", "", keysOf(realServerKeywords), rs},
		{"HTTP_GET / SSL_GET", "", keysOf(httpCheckKeywords), checker("HTTP_GET")},
		{"HTTP_GET / SSL_GET url", "", keysOf(urlKeywords), url},
		{"TCP_CHECK, PING_CHECK", "", keysOf(checkerCommonKeywords), checker("TCP_CHECK")},
		{"UDP_CHECK", "", keysOf(udpCheckKeywords), checker("UDP_CHECK")},
		{"SMTP_CHECK", "", keysOf(smtpCheckKeywords), checker("SMTP_CHECK")},
		{"DNS_CHECK", "", keysOf(dnsCheckKeywords), checker("DNS_CHECK")},
		{"MISC_CHECK", "", keysOf(miscCheckKeywords), checker("MISC_CHECK")},
		{"FILE_CHECK", "", keysOf(fileCheckKeywords), checker("FILE_CHECK")},
		{"BFD_CHECK", "Parsed and reported: gokeepalived has no BFD.", keysOf(bfdCheckKeywords), nil},
		{"SSL", "", keysOf(sslKeywords), nil},
	}
	var b bytes.Buffer
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("Generated from the parser's keyword tables by `go test ./parser -run ConfigurationReference -update`.\n")
	b.WriteString("Every keyword here is read; \"ignored\" ones are keepalived keywords gokeepalived accepts with a\n")
	b.WriteString("warning and does not act on (the file stays valid). Syntax and defaults are keepalived's\n")
	b.WriteString("(`man keepalived.conf`); where gokeepalived differs, see [differences.md](differences.md).\n")
	b.WriteString("The default column is the value gokeepalived uses when the keyword is absent, read from the\n")
	b.WriteString("typed model of a minimal configuration; — means not set: off, none, or inherited from the\n")
	b.WriteString("enclosing block (virtual_server -> real_server -> checker).\n")
	for _, blk := range blocks {
		fmt.Fprintf(&b, "\n## %s\n\n", blk.title)
		if blk.about != "" {
			fmt.Fprintf(&b, "%s\n\n", blk.about)
		}
		b.WriteString("| keyword | default | status |\n|---|---|---|\n")
		defaults := defaultsOf(blk.sample)
		for _, k := range blk.keys {
			status := "implemented"
			switch {
			case ignoredKeywords[k]:
				status = "ignored (warning)"
			case parsedOnly[k]:
				status = "parsed and checked; not acted on yet"
			}
			def := defaults[k]
			switch {
			case def == "":
				def = "—"
			case k == "connect_ip":
				def = "the real server's address"
			case k == "connect_port":
				def = "the real server's port"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", k, def, status)
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
