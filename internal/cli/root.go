// Package cli is netkit's command line: one cobra command per tool, each
// turning flags, environment and config file into a Config and handing it
// to the package that does the work.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit statuses of Execute.
const (
	exitOK    = 0
	exitError = 1 // the command failed, including bad settings
	exitUsage = 2 // unknown command or flag, unexpected argument
)

// Execute runs netkit with args (without the program name) and returns the
// process exit status. Errors are written to stderr, one line each.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, newRootCmdFor(os.Environ(), nil, args), args, stdout, stderr)
}

// run executes root with args and turns its error into lines on stderr and
// an exit status.
func run(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if commandNamed(args) == "" {
		addCompletionCmd(root) // after SetOut: cobra's completion command keeps the writer it sees
	}
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	prefix := root.Name()
	if cmd != nil {
		prefix = cmd.CommandPath()
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s: %s (see '%s --help')\n", prefix, trimPackage(err.Error(), prefix), prefix)
		return exitUsage
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(stderr, "%s: %s\n", prefix, trimPackage(line, prefix))
	}
	return exitError
}

// trimPackage removes from msg the package prefixes that the command path
// already says: under "netkit udp dial", "udp: send: ..." prints as
// "netkit udp dial: send: ...", and "--allow: tcp: bad" under "netkit tcp
// serve" as "--allow: bad".
func trimPackage(msg, path string) string {
	for _, word := range strings.Fields(path)[1:] {
		msg = strings.TrimPrefix(msg, word+": ")
		msg = strings.ReplaceAll(msg, ": "+word+": ", ": ")
	}
	return msg
}

// commandNames are netkit's subcommands, so that a run can build only the
// one it runs (newCommand): building all of them, with their flags and
// defaults, was a twentieth of the CPU time of "netkit version".
var commandNames = []string{
	"hub", "pub", "sub", "dm", "presence", "history", "bench",
	"send", "recv", "relay", "udp", "tcp", "states", "token", "version",
}

// newCommand returns the subcommand called name (one of commandNames).
func newCommand(name string, env []string, runHub func(context.Context, *hubOptions) error) *cobra.Command {
	switch name {
	case "hub":
		return newHubCmd(env, runHub)
	case "pub":
		return newPubCmd(env, nil)
	case "sub":
		return newSubCmd(env, nil)
	case "dm":
		return newDMCmd(env, nil)
	case "presence":
		return newPresenceCmd(env, nil)
	case "history":
		return newHistoryCmd(env, nil)
	case "bench":
		return newBenchCmd(env, nil)
	case "send":
		return newSendCmd(env, nil)
	case "recv":
		return newRecvCmd(env, nil)
	case "relay":
		return newRelayCmd(nil)
	case "udp":
		return newUDPCmd(env, nil)
	case "tcp":
		return newTCPCmd(env, nil)
	case "states":
		return newStatesCmd(env, nil)
	case "token":
		return newTokenCmd(env)
	case "version":
		return newVersionCmd()
	}
	panic("cli: no command " + name)
}

// commandNamed returns the subcommand that args name first, as in "netkit
// states -p", or "" for anything else: no arguments, a flag, "help",
// "completion", a mistake.
func commandNamed(args []string) string {
	if len(args) == 0 {
		return ""
	}
	if slices.Contains(commandNames, args[0]) {
		return args[0]
	}
	return ""
}

// newRootCmd returns the netkit command with all its subcommands. env is
// the environment in os.Environ form; runHub, if not nil, replaces running
// the hub (for tests).
func newRootCmd(env []string, runHub func(context.Context, *hubOptions) error) *cobra.Command {
	return newRootCmdFor(env, runHub, nil)
}

