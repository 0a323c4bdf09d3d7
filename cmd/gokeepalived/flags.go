package main

import (
	"io"

	"github.com/spf13/pflag"
)

// defaultConfigFile is keepalived's default configuration path.
const defaultConfigFile = "/etc/keepalived/keepalived.conf"

// options are the command-line flags, named as keepalived's.
type options struct {
	configFile string
	configID   string
	configTest bool
	dumpConfig bool
	version    bool
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
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o, nil
}
