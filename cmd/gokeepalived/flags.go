package main

import (
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// defaultConfigFile is keepalived's default configuration path.
const defaultConfigFile = "/etc/keepalived/keepalived.conf"

// defaultPidFile is keepalived's default pid file.
const defaultPidFile = "/run/keepalived.pid"

// defaultIPVSState is where the daemon started with the default pid file, or with the
// one of etc/gokeepalived.service (unitPidFile), keeps the IPVS services it owns across
// restarts.
const defaultIPVSState = "/run/gokeepalived/ipvs-owned.json"

// unitPidFile is the pid file that etc/gokeepalived.service passes.
const unitPidFile = "/run/gokeepalived.pid"

// options are the command-line flags, named as keepalived's.
type options struct {
	configFile     string
	configID       string
	configTest     bool
	dumpConfig     bool
	version        bool
	dontFork       bool
	logConsole     bool
	logDetail      bool
	vrrpOnly       bool
	checkOnly      bool
	pidFile        string
	vrrpPidFile    string
	checkPidFile   string
	dontReleaseVIP bool
	dontReleaseLVS bool
	signum         string
	controlSocket  string
	metricsAddress string
	ipvsState      string // the IPVS state file; empty: none
}

// parseFlags reads keepalived-compatible flags (short and long forms).
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := pflag.NewFlagSet("gokeepalived", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVarP(&o.configFile, "use-file", "f", defaultConfigFile, "configuration file")
	fs.StringVarP(&o.configID, "config-id", "i", "", "config id for @ID conditional lines (default: short host name)")
	fs.BoolVarP(&o.configTest, "config-test", "t", false, "check the configuration, print diagnostics and exit (0 ok, 4 cannot run, 5 errors, 6 script security)")
	fs.BoolVar(&o.dumpConfig, "dump-config", false, "print the parsed configuration as JSON and exit")
	fs.BoolVarP(&o.version, "version", "v", false, "print the version and exit")
	fs.BoolVarP(&o.dontFork, "dont-fork", "n", false, "stay in the foreground (gokeepalived never forks: daemonizing is systemd's job)")
	fs.BoolVarP(&o.logConsole, "log-console", "l", false, "log to the console (standard error)")
	fs.BoolVarP(&o.logDetail, "log-detail", "D", false, "detailed log messages")
	fs.BoolVarP(&o.vrrpOnly, "vrrp", "P", false, "run only the VRRP engine")
	fs.BoolVarP(&o.checkOnly, "check", "C", false, "run only the health-check engine")
	fs.StringVarP(&o.pidFile, "pid", "p", defaultPidFile, "pid file")
	fs.StringVarP(&o.vrrpPidFile, "vrrp_pid", "r", "", "accepted for compatibility (one process runs both engines)")
	fs.StringVarP(&o.checkPidFile, "checkers_pid", "c", "", "accepted for compatibility (one process runs both engines)")
	fs.BoolVarP(&o.dontReleaseVIP, "dont-release-vrrp", "V", false, "leave the virtual addresses in place on stop")
	fs.BoolVarP(&o.dontReleaseLVS, "dont-release-ipvs", "I", false, "leave the IPVS table in place on stop")
	fs.StringVar(&o.controlSocket, "control-socket", "", "unix socket for `gokeepalived status` (default /run/gokeepalived.sock, or the pid file's name with .sock)")
	fs.StringVar(&o.metricsAddress, "metrics-address", "", "serve Prometheus metrics at http://ADDRESS/metrics (off when empty)")
	fs.StringVar(&o.ipvsState, "ipvs-state", defaultIPVSState, "keep the IPVS services this daemon created in `FILE`, so that a restart (after -I or a crash) deletes those the configuration dropped; \"none\" or empty: off (with a pid file other than /run/keepalived.pid and /run/gokeepalived.pid, the default is the pid file's name with .ipvs-owned.json)")
	fs.StringVar(&o.signum, "signum", "", "print the number of the signal NAME (RELOAD, STOP, DATA, STATS, STATS_CLEAR, JSON) and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case !fs.Changed("ipvs-state"):
		o.ipvsState = ipvsStateFor(o.pidFile)
	case o.ipvsState == "none":
		o.ipvsState = ""
	}
	return o, nil
}

// ipvsStateFor returns the IPVS state file of a daemon started with pid file pid: the
// default one for the default pid file and the systemd unit's, else the pid file's
// name with ".ipvs-owned.json", so that several daemons on one host (tests, namespaces,
// each with its own IPVS table) do not share one.
func ipvsStateFor(pid string) string {
	switch pid {
	case "", defaultPidFile, unitPidFile:
		return defaultIPVSState
	}
	return strings.TrimSuffix(pid, ".pid") + ".ipvs-owned.json"
}
