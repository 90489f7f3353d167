package web_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/netkit/netkit/internal/auth"
	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
	"github.com/netkit/netkit/internal/testenv"
)

// The browser tests drive Debian's Chromium headless with chromedp. Without
// Chromium they skip, unless NETKIT_BROWSER=required (set by .ci/run).
// NETKIT_SCREENSHOTS=DIR keeps the screenshots there instead of the test's
// temporary directory.

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("NETKIT_BROWSER") == "required" {
		t.Fatal("chromium not found and NETKIT_BROWSER=required: apt-get install -y chromium")
	}
	t.Skip("chromium not found: apt-get install -y chromium to run the browser tests (NETKIT_BROWSER=required makes this a failure)")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns the
// context of its first tab. A start that fails (under a loaded test run
// Chromium has been seen not to come up) is tried once more, with what
// Chromium printed in the log.
func browser(t *testing.T) context.Context {
	t.Helper()
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		var ctx context.Context
		if ctx, err = startBrowser(t); err == nil {
			return ctx
		}
		t.Logf("start chromium, attempt %d: %v", attempt, err)
	}
	t.Fatalf("start chromium: %v", err)
	return nil
}

// startBrowser is one attempt of browser.
func startBrowser(t *testing.T) (context.Context, error) {
	var out testenv.Buffer
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.WSURLReadTimeout(time.Minute), // 20 s by default: short on a loaded machine
		chromedp.CombinedOutput(&out),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		return nil, fmt.Errorf("%w\nchromium printed:\n%s", err, out.String())
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx, nil
}

// tab opens another tab of the browser of ctx.
func tab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	tctx, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	// The first run opens the tab, which lives as long as that run's
	// context: run it without a timeout.
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return tctx
}

// run runs actions with a bound on the whole step.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, pageState(ctx))
	}
}

// pageState describes what the page shows, for a failure message.
func pageState(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	const expr = `["state", "notice", "channel-title", "presence", "messages"].map((id) => {
		const e = document.getElementById(id);
		return id + ": " + (e ? JSON.stringify(e.innerText) : "(none)");
	}).join("\n")`
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		return "(page state: " + err.Error() + ")"
	}
	return s
}

// until waits for a JavaScript expression to be true in the page.
func until(expr string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := poll(ctx, tg)
		return chromedp.Void{}, err
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// text returns the text of the element with id.
func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf("document.getElementById(%q).textContent", id))
}

// login opens the page and connects as name.
func login(t *testing.T, ctx context.Context, url, name string) (user string) {
	t.Helper()
	run(t, ctx, "log in as "+name,
		chromedp.Navigate(url+"/?channel=room"),
		chromedp.WaitVisible("#name"),
		chromedp.SetValue("#name", name),
		chromedp.Click("#connect"),
		chromedp.WaitVisible("#chat"),
		until(`document.getElementById("state").classList.contains("state-connected")`),
		until(`document.getElementById("channel-title").textContent === "room"`),
	)
	user = text(t, ctx, "me")
	// "Alice (anon-5a1b2c3d)": the user id is in parentheses.
	if i := strings.LastIndexByte(user, '('); i >= 0 {
		user = strings.TrimSuffix(user[i+1:], ")")
	}
	return user
}

func say(t *testing.T, ctx context.Context, msg string) {
	t.Helper()
	run(t, ctx, "send "+msg,
		chromedp.SetValue("#text", msg),
		chromedp.Click("#send"),
		until(`document.getElementById("text").value === ""`),
	)
}

// seen waits until the page's message list shows s.
func seen(s string) chromedp.Action[chromedp.Void] {
	return until(fmt.Sprintf(`document.getElementById("messages").textContent.includes(%q)`, s))
}

// evilName and evilText carry markup that must show as text: a page that
// wrote them as HTML would get script and img elements (which the content
// security policy would stop from running, so the test looks for the
// elements).
const (
	evilName = `<script>window.__pwned=3</script>`
	evilText = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">`
)

// noMarkup fails the test if peer data became elements in the page.
func noMarkup(t *testing.T, ctx context.Context, who string) {
	t.Helper()
	if eval[bool](t, ctx, `window.__pwned !== undefined || document.querySelector("body script, #chat img, header img") !== null`) {
		t.Fatalf("%s: peer markup became HTML in the page", who)
	}
}

