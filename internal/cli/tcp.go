package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/netkit/netkit/internal/config"
	"github.com/netkit/netkit/internal/tcp"
)

// tcpOptions is what a "netkit tcp" command hands to its run function.
type tcpOptions struct {
	Command  string // "serve" or "dial"
	Listen   string // serve: --listen
	Serve    tcp.Config
	Dial     tcp.DialConfig
	TLS      bool   // --tls
	CertFile string // serve: --cert
	KeyFile  string // serve: --key
	CAFile   string // dial: --ca
	Insecure bool   // dial: --insecure
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
}

// newTCPCmd returns "netkit tcp" with serve and dial. runF, if not nil,
// runs instead of the command once its flags are checked, so that tests
// can check them.
func newTCPCmd(_ []string, runF func(context.Context, *tcpOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tcp",
		Short: "TCP server and client, like netcat",
		Long: `TCP tools, like netcat: a server that echoes, prints, discards or relays
lines between its clients (a chat), and a client that joins stdin and
stdout to a connection. Both speak IPv4 and IPv6, and TLS with --tls.`,
		Example: `  netkit tcp serve --mode chat
  netkit tcp dial 127.0.0.1:8002`,
		Args: benchGroupArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	run := func(cmd *cobra.Command, opts *tcpOptions) error {
		opts.Stdin, opts.Stdout, opts.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
		if runF != nil {
			return runF(cmd.Context(), opts)
		}
		return runTCP(cmd.Context(), opts)
	}
	cmd.AddCommand(newTCPServeCmd(run), newTCPDialCmd(run))
	return cmd
}

func newTCPServeCmd(run func(*cobra.Command, *tcpOptions) error) *cobra.Command {
	opts := &tcpOptions{Command: "serve", Listen: ":8002"}
	var mode, allow, deny string
	chatQueue, chatQueueMax := "64KiB", "1MiB"
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Echo, print, discard or chat over TCP",
		Long: `Serve any number of TCP clients at once. echo sends back what a client
sends; print writes each line to stdout as "<peer>: <line>", escaped;
discard reads and drops; chat relays each line to every other client as
"<name> line", where the name is the client's address until it sends
"/nick NAME"; "/who" lists who is in the room and "/help" the commands,
answered to the asker only. Chat announces joins and leaves and escapes
terminal control characters.

Chat flow control: a client that keeps reading is never dropped because
a sender is faster. While the lines a client sent keep another client's
queue over --chat-queue, the sender is not read (it is slowed, like a
paste into a slow terminal). A client whose queue stays over --chat-queue
for --chat-stall is not reading and is dropped, and senders go on at full
speed; one whose queue would pass --chat-queue-max is dropped at once.
Queues count each line plus 32 bytes, so a client holds at most
--chat-queue-max queued and 80KiB being written.

--allow and --deny take comma-separated addresses or CIDR prefixes;
--deny wins. A refused client, or one over --max-conns, is closed at once.
With --tls clients speak TLS, with the certificate and key in --cert and
--key or a self-signed certificate made at start, whose SHA-256
fingerprint is printed. Connections and refusals are logged to stderr.`,
		Example: `  # Echo server on every interface
  netkit tcp serve

  # A chat room on port 9000, local network only
  netkit tcp serve --listen :9000 --mode chat --allow 192.168.0.0/16,fe80::/10

  # A chat room that drops a client after 30s of not reading
  netkit tcp serve --mode chat --chat-stall 30s

  # TLS echo with a generated certificate ("netkit tcp dial --tls --insecure")
  netkit tcp serve --tls --idle-timeout 5m`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := tcp.ParseMode(mode)
			if err != nil {
				return &usageError{fmt.Errorf("--mode %q: want echo, print, discard or chat", mode)}
			}
			c := &opts.Serve
			c.Mode = m
			if err := chatLimits(c, chatQueue, chatQueueMax); err != nil {
				return err
			}
			if c.Allow, err = tcp.ParsePrefixes(allow); err != nil {
				return &usageError{fmt.Errorf("--allow: %w", err)}
			}
			if c.Deny, err = tcp.ParsePrefixes(deny); err != nil {
				return &usageError{fmt.Errorf("--deny: %w", err)}
			}
			switch {
			case c.MaxConns < 0:
				return &usageError{fmt.Errorf("--max-conns %d: want a number, or 0 for no limit", c.MaxConns)}
			case c.IdleTimeout < 0:
				return &usageError{fmt.Errorf("--idle-timeout %v: want a duration like 5m, or 0 for none", c.IdleTimeout)}
			case c.ChatStallTimeout <= 0:
				return &usageError{fmt.Errorf("--chat-stall %v: want a positive duration like 10s", c.ChatStallTimeout)}
			case (opts.CertFile != "" || opts.KeyFile != "") && !opts.TLS:
				return &usageError{errors.New("--cert and --key need --tls")}
			case (opts.CertFile == "") != (opts.KeyFile == ""):
				return &usageError{errors.New("--cert and --key go together; give neither for a self-signed certificate")}
			}
			return run(cmd, opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	c := &opts.Serve
	fs.StringVar(&opts.Listen, "listen", opts.Listen, "`address` to listen on: :PORT for every interface, HOST:PORT or [IPv6]:PORT")
	fs.StringVar(&mode, "mode", "echo", "what to do with what clients send: echo, print, discard or chat")
	fs.IntVar(&c.MaxConns, "max-conns", 0, "clients served at once, more are closed at once; 0 means no limit")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 0, "close a client that sends nothing this long; 0 means never")
	fs.StringVar(&chatQueue, "chat-queue", chatQueue, "chat: queued `size` for a client above which the senders that filled it are slowed")
	fs.StringVar(&chatQueueMax, "chat-queue-max", chatQueueMax, "chat: queued `size` that drops a client at once; at least --chat-queue plus 34KiB")
	fs.DurationVar(&c.ChatStallTimeout, "chat-stall", tcp.DefaultChatStallTimeout, "chat: drop a client whose queue stays over --chat-queue this long")
	fs.StringVar(&allow, "allow", "", "serve only clients in these comma-separated `CIDRs` or addresses")
	fs.StringVar(&deny, "deny", "", "refuse clients in these comma-separated `CIDRs` or addresses; wins over --allow")
	fs.BoolVar(&opts.TLS, "tls", false, "speak TLS, with --cert/--key or a generated self-signed certificate")
	fs.StringVar(&opts.CertFile, "cert", "", "PEM certificate `file` for --tls")
	fs.StringVar(&opts.KeyFile, "key", "", "PEM private key `file` for --tls")
	return cmd
}

// chatLimits parses --chat-queue and --chat-queue-max into c.
func chatLimits(c *tcp.Config, soft, hard string) error {
	s, err := config.ParseSize(soft)
	if err != nil || s < 1024 || s > 1<<30 {
		return &usageError{fmt.Errorf("--chat-queue %q: want a size from 1KiB to 1GiB like 64KiB", soft)}
	}
	h, err := config.ParseSize(hard)
	if err != nil || h < s+tcp.MinChatHeadroom || h > 1<<30 {
		return &usageError{fmt.Errorf("--chat-queue-max %q: want at least --chat-queue (%s) plus %s, and at most 1GiB, like 1MiB",
			hard, soft, config.FormatSize(tcp.MinChatHeadroom))}
	}
	c.ChatSoftLimit, c.ChatHardLimit = int(s), int(h)
	return nil
}

func newTCPDialCmd(run func(*cobra.Command, *tcpOptions) error) *cobra.Command {
	opts := &tcpOptions{Command: "dial", Dial: tcp.DialConfig{Timeout: 10 * time.Second}}
	cmd := &cobra.Command{
		Use:   "dial HOST:PORT",
		Short: "Join stdin and stdout to a TCP connection",
		Long: `Connect to HOST:PORT, send stdin and print what comes back, like nc -N.
At the end of stdin it closes its sending half of the connection, so the
server still sends its reply, and exits when the server closes.

With --tls it speaks TLS and checks the server's certificate against the
system's authorities, or the ones in --ca; --insecure skips the check
(for a server's self-signed certificate).`,
		Example: `  # Send a request and read the whole reply
  printf 'GET / HTTP/1.0\r\n\r\n' | netkit tcp dial example.com:80

  # Chat interactively
  netkit tcp dial [::1]:8002

  # TLS to "netkit tcp serve --tls"
  netkit tcp dial --tls --insecure 127.0.0.1:8002`,
		Args: hostPortArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dial.Addr = args[0]
			switch {
			case (opts.Insecure || opts.CAFile != "") && !opts.TLS:
				return &usageError{errors.New("--insecure and --ca need --tls")}
			case opts.Insecure && opts.CAFile != "":
				return &usageError{errors.New("--insecure and --ca don't go together")}
			case opts.Dial.Timeout <= 0:
				return &usageError{fmt.Errorf("--timeout %v: want a duration like 10s", opts.Dial.Timeout)}
			}
			return run(cmd, opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.BoolVar(&opts.TLS, "tls", false, "speak TLS")
	fs.StringVar(&opts.CAFile, "ca", "", "accept only server certificates signed by the PEM certificates in this `file`")
	fs.BoolVar(&opts.Insecure, "insecure", false, "accept any server certificate (self-signed ones included)")
	fs.DurationVar(&opts.Dial.Timeout, "timeout", opts.Dial.Timeout, "give up connecting after this long")
	return cmd
}

// runTCP runs a tcp command.
func runTCP(ctx context.Context, opts *tcpOptions) error {
	if opts.Command == "dial" {
		cfg := opts.Dial
		if opts.TLS {
			tc, err := tcp.ClientTLS("", opts.CAFile, opts.Insecure)
			if err != nil {
				return err
			}
			cfg.TLS = tc
		}
		return tcp.Dial(ctx, cfg, opts.Stdin, opts.Stdout)
	}
	cfg := opts.Serve
	cfg.Out = opts.Stdout
	cfg.Log = slog.New(slog.NewTextHandler(opts.Stderr, nil))
	if opts.TLS {
		tc, fp, err := tcp.ServerTLS(opts.CertFile, opts.KeyFile)
		if err != nil {
			return err
		}
		cfg.TLS = tc
		cfg.Log.Info("tls", "sha256", fp, "self_signed", opts.CertFile == "")
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return err // "listen tcp :8002: bind: address already in use"
	}
	cfg.Log.Info("listening", "addr", ln.Addr().String(), "mode", string(cfg.Mode), "tls", opts.TLS)
	err = tcp.NewServer(cfg).Serve(ctx, ln)
	if errors.Is(err, tcp.ErrServerClosed) {
		return nil
	}
	return err
}
