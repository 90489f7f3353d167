package auth_test

import (
	"fmt"
	"time"

	"github.com/netkit/netkit/internal/auth"
)

func ExampleClaims_Allows() {
	c := auth.Claims{User: "alice", Channels: []string{"room", "chat:*"}}
	for _, ch := range []string{"room", "chat:general", "chat", "news"} {
		fmt.Println(ch, c.Allows(ch))
	}
	// Output:
	// room true
	// chat:general true
	// chat false
	// news false
}

func ExamplePrivateUsers() {
	users, private := auth.PrivateUsers("dm#alice,bob")
	fmt.Println(users, private)
	fmt.Println(auth.AllowsPrivate("alice", "dm#alice,bob"), auth.AllowsPrivate("carol", "dm#alice,bob"))
	// Output:
	// [alice bob] true
	// true false
}

func ExampleSign() {
	secret := []byte("s3cret")
	token, err := auth.Sign(secret, auth.Claims{User: "alice", Channels: []string{"chat:*"}}, time.Hour)
	if err != nil {
		panic(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: string(secret)})
	if err != nil {
		panic(err)
	}
	c, err := v.Verify(token, time.Now())
	fmt.Println(c.User, c.Channels, err)
	// Output: alice [chat:*] <nil>
}
