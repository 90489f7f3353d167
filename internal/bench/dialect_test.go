package bench

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestNetkitCommands(t *testing.T) {
	d := Netkit{}
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"hello", d.Hello(nil, 1, ""), ""},
		{"subscribe", d.Subscribe(nil, 2, "bench"), `{"id":2,"op":"subscribe","channel":"bench"}`},
		{"publish", d.Publish(nil, 3, "room", []byte(`{"a":1}`)), `{"id":3,"op":"publish","channel":"room","data":{"a":1}}`},
		{"pong", d.Pong(nil), ""},
		{"subscribe since", d.SubscribeSince(nil, 2, "room", Position{Offset: 41, Epoch: "6b1f"}),
			`{"id":2,"op":"subscribe","channel":"room","since":{"offset":41,"epoch":"6b1f"}}`},
	} {
		if string(tc.got) != tc.want {
			t.Errorf("%s = %s, want %s", tc.name, tc.got, tc.want)
		}
		if tc.want != "" && !json.Valid(tc.got) {
			t.Errorf("%s is not valid JSON: %s", tc.name, tc.got)
		}
	}
}

func TestNetkitURL(t *testing.T) {
	tests := []struct{ base, token, want string }{
		{"ws://127.0.0.1:9999/ws", "", "ws://127.0.0.1:9999/ws"},
		{"ws://127.0.0.1:9999/ws", "a.b.c", "ws://127.0.0.1:9999/ws?token=a.b.c"},
		{"ws://127.0.0.1:9999/ws?x=1", "a.b.c", "ws://127.0.0.1:9999/ws?token=a.b.c&x=1"},
	}
	for _, tc := range tests {
		if got, err := (Netkit{}).URL(tc.base, tc.token); err != nil || got != tc.want {
			t.Errorf("URL(%q, %q) = %q, %v; want %q", tc.base, tc.token, got, err, tc.want)
		}
	}
}

