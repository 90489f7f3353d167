package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time:
//
//	go build -ldflags "-X github.com/netkit/netkit/internal/cli.version=v1.2.3" ./cmd/netkit
var version = "dev"

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of netkit",
		Long: `Print the version of netkit, the Go version it was built with and its
platform. The version is set at build time with -ldflags "-X"; without it,
it comes from the module version of "go install ...@version", else the VCS
revision, else it is "dev".`,
		Example: `  netkit version`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "netkit %s\n", fullVersion())
			return err
		},
	}
}

// fullVersion is the version with the Go version and platform, as
// "netkit version" and "netkit --version" print it.
func fullVersion() string {
	return fmt.Sprintf("%s (%s %s/%s)", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// versionString returns the version set with -ldflags, else the one the Go
// toolchain recorded in the binary, else "dev".
func versionString() string {
	if version != "dev" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev == "" {
		return version
	}
	return "dev-" + rev[:min(12, len(rev))] + dirty
}
