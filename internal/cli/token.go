package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	gotoml "github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"

	"github.com/netkit/netkit/internal/auth"
)

// tokenSecretEnv is the variable the hub reads hub.jwt_secret from.
const tokenSecretEnv = envPrefix + "_HUB_JWT_SECRET"

// tokenFlags are the flags of "netkit token" as typed.
type tokenFlags struct {
	user       string
	channels   string
	ttl        time.Duration
	secret     string
	configFile string
}

// newTokenCmd returns "netkit token". env is the environment in os.Environ
// form, for NETKIT_HUB_JWT_SECRET.
func newTokenCmd(env []string) *cobra.Command {
	var f tokenFlags
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a JWT for the hub, for scripts and tests",
		Long: `Print an HS256 JSON Web Token that "netkit hub" accepts: its "sub" is --user,
its "channels" claim lists the channel patterns of --channels, and it
expires --ttl from now. Clients pass it as ws://HOST:9999/ws?token=TOKEN or
in an "Authorization: Bearer TOKEN" header.

The token is signed with the hub's secret, taken from --secret, else the
variable NETKIT_HUB_JWT_SECRET, else [hub] jwt_secret of the --config file
(only that key is read from it). Prefer the variable or the file: a
--secret on the command line shows in the process list.

Channel patterns are channel names in which * stands for any run of
characters: "chat:*" allows chat:general and chat:a:b. Without --channels
the token allows every channel; --channels '' allows none. Private
channels (dm#alice,bob) also need the user among those after the last #.`,
		Example: `  # A token for alice, for room and every chat: channel, valid for an hour
  NETKIT_HUB_JWT_SECRET=s3cret netkit token --user alice --channels 'room,chat:*' --ttl 1h

  # Signed with the secret of the hub's settings file, valid for a day
  netkit token --config hub.toml --user bob --ttl 24h`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, claims, err := checkToken(cmd, f, env)
			if err != nil {
				return err
			}
			token, err := auth.Sign([]byte(secret), claims, f.ttl)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), token)
			return err
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&f.user, "user", "", "the user id, the token's \"sub\" (required)")
	fs.StringVar(&f.channels, "channels", "", "comma-separated channel `patterns` the user may subscribe and publish to (* is a wildcard); all when left out")
	fs.DurationVar(&f.ttl, "ttl", time.Hour, "how long the token is valid; 0 for no expiry")
	fs.StringVar(&f.secret, "secret", "", "the hub's jwt_secret (default from "+tokenSecretEnv+" or --config)")
	fs.StringVar(&f.configFile, "config", "", "read [hub] jwt_secret from this hub settings `file`")
	return cmd
}

// checkToken checks the flags and returns the secret and the claims to
// sign.
func checkToken(cmd *cobra.Command, f tokenFlags, env []string) (string, auth.Claims, error) {
	c := auth.Claims{User: f.user}
	if f.user == "" {
		return "", c, &usageError{errors.New("--user: missing; give the user id the token is for")}
	}
	if err := c.Validate(); err != nil {
		return "", c, &usageError{fmt.Errorf("--user: %w", err)}
	}
	if cmd.Flags().Changed("channels") {
		c.Channels = []string{}
		for p := range strings.SplitSeq(f.channels, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if err := auth.CheckPattern(p); err != nil {
				return "", c, &usageError{fmt.Errorf("--channels: %w", err)}
			}
			c.Channels = append(c.Channels, p)
		}
	}
	if f.ttl < 0 {
		return "", c, &usageError{fmt.Errorf("--ttl %v: want a duration like 1h, or 0 for no expiry", f.ttl)}
	}
	secret, err := tokenSecret(f, env)
	return secret, c, err
}

// tokenSecret returns the secret from --secret, the environment or the
// config file, in that order.
func tokenSecret(f tokenFlags, env []string) (string, error) {
	if f.secret != "" {
		return f.secret, nil
	}
	if s := envValue(env, tokenSecretEnv); s != "" {
		return s, nil
	}
	if f.configFile == "" {
		return "", &usageError{errors.New("no secret: give --secret, set " + tokenSecretEnv + ", or --config with the hub's settings file")}
	}
	data, err := os.ReadFile(f.configFile)
	if err != nil {
		return "", fmt.Errorf("--config: %w", err)
	}
	var file struct {
		Hub struct {
			JWTSecret    string `toml:"jwt_secret"`
			JWTPublicKey string `toml:"jwt_public_key"`
		} `toml:"hub"`
	}
	if err := gotoml.Unmarshal(data, &file); err != nil {
		return "", fmt.Errorf("--config %s: %w", f.configFile, err)
	}
	switch {
	case file.Hub.JWTSecret != "":
		return file.Hub.JWTSecret, nil
	case file.Hub.JWTPublicKey != "":
		return "", &usageError{fmt.Errorf("no secret: %s sets [hub] jwt_public_key, so the hub takes RS256 or ES256 tokens signed with its private key; netkit token signs HS256 with jwt_secret only", f.configFile)}
	}
	return "", &usageError{fmt.Errorf("no secret: %s has no [hub] jwt_secret; give --secret or set %s", f.configFile, tokenSecretEnv)}
}