// newRootCmdFor returns the netkit command for running args: with only the
// subcommand args name (see commandNamed), or, when they name none, with
// all of them, for the help, completion and "did you mean".
func newRootCmdFor(env []string, runHub func(context.Context, *hubOptions) error, args []string) *cobra.Command {
	root := &cobra.Command{
		Use:   "netkit",
		Short: "Network tools in one binary",
		Long: `netkit is one binary of network tools. Its main one, "netkit hub", is a
WebSocket message hub: channels, pub/sub, direct messages, presence and an
HTTP publish API.

Exit status: 0 on success, 1 when a command fails (bad settings included),
2 for an unknown command or flag.`,
		Example: `  netkit hub
  netkit hub --help
  netkit sub room --count 1 & netkit pub room '{"text":"hi"}'
  netkit bench hub fanout --url ws://127.0.0.1:9999/ws
  netkit recv --dir ~/Downloads
  netkit send photos/ 192.168.1.20:8000
  netkit version`,
		// Only reached without a subcommand: show the help, or reject an
		// unknown command.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := closest(args[0], cmd.SuggestionsFor(args[0])); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			return &usageError{errors.New(msg)}
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       fullVersion(),
	}
	root.SuggestionsMinimumDistance = 2
	root.SetUsageFunc(usage)
	root.SetVersionTemplate("netkit {{.Version}}\n")
	root.Flags().Bool("version", false, `print the version of netkit, like "netkit version"`)
	root.SetFlagErrorFunc(flagError)
	only := commandNamed(args)
	for _, name := range commandNames {
		if only == "" || name == only {
			root.AddCommand(newCommand(name, env, runHub))
		}
	}
	return root
}

// flagError makes a flag mistake a usage error, with a "did you mean" for
// an unknown flag close to one of the command's flags.
func flagError(cmd *cobra.Command, err error) error {
	const prefix = "unknown flag: --"
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return &usageError{err}
	}
	name := strings.TrimPrefix(msg, prefix)
	best, bestDist := "", 3 // suggest only within 2 edits, or a prefix
	visit := func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := editDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) && len(name) >= 3 {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = f.Name, d
		}
	}
	cmd.LocalFlags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	if best == "" {
		return &usageError{err}
	}
	return &usageError{fmt.Errorf("%w; did you mean --%s?", err, best)}
}

// closest returns the one of names nearest to typed, or "".
func closest(typed string, names []string) string {
	best, bestDist := "", -1
	for _, n := range names {
		if d := editDistance(typed, n); bestDist < 0 || d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var completionExamples = map[string]string{
	"bash":       "  source <(netkit completion bash)",
	"zsh":        `  netkit completion zsh > "${fpath[1]}/_netkit"`,
	"fish":       "  netkit completion fish > ~/.config/fish/completions/netkit.fish",
	"powershell": "  netkit completion powershell | Out-String | Invoke-Expression",
}

// addCompletionCmd adds cobra's "completion" command (shell completion
// scripts), with examples like every other command.
func addCompletionCmd(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = `  # bash, for this shell; add it to ~/.bashrc to keep it
  source <(netkit completion bash)

  # zsh, for every new shell
  netkit completion zsh > "${fpath[1]}/_netkit"`
		for _, sub := range c.Commands() {
			sub.Example = completionExamples[sub.Name()]
		}
	}
}

// usage writes the part of --help after the description: usage lines,
// commands, flags and, last, the examples.
func usage(c *cobra.Command) error {
	var b strings.Builder
	b.WriteString("Usage:")
	if c.Runnable() {
		fmt.Fprintf(&b, "\n  %s", c.UseLine())
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n  %s [command]\n\nCommands:", c.CommandPath())
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				fmt.Fprintf(&b, "\n  %-*s %s", sub.NamePadding(), sub.Name(), sub.Short)
			}
		}
	}
	if c.HasAvailableLocalFlags() {
		b.WriteString("\n\nFlags:\n" + strings.TrimRight(c.LocalFlags().FlagUsages(), " \n"))
	}
	if c.HasAvailableInheritedFlags() {
		b.WriteString("\n\nGlobal Flags:\n" + strings.TrimRight(c.InheritedFlags().FlagUsages(), " \n"))
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n\nRun '%s COMMAND --help' for more about a command.", c.CommandPath())
	}
	if c.HasExample() {
		b.WriteString("\n\nExamples:\n" + c.Example)
	}
	b.WriteString("\n")
	_, err := io.WriteString(c.OutOrStderr(), b.String())
	return err
}

// usageError is a mistake in how a command was called, as opposed to a
// failure while running it. It exits with status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// noArgs rejects positional arguments as a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}

// envValue returns the value of key in env (os.Environ form), or "".
func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}
