package auth

import (
	"reflect"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"room", "room", true},
		{"room", "Room", false},
		{"room", "room2", false},
		{"room", "roo", false},
		{"*", "anything:at#all,x", true},
		{"*", "", true},
		{"chat:*", "chat:", true},
		{"chat:*", "chat:general", true},
		{"chat:*", "chat:a:b", true},
		{"chat:*", "chat", false},
		{"chat:*", "news:chat:x", false},
		{"*:general", "chat:general", true},
		{"*:general", "chat:generals", false},
		{"a*z", "az", true},
		{"a*z", "a:z", true},
		{"a*z", "a:zz", true},
		{"a*z", "a:zy", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxcyyb", false},
		{"**", "x", true},
		{"a**b", "ab", true},
		{"dm#*", "dm#alice,bob", true},
		{"dm#*alice*", "dm#bob,alice", true},
		{"*aaa*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"", "", true},
		{"", "a", false},
	}
	for _, tc := range tests {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestAllows(t *testing.T) {
	tests := []struct {
		name     string
		channels []string
		allowed  []string
		refused  []string
	}{
		{"no claim", nil, []string{"room", "chat:x", "dm#alice"}, nil},
		{"empty claim", []string{}, nil, []string{"room", "chat:x"}},
		{"list", []string{"room", "chat:*"}, []string{"room", "chat:", "chat:general"}, []string{"room2", "chat", "news:chat:x"}},
		{"everything", []string{"*"}, []string{"room", "dm#bob"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Claims{User: "alice", Channels: tc.channels}
			for _, ch := range tc.allowed {
				if !c.Allows(ch) {
					t.Errorf("Allows(%q) = false, want true", ch)
				}
			}
			for _, ch := range tc.refused {
				if c.Allows(ch) {
					t.Errorf("Allows(%q) = true, want false", ch)
				}
			}
		})
	}
}

func TestCheckPattern(t *testing.T) {
	tests := []struct {
		pattern string
		ok      bool
	}{
		{"room", true},
		{"chat:*", true},
		{"*", true},
		{"dm#alice,bob", true},
		{"a,b", true},
		{"user@host/x-y_z.1", true},
		{"", false},
		{"a b", false},
		{"a?", false},
		{"caf\u00e9", false},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
	}
	for _, tc := range tests {
		if err := CheckPattern(tc.pattern); (err == nil) != tc.ok {
			t.Errorf("CheckPattern(%q) = %v, want ok %v", tc.pattern, err, tc.ok)
		}
	}
}

func TestPrivateUsers(t *testing.T) {
	tests := []struct {
		channel string
		users   []string
		private bool
	}{
		{"room", nil, false},
		{"chat:general", nil, false},
		{"dm#alice,bob", []string{"alice", "bob"}, true},
		{"dm#alice", []string{"alice"}, true},
		{"ns:a#b#carol,dave", []string{"carol", "dave"}, true},
		{"dm#alice,,bob,", []string{"alice", "bob"}, true},
		{"room#", nil, true},
		{"#alice", []string{"alice"}, true},
	}
	for _, tc := range tests {
		users, private := PrivateUsers(tc.channel)
		if !reflect.DeepEqual(users, tc.users) || private != tc.private {
			t.Errorf("PrivateUsers(%q) = %q, %v; want %q, %v", tc.channel, users, private, tc.users, tc.private)
		}
	}
}

func TestAllowsPrivate(t *testing.T) {
	tests := []struct {
		user, channel string
		want          bool
	}{
		{"alice", "room", true},
		{"", "room", true},
		{"alice", "dm#alice,bob", true},
		{"bob", "dm#alice,bob", true},
		{"carol", "dm#alice,bob", false},
		{"", "dm#alice,bob", false},
		{"", "dm#alice,,bob", false},
		{"ali", "dm#alice,bob", false},
		{"alice,bob", "dm#alice,bob", false},
		{"b", "a#b#c", false},
		{"c", "a#b#c", true},
		{"alice", "room#", false},
		{"Alice", "dm#alice", false},
	}
	for _, tc := range tests {
		if got := AllowsPrivate(tc.user, tc.channel); got != tc.want {
			t.Errorf("AllowsPrivate(%q, %q) = %v, want %v", tc.user, tc.channel, got, tc.want)
		}
	}
}
