package main

import (
	"slices"
	"testing"

	"github.com/netkit/netkit/internal/bench"
)

func TestCommands(t *testing.T) {
	d := dialect{}
	for _, tc := range []struct{ got, want string }{
		{string(d.Hello(nil, 1, "")), `{"id":1,"connect":{}}`},
		{string(d.Subscribe(nil, 2, "bench")), `{"id":2,"subscribe":{"channel":"bench"}}`},
		{string(d.Publish(nil, 3, "bench", []byte(`{"a":1}`))), `{"id":3,"publish":{"channel":"bench","data":{"a":1}}}`},
		{string(d.Pong(nil)), `{}`},
		{string(d.Hello(nil, 1, "t.k.n")), `{"id":1,"connect":{"token":"t.k.n"}}`},
		{string(d.SubscribeSince(nil, 2, "rec", bench.Position{Offset: 7, Epoch: "ab"})),
			`{"id":2,"subscribe":{"channel":"rec","recover":true,"offset":7,"epoch":"ab"}}`},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

// TestEvents sorts frames as Centrifugo v6.9.1 sent them.
func TestEvents(t *testing.T) {
	frame := `{"id":1,"connect":{"client":"9b15b233","version":"0.0.0 OSS","ping":25,"pong":true}}` + "\n" +
		`{"id":2,"subscribe":{}}` + "\n" +
		`{"push":{"channel":"bench","pub":{"data":{"p":1,"seq":1,"ts":5,"pad":"xx"},"info":{"user":"","client":"9b15b233"}}}}` + "\n" +
		`{"id":3,"publish":{}}` + "\n" +
		`{}` + "\n" +
		`{"id":5,"error":{"code":102,"message":"unknown channel"}}` + "\n" +
		`{"push":{"channel":"bench","join":{"info":{"user":"","client":"x"}}}}` + "\n" +
		`{"push":{"disconnect":{"code":3001,"reason":"shutdown"}}}`
	evs := dialect{}.AppendEvents(nil, []byte(frame))
	var kinds []bench.EventKind
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
	}
	want := []bench.EventKind{bench.EventReady, bench.EventReply, bench.EventPublication, bench.EventReply,
		bench.EventPing, bench.EventError, bench.EventOther, bench.EventDisconnect}
	if !slices.Equal(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
	if evs[1].ID != 2 || evs[3].ID != 3 || evs[5].ID != 5 {
		t.Errorf("ids = %d, %d, %d; want 2, 3, 5", evs[1].ID, evs[3].ID, evs[5].ID)
	}
	if got := string(evs[2].Data); got[:9] != `{"p":1,"s` {
		t.Errorf("publication data = %s", got)
	}
}

func TestSubscribeResult(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  bench.SubscribeResult
	}{
		{"plain", `{"id":2,"subscribe":{"recoverable":true,"epoch":"xyz","offset":4,"positioned":true}}`,
			bench.SubscribeResult{Position: bench.Position{Offset: 4, Epoch: "xyz"}}},
		{"recovered", `{"id":2,"subscribe":{"recoverable":true,"epoch":"xyz","publications":[{"data":{},"offset":5},{"data":{},"offset":6}],"recovered":true,"offset":6,"was_recovering":true}}`,
			bench.SubscribeResult{Position: bench.Position{Offset: 6, Epoch: "xyz"}, Recovered: true, Publications: 2}},
		{"not recovered", `{"id":2,"subscribe":{"recoverable":true,"epoch":"new","offset":0,"was_recovering":true}}`,
			bench.SubscribeResult{Position: bench.Position{Epoch: "new"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dialect{}.SubscribeResult([]byte(tc.reply))
			if err != nil || got != tc.want {
				t.Fatalf("SubscribeResult = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, err := (dialect{}).SubscribeResult([]byte(`{"id":2,"error":{"code":1}}`)); err == nil {
		t.Error("SubscribeResult of an error: no error")
	}
}
