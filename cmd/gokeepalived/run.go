package main

import (
	"encoding/json"
	"fmt"
	"io"

	"gokeepalived/parser"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes besides the config-test ones defined by the parser.
const (
	exitOK    = 0
	exitUsage = 2
)

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "genhash":
			return runGenhash(args[1:], stdout, stderr)
		case "status":
			return runStatus(args[1:], stdout, stderr)
		case "reload":
			return runReload(args[1:], stdout, stderr)
		}
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		return exitUsage
	}
	switch {
	case o.version:
		fmt.Fprintf(stdout, "gokeepalived %s\n", version)
		return exitOK
	case o.signum != "":
		s, ok := signums[o.signum]
		if !ok {
			fmt.Fprintf(stderr, "gokeepalived: unknown signal name %q\n", o.signum)
			return exitUsage
		}
		fmt.Fprintln(stdout, int(s))
		return exitOK
	case o.configTest:
		_, ds := load(o)
		report(stderr, ds)
		return ds.ExitCode()
	case o.dumpConfig:
		cfg, ds := load(o)
		report(stderr, ds)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(cfg); err != nil {
			fmt.Fprintf(stderr, "gokeepalived: %v\n", err)
			return parser.ExitFatal
		}
		return ds.ExitCode()
	}
	return runDaemon(o, stderr)
}

// load parses the configuration.
func load(o *options) (*parser.Config, parser.Diagnostics) {
	return parser.Load(o.configFile, parser.Options{ConfigID: o.configID})
}

// report prints each diagnostic as file:line:col: severity: message, then a summary.
func report(w io.Writer, ds parser.Diagnostics) {
	for _, d := range ds {
		fmt.Fprintln(w, d)
	}
	if len(ds) > 0 {
		fmt.Fprintf(w, "%d fatal, %d security, %d errors, %d warnings\n",
			ds.Count(parser.Fatal), ds.Count(parser.Security), ds.Count(parser.Error), ds.Count(parser.Warning))
	}
}
