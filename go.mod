module gokeepalived

go 1.26.8

require github.com/alecthomas/participle/v2 v2.1.4

require (
	github.com/mdlayher/packet v1.2.0
	github.com/moby/ipvs v1.1.0
	github.com/spf13/pflag v1.0.10
	github.com/vishvananda/netlink v1.3.1
	github.com/vishvananda/netns v0.0.5
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.49.0
)

require (
	github.com/mdlayher/socket v0.7.0 // indirect
	github.com/sirupsen/logrus v1.9.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
)