// TestBrowserChat: two pages join a channel, the second sees its recent
// history, they see each other in presence, exchange messages and a direct
// message, and show markup in messages and
// names as text; the status view shows the hub's figures. Then Alice's
// connection drops; while she is away Bob and the API publish; she comes
// back and shows what she missed.
func TestBrowserChat(t *testing.T) {
	bctx := browser(t)
	h := hubtest.Start(t, nil)
	px := startProxy(t, h.Addr) // Alice's way to the hub, cut at will
	alice, bob := bctx, tab(t, bctx)
	aliceID := login(t, alice, "http://"+px.addr, "Alice")
	say(t, alice, "early bird")
	bobID := login(t, bob, h.HTTPURL, evilName)
	run(t, bob, "bob sees the history on joining", seen("early bird"))

	// Presence: each sees the other; Alice saw Bob join. Names travel in
	// messages, so before Bob writes Alice knows only his user id.
	run(t, alice, "alice sees bob", until(fmt.Sprintf(`document.getElementById("presence").textContent.includes(%q)`, bobID)))
	run(t, bob, "bob sees alice", until(fmt.Sprintf(`document.getElementById("presence").textContent.includes(%q)`, aliceID)))
	run(t, alice, "alice sees bob join", seen(bobID+" joined"))

	say(t, alice, "hello from Alice")
	run(t, bob, "bob gets it", seen("hello from Alice"))
	say(t, bob, "hi Alice")
	run(t, alice, "alice gets it", seen("hi Alice"))

	// Markup in messages and names is text.
	say(t, bob, evilText)
	run(t, alice, "alice gets the markup as text", seen(evilText), seen(evilName))
	noMarkup(t, alice, "alice")
	noMarkup(t, bob, "bob")

	// A direct message lands in Bob's "direct messages".
	run(t, alice, "alice sends bob a direct message",
		chromedp.SetValue("#dm-to", bobID),
		chromedp.SetValue("#dm-text", "psst, Bob"),
		chromedp.Click("#dm-send"),
		until(`document.getElementById("dm-text").value === ""`),
	)
	run(t, bob, "bob gets the direct message",
		until(`[...document.querySelectorAll("#channels button")].some((b) => b.dataset.channel === "direct messages")`),
		chromedp.Click(`#channels button[data-channel="direct messages"]`),
		seen("psst, Bob"),
	)
	run(t, bob, "bob goes back to room", chromedp.Click(`#channels button[data-channel="room"]`), seen("hi Alice"))

	// Joining and leaving a second channel: Bob sees Alice come and go.
	run(t, bob, "bob joins second", chromedp.SetValue("#join-channel", "second"), chromedp.Click(`#join-form button`),
		until(`document.getElementById("channel-title").textContent === "second"`))
	run(t, alice, "alice joins second", chromedp.SetValue("#join-channel", "second"), chromedp.Click(`#join-form button`),
		until(`document.getElementById("channel-title").textContent === "second"`),
		until(fmt.Sprintf(`document.getElementById("presence").textContent.includes(%q)`, bobID)))
	run(t, bob, "bob sees alice join second", seen("Alice ("+aliceID+") joined"))
	run(t, alice, "alice leaves second", chromedp.Click("#leave"),
		until(`document.getElementById("channel-title").textContent === "room"`),
		until(`![...document.querySelectorAll("#channels button")].some((b) => b.dataset.channel === "second")`))
	run(t, bob, "bob sees alice leave second", seen("Alice ("+aliceID+") left"),
		chromedp.Click(`#channels button[data-channel="room"]`), seen("hi Alice"))

	// The status view, for the person running the hub.
	run(t, alice, "alice opens the status view", chromedp.Click("#status-toggle"),
		until(`document.getElementById("st-connections").textContent === "2"`),
		until(`document.getElementById("st-in").textContent !== "–"`)) // a rate needs two samples, 2 s apart
	shot(t, alice, "laptop", 1280, 800)
	shot(t, alice, "phone", 390, 844)
	run(t, alice, "alice closes the status view", chromedp.Click("#status-toggle"))
	shot(t, bob, "phone-bob", 390, 844)

	// Alice's connection drops and new ones are refused for a while: her
	// page says so, Bob sees her leave. Bob and the API publish; she comes
	// back and recovers both, with no word of missed messages.
	px.hold()
	px.cutAll()
	run(t, alice, "alice sees the drop", until(`!document.getElementById("state").classList.contains("state-connected")`))
	run(t, bob, "bob sees alice leave", seen("Alice ("+aliceID+") left"))
	say(t, bob, "missed 1")
	if st, body := h.API(t, "POST", "/api/publish", map[string]any{"channel": "room", "data": map[string]any{"text": "missed 2", "name": "backend"}}); st != http.StatusOK {
		t.Fatalf("publish: %d %v", st, body)
	}
	px.release()
	run(t, alice, "alice recovers", until(`document.getElementById("state").classList.contains("state-connected")`), seen("missed 1"), seen("missed 2"))
	if n := text(t, alice, "notice"); strings.Contains(n, "missed") {
		t.Fatalf("notice after a recovery = %q, want no word of missed messages", n)
	}
	if got := eval[int](t, alice, `[...document.querySelectorAll("#messages li")].filter((li) => li.textContent.includes("missed 1")).length`); got != 1 {
		t.Fatalf(`"missed 1" shown %d times after the recovery, want once`, got)
	}
	// An anonymous user id lives as long as its connection: Alice is back
	// under a new one.
	aliceID = strings.TrimSuffix(text(t, alice, "me")[len("Alice ("):], ")")
	run(t, bob, "bob sees alice back", seen(aliceID+" joined"))
	say(t, alice, "back again")
	run(t, bob, "bob gets it", seen("back again"))
	noMarkup(t, alice, "alice")
}

