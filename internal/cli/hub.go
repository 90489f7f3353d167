package cli

import (
	"context"
	"io"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/netkit/netkit/internal/config"
	"github.com/netkit/netkit/internal/hub"
)

// envPrefix starts every configuration variable: NETKIT_HUB_LISTEN.
const envPrefix = "NETKIT"

// hubConfig is everything "netkit hub" reads: the [hub] and [log] sections.
type hubConfig struct {
	Hub hub.Config `koanf:"hub"`
	Log LogConfig  `koanf:"log"`
}

func defaultHubConfig() hubConfig {
	return hubConfig{Hub: hub.DefaultConfig(), Log: DefaultLogConfig()}
}

// hubOptions is what the hub command hands to its run function.
type hubOptions struct {
	Config      hubConfig // defaults < --config file < NETKIT_* < flags
	ConfigFile  string    // --config
	PrintConfig bool      // --print-config
	Embedded    bool      // --nats-embedded: hub.broker = "nats-embedded"
	Stdout      io.Writer
	Stderr      io.Writer // the log
}

const hubConfigHeader = `netkit hub configuration, as printed by "netkit hub --print-config".
Use it with: netkit hub --config FILE

Settings come from, lowest precedence first: built-in defaults, this file,
environment variables NETKIT_<SECTION>_<KEY> (NETKIT_HUB_API_KEY sets
[hub] api_key), then flags (--api-key; --log-level for [log] level).
Durations are written like "500ms", "25s", "10m" or "1h30m"; sizes like
"512B", "64KiB", "1MiB" or "1GiB" (powers of 1024).`

// newHubCmd returns "netkit hub". runF, if not nil, runs instead of the hub
// once the settings are loaded, so that tests can check them.
func newHubCmd(env []string, runF func(context.Context, *hubOptions) error) *cobra.Command {
	opts := &hubOptions{Config: defaultHubConfig()}
	loader, err := config.New(&opts.Config, envPrefix)
	if err != nil {
		panic(err) // hubConfig's tags are wrong; every test of the command fails
	}
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Run the WebSocket message hub",
		Long: `Run the WebSocket message hub. Clients connect to ws://HOST:9999/ws,
subscribe to channels, publish, send direct messages and ask for presence.
Backends publish with POST /api/publish and the bearer API key, which is
generated and logged at start unless set with --api-key.

Settings come from, lowest precedence first: built-in defaults, the TOML
file given with --config, environment variables NETKIT_HUB_<KEY> and
NETKIT_LOG_<KEY> (NETKIT_HUB_API_KEY sets --api-key), then flags. Unknown
keys and variables are errors. --print-config prints the result as a
commented TOML file to start from.

Durations are written like 500ms, 25s, 10m or 1h30m; sizes like 512B,
64KiB, 1MiB or 1GiB (powers of 1024; KB, MB and bare numbers are errors).

On SIGINT or SIGTERM the hub stops accepting connections, sends "shutdown"
to every client and waits up to --shutdown-grace for them to close; a
second signal exits at once.`,
		Example: `  # Run a hub on port 9999 of every interface
  netkit hub

  # Loopback only, with a fixed API key
  netkit hub --listen 127.0.0.1:9999 --api-key secret

  # Settings from a file, the key from the environment
  NETKIT_HUB_API_KEY=secret netkit hub --config hub.toml

  # Write the settings to a file to start from
  netkit hub --print-config > hub.toml

  # Cluster: this node runs NATS for the others (docs/cluster.md)
  netkit hub --nats-embedded --nats-embedded-listen 0.0.0.0:4222
  netkit hub --broker nats --nats-url nats://10.0.0.1:4222`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := loader.Load(opts.ConfigFile, env); err != nil {
				return err
			}
			if opts.Embedded {
				opts.Config.Hub.Broker = hub.BrokerNATSEmbedded
				if err := opts.Config.Hub.Validate(); err != nil {
					return err
				}
			}
			opts.Stdout, opts.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if opts.PrintConfig {
				return config.WriteTOML(opts.Stdout, &opts.Config, hubConfigHeader)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runHub(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&opts.ConfigFile, "config", "", "read settings from this TOML `file`")
	fs.BoolVar(&opts.PrintConfig, "print-config", false, "print the effective settings as a commented TOML file and exit")
	fs.BoolVar(&opts.Embedded, "nats-embedded", false, `run a NATS server with JetStream in this process and use it (same as --broker nats-embedded); other nodes connect to --nats-embedded-listen`)
	if err := loader.BindFlags(fs, "hub"); err != nil {
		panic(err)
	}
	return cmd
}

// runHub listens on the configured address and serves until ctx ends, then
// shuts the hub down gracefully.
func runHub(ctx context.Context, opts *hubOptions) error {
	cfg := opts.Config
	log := newLogger(opts.Stderr, cfg.Log)
	// No TCP keep-alive on accepted connections: the hub's pings find dead
	// peers, and the keep-alive settings cost four setsockopt calls per
	// connection (about 4% of a connect's CPU in a profile).
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(ctx, "tcp", cfg.Hub.Listen)
	if err != nil {
		return err // "listen tcp :9999: bind: address already in use"
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := hub.New(cfg.Hub, hub.Options{Logger: log, Version: versionString(), Registry: reg})
	if err != nil {
		ln.Close()
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "url", wsURL(ln.Addr(), cfg.Hub.WSPath), "version", versionString())
	return srv.Serve(ctx, ln)
}

// wsURL is the WebSocket URL a client on this machine can dial for a
// listener at addr: ws://localhost:9999/ws for [::]:9999.
func wsURL(addr net.Addr, path string) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "ws://" + net.JoinHostPort(host, port) + path
}
