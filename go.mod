module gokeepalived

go 1.26.8

require github.com/alecthomas/participle/v2 v2.1.4

require github.com/spf13/pflag v1.0.10

require (
	github.com/moby/ipvs v1.1.0 // indirect
	github.com/sirupsen/logrus v1.9.0 // indirect
	github.com/vishvananda/netlink v1.3.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/sys v0.10.0 // indirect
)