func TestNetkitSubscribeResult(t *testing.T) {
	tests := []struct {
		name, reply string
		want        SubscribeResult
	}{
		{"plain", `{"id":2,"result":{"channel":"room","offset":44,"epoch":"6b1f"}}`,
			SubscribeResult{Position: Position{Offset: 44, Epoch: "6b1f"}}},
		{"recovered", `{"id":2,"result":{"channel":"room","offset":44,"epoch":"6b1f","recovered":true}}`,
			SubscribeResult{Position: Position{Offset: 44, Epoch: "6b1f"}, Recovered: true}},
		{"not recovered", `{"id":2,"result":{"channel":"room","offset":3,"epoch":"9a","recovered":false}}`,
			SubscribeResult{Position: Position{Offset: 3, Epoch: "9a"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Netkit{}.SubscribeResult([]byte(tc.reply))
			if err != nil || got != tc.want {
				t.Fatalf("SubscribeResult = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, err := (Netkit{}).SubscribeResult([]byte(`{"id":2,"error":{"code":"forbidden"}}`)); err == nil {
		t.Error("SubscribeResult of an error: no error")
	}
}

func TestNetkitEvents(t *testing.T) {
	frame := `{"push":"welcome","client":"c1","user":"anon-1","node":"n","version":"v"}` + "\n" +
		`{"id":2,"result":{"channel":"bench","offset":0,"epoch":"e"}}` + "\n" +
		"\n" +
		`{"push":"join","channel":"bench","client":"c2","user":"anon-2"}` + "\n" +
		`{"push":"message","channel":"bench","offset":1,"from":"anon-2","data":{"p":1,"seq":1,"ts":5,"pad":""}}` + "\n" +
		`{"id":3,"error":{"code":"bad_request","message":"no"}}` + "\n" +
		`{"push":"leave","channel":"bench","client":"c2","user":"anon-2"}` + "\n" +
		`{"push":"disconnect","code":"shutdown","reason":"bye"}`
	evs := Netkit{}.AppendEvents(nil, []byte(frame))
	var kinds []EventKind
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
	}
	want := []EventKind{EventReady, EventReply, EventOther, EventPublication, EventError, EventLeave, EventDisconnect}
	if !slices.Equal(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
	if evs[1].ID != 2 || evs[4].ID != 3 {
		t.Errorf("ids = %d, %d; want 2, 3", evs[1].ID, evs[4].ID)
	}
	if p, seq, ts, ok := parsePayload(evs[3].Data); !ok || p != 1 || seq != 1 || ts != 5 {
		t.Errorf("publication payload = %d, %d, %d, %v", p, seq, ts, ok)
	}
	if string(evs[0].Client) != "c1" || string(evs[5].Client) != "c2" {
		t.Errorf("clients = %q, %q; want c1 (welcome), c2 (leave)", evs[0].Client, evs[5].Client)
	}
	if got := disconnectCode(evs[6].Text); got != "shutdown" {
		t.Errorf("disconnect code = %q, want shutdown", got)
	}
}

// TestNetkitFrames checks that one object per frame, the hub's default,
// and "\n"-joined objects (frames=joined) give the same events.
func TestNetkitFrames(t *testing.T) {
	objs := []string{
		`{"push":"message","channel":"b","offset":1,"from":"u","data":{"p":1,"seq":1,"ts":5,"pad":""}}`,
		`{"id":3,"result":{"offset":1}}`,
		`{"push":"message","channel":"b","offset":2,"from":"u","data":{"p":1,"seq":2,"ts":6,"pad":""}}`,
	}
	var one []Event
	for _, o := range objs {
		one = Netkit{}.AppendEvents(one, []byte(o))
	}
	joined := Netkit{}.AppendEvents(nil, []byte(strings.Join(objs, "\n")))
	if len(one) != 3 || len(joined) != 3 {
		t.Fatalf("%d and %d events, want 3 each", len(one), len(joined))
	}
	for i := range one {
		if one[i].Kind != joined[i].Kind || one[i].ID != joined[i].ID || string(one[i].Data) != string(joined[i].Data) {
			t.Errorf("event %d: %+v one per frame, %+v joined", i, one[i], joined[i])
		}
	}
}

func TestDisconnectCode(t *testing.T) {
	for _, tc := range []struct{ obj, want string }{
		{`{"push":"disconnect","code":"slow_consumer","reason":"x"}`, "slow_consumer"},
		{`{"disconnect":{"code":3008,"reason":"slow"}}`, "3008"},
		{`{"push":"disconnect","reason":"x"}`, ""},
		{`{"push":"disconnect","code":"unterminated`, ""},
	} {
		if got := disconnectCode([]byte(tc.obj)); got != tc.want {
			t.Errorf("disconnectCode(%s) = %q, want %q", tc.obj, got, tc.want)
		}
	}
}

// FuzzNetkitEvents feeds arbitrary frames to the Netkit dialect: no panic,
// at most one event per line, and every slice an event holds lies within
// the frame.
func FuzzNetkitEvents(f *testing.F) {
	for _, seed := range []string{
		`{"push":"welcome","client":"c1","user":"u","node":"n","version":"v"}`,
		`{"push":"message","channel":"b","offset":1,"from":"u","data":{"p":1,"seq":1,"ts":5}}` + "\n" + `{"id":3,"result":{}}`,
		`{"push":"leave","channel":"b","client":"`,
		`{"push":"disconnect","code":"slow_consumer","reason":"r"}`,
		`{"id":18446744073709551616,"error":{}}`,
		"\n\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		evs := Netkit{}.AppendEvents(nil, frame)
		if len(evs) > bytes.Count(frame, []byte{'\n'})+1 {
			t.Fatalf("%d events from %d lines", len(evs), bytes.Count(frame, []byte{'\n'})+1)
		}
		within := func(b []byte) bool {
			if len(b) == 0 {
				return true
			}
			i := bytes.Index(frame, b)
			return i >= 0 && i+len(b) <= len(frame)
		}
		for _, ev := range evs {
			if !within(ev.Data) || !within(ev.Text) || !within(ev.Client) {
				t.Fatalf("event %+v holds bytes outside the frame", ev)
			}
			if ev.Kind == EventDisconnect {
				disconnectCode(ev.Text)
			}
		}
	})
}

func TestParseSourceIPs(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "127.0.0.2", want: []string{"127.0.0.2"}},
		{in: "127.0.0.2, 127.0.0.3", want: []string{"127.0.0.2", "127.0.0.3"}},
		{in: "127.0.0.2-127.0.0.4", want: []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}},
		{in: "127.0.0.8-9,::1", want: []string{"127.0.0.8", "127.0.0.9", "::1"}},
		{in: "127.0.0.9-127.0.0.2", wantErr: true},
		{in: "127.0.0.2-300", wantErr: true},
		{in: "localhost", wantErr: true},
		{in: "127.0.0.1-::2", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseSourceIPs(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseSourceIPs(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		var want []netip.Addr
		for _, s := range tc.want {
			want = append(want, netip.MustParseAddr(s))
		}
		if !slices.Equal(got, want) {
			t.Errorf("ParseSourceIPs(%q) = %v, want %v", tc.in, got, want)
		}
	}
}
