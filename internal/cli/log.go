package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// LogConfig configures the log that commands write to stderr: the [log]
// section, NETKIT_LOG_*, --log-*.
type LogConfig struct {
	Level  string `koanf:"level" help:"least severe level logged: debug, info, warn or error"`
	Format string `koanf:"format" help:"log format on stderr: text (key=value pairs) or json (one object per line)"`
}

// DefaultLogConfig logs info and above as text.
func DefaultLogConfig() LogConfig {
	return LogConfig{Level: "info", Format: "text"}
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// Validate checks the level and the format, naming the key of each problem.
func (c *LogConfig) Validate() error {
	var errs []error
	if _, ok := logLevels[c.Level]; !ok {
		errs = append(errs, fmt.Errorf("log.level: want debug, info, warn or error, got %q", c.Level))
	}
	if c.Format != "text" && c.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format: want text or json, got %q", c.Format))
	}
	return errors.Join(errs...)
}

// newLogger returns a logger writing to w as c says; c is valid.
func newLogger(w io.Writer, c LogConfig) *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevels[c.Level]}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
