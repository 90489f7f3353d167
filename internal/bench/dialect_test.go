package bench

import (
	"encoding/json"
	"net/netip"
	"slices"
	"testing"
)

func TestNetkitCommands(t *testing.T) {
	d := Netkit{}
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"hello", d.Hello(nil, 1), ""},
		{"subscribe", d.Subscribe(nil, 2, "bench"), `{"id":2,"op":"subscribe","channel":"bench"}`},
		{"publish", d.Publish(nil, 3, "room", []byte(`{"a":1}`)), `{"id":3,"op":"publish","channel":"room","data":{"a":1}}`},
		{"pong", d.Pong(nil), ""},
	} {
		if string(tc.got) != tc.want {
			t.Errorf("%s = %s, want %s", tc.name, tc.got, tc.want)
		}
		if tc.want != "" && !json.Valid(tc.got) {
			t.Errorf("%s is not valid JSON: %s", tc.name, tc.got)
		}
	}
}

func TestNetkitEvents(t *testing.T) {
	frame := `{"push":"welcome","client":"c1","user":"anon-1","node":"n","version":"v"}` + "\n" +
		`{"id":2,"result":{"channel":"bench","offset":0,"epoch":"e"}}` + "\n" +
		"\n" +
		`{"push":"join","channel":"bench","client":"c2","user":"anon-2"}` + "\n" +
		`{"push":"message","channel":"bench","offset":1,"from":"anon-2","data":{"p":1,"seq":1,"ts":5,"pad":""}}` + "\n" +
		`{"id":3,"error":{"code":"bad_request","message":"no"}}` + "\n" +
		`{"push":"disconnect","code":"shutdown","reason":"bye"}`
	evs := Netkit{}.AppendEvents(nil, []byte(frame))
	var kinds []EventKind
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
	}
	want := []EventKind{EventReady, EventReply, EventOther, EventPublication, EventError, EventDisconnect}
	if !slices.Equal(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
	if evs[1].ID != 2 || evs[4].ID != 3 {
		t.Errorf("ids = %d, %d; want 2, 3", evs[1].ID, evs[4].ID)
	}
	if p, seq, ts, ok := parsePayload(evs[3].Data); !ok || p != 1 || seq != 1 || ts != 5 {
		t.Errorf("publication payload = %d, %d, %d, %v", p, seq, ts, ok)
	}
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