// TestBrowserRecoveryFailed: the hub keeps one message per channel, so
// after three missed messages it answers the page's recovery with
// recovered:false. The page says messages may have been missed and shows
// the history the hub still has.
func TestBrowserRecoveryFailed(t *testing.T) {
	bctx := browser(t)
	h := hubtest.Start(t, func(c *hub.Config) { c.HistorySize = 1 })
	px := startProxy(t, h.Addr)
	login(t, bctx, "http://"+px.addr, "Carol")
	say(t, bctx, "before")
	run(t, bctx, "carol sees her message", seen("before"))

	px.hold()
	px.cutAll()
	run(t, bctx, "carol sees the drop", until(`!document.getElementById("state").classList.contains("state-connected")`))
	for i := 1; i <= 3; i++ {
		if st, body := h.API(t, "POST", "/api/publish", map[string]any{"channel": "room", "data": map[string]any{"text": fmt.Sprintf("missed %d", i), "name": "backend"}}); st != http.StatusOK {
			t.Fatalf("publish: %d %v", st, body)
		}
	}
	px.release()
	run(t, bctx, "carol is told",
		until(`document.getElementById("state").classList.contains("state-connected")`),
		until(`document.getElementById("notice").textContent.includes("may have been missed")`),
		seen("history reloaded"),
		seen("missed 3"),
	)
	if got := text(t, bctx, "messages"); strings.Contains(got, "missed 1") || strings.Contains(got, "before") {
		t.Fatalf("messages after reloading a history of 1 = %q, want only the notice and missed 3", got)
	}
	shot(t, bctx, "recovery-failed", 1280, 800)
	shot(t, bctx, "recovery-failed-phone", 390, 844)
}

// shot saves a PNG of the page at a window size and logs its path.
func shot(t *testing.T, ctx context.Context, name string, w, h int64) {
	t.Helper()
	dir := os.Getenv("NETKIT_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	run(t, ctx, "resize for "+name, chromedp.EmulateViewport(w, h))
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.png", t.Name(), name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %dx%d: %s", w, h, path)
	run(t, ctx, "restore the window", chromedp.EmulateViewport(1280, 800))
}

// proxy forwards TCP connections on 127.0.0.1 to the hub, so a test can
// cut the browser's connections and hold it off for a while.
type proxy struct {
	addr     string
	upstream string
	ln       net.Listener
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu
	held  bool                  // refuse new connections; guarded by mu
}

func startProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), upstream: upstream, ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cutAll()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		held := p.held
		p.mu.Unlock()
		if held {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			continue
		}
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src) // ends with an error when the test cuts the connection
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// cutAll closes every forwarded connection (the hub and the browser see
// the TCP connection end).
func (p *proxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) hold() {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
}

func (p *proxy) release() {
	p.mu.Lock()
	p.held = false
	p.mu.Unlock()
}

// TestBrowserTokenLogin: on a hub that refuses anonymous clients, the page
// says why a wrong token cannot connect and lets the user try again; a
// pasted token logs in as its user.
func TestBrowserTokenLogin(t *testing.T) {
	const secret = "browser-test-secret"
	bctx := browser(t)
	h := hubtest.Start(t, func(c *hub.Config) { c.JWTSecret = secret; c.AllowAnonymous = false })
	wrong, err := auth.Sign([]byte("another-secret"), auth.Claims{User: "carol"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	good, err := auth.Sign([]byte(secret), auth.Claims{User: "carol"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + h.Addr
	run(t, bctx, "a wrong token is refused",
		chromedp.Navigate(url+"/?channel=room"),
		chromedp.WaitVisible("#name"),
		chromedp.SetValue("#name", "Carol"),
		chromedp.SetValue("#token", wrong),
		chromedp.Click("#connect"),
		until(`document.getElementById("login-error").textContent.startsWith("Cannot connect")`),
		until(`!document.getElementById("connect").disabled`),
	)
	if eval[bool](t, bctx, `!document.getElementById("chat").hidden`) {
		t.Fatal("the chat shows after a refused token")
	}
	run(t, bctx, "the pasted token logs in",
		chromedp.SetValue("#token", good),
		chromedp.Click("#connect"),
		chromedp.WaitVisible("#chat"),
		until(`document.getElementById("state").classList.contains("state-connected")`),
		until(`document.getElementById("channel-title").textContent === "room"`),
	)
	if me := text(t, bctx, "me"); !strings.Contains(me, "carol") {
		t.Fatalf("the page shows %q as its user, want carol (the token's sub)", me)
	}
	say(t, bctx, "hello with a token")
	run(t, bctx, "carol sees her message", seen("hello with a token"))
}
