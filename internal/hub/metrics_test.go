package hub_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
	"github.com/netkit/netkit/internal/testenv"
)

// scrape reads GET /metrics and returns each sample by its name and labels
// as written: `netkit_hub_messages_in_total{op="publish"}`.
func scrape(t *testing.T, h *hubtest.Hub) map[string]float64 {
	t.Helper()
	resp, err := http.Get(h.HTTPURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsMove runs a little traffic and checks that each counter it
// should move has moved, on two hubs in one process.
func TestMetricsMove(t *testing.T) {
	other := hubtest.StartWith(t, nil, hub.Options{Registry: prometheus.NewRegistry()})
	h := hubtest.StartWith(t, nil, hub.Options{Registry: prometheus.NewRegistry()})
	a, b := h.Dial(t), h.Dial(t)
	quiet(t, a, subscribeCmd(1, "room"))
	quiet(t, b, subscribeCmd(1, "room"))
	a.Expect("join")
	a.Call(publishCmd(2, "room", "hello"))
	b.Expect("message")
	if reply, _ := a.Call(map[string]any{"id": 3, "op": "subscribe", "channel": "bad channel"}); reply["error"] == nil {
		t.Fatalf("subscribe to a bad name: %v, want an error", reply)
	}
	if st, _ := h.API(t, "POST", "/api/disconnect", map[string]any{"user": b.User()}); st != http.StatusOK {
		t.Fatalf("disconnect: %d", st)
	}
	b.Expect("disconnect")

	want := []struct {
		sample string
		min    float64
	}{
		{`netkit_hub_connections_total`, 2},
		{`netkit_hub_messages_in_total{op="subscribe"}`, 3},
		{`netkit_hub_messages_in_total{op="publish"}`, 1},
		{`netkit_hub_messages_out_total{op="publication"}`, 2},
		{`netkit_hub_messages_out_total{op="join_leave"}`, 1},
		{`netkit_hub_messages_out_total{op="reply"}`, 4},
		{`netkit_hub_received_bytes_total`, 100},
		{`netkit_hub_sent_bytes_total`, 100},
		{`netkit_hub_errors_total{code="bad_request"}`, 1},
		{`netkit_hub_command_duration_seconds_count{op="publish"}`, 1},
		{`netkit_hub_broker_publish_duration_seconds_count`, 1},
		{`netkit_hub_disconnects_total{code="policy"}`, 1},
		{`netkit_hub_connections`, 1},
		{`netkit_hub_channels`, 1},
		{`netkit_hub_subscriptions`, 1},
		{`netkit_hub_queue_high_water_messages`, 1}, // a's welcome at least
	}
	var got map[string]float64
	testenv.WaitFor(t, 10*time.Second, func() error { // the disconnect is counted after the socket closes
		got = scrape(t, h)
		for _, w := range want {
			if v, ok := got[w.sample]; !ok || v < w.min {
				return fmt.Errorf("%s = %v (present %v), want at least %v", w.sample, v, ok, w.min)
			}
		}
		if got[`netkit_hub_connections`] != 1 {
			return fmt.Errorf("netkit_hub_connections = %v, want 1", got[`netkit_hub_connections`])
		}
		return nil
	})
	if v := scrape(t, other)[`netkit_hub_connections_total`]; v != 0 {
		t.Fatalf("the other hub counted %v connections, want 0", v)
	}
}

// TestMetricsOff: a hub without a registry answers /metrics with 404.
func TestMetricsOff(t *testing.T) {
	cfg := hub.DefaultConfig()
	cfg.APIKey = "k"
	srv, err := hub.New(cfg, hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("GET /metrics without a registry: %d, want 404", rec.Code)
	}
}
