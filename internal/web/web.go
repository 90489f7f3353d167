// Package web is the hub's chat page: static HTML, CSS and JavaScript
// embedded in the binary, and the JavaScript client served from the bytes
// of clients/js.
package web

import (
	"bytes"
	"embed"
	"net/http"
	"time"

	js "github.com/netkit/netkit/clients/js"
)

//go:embed static
var static embed.FS

// files are the page's files by URL path.
var files = map[string]struct {
	name, contentType string
}{
	"/":          {"static/index.html", "text/html; charset=utf-8"},
	"/app.js":    {"static/app.js", "text/javascript; charset=utf-8"},
	"/style.css": {"static/style.css", "text/css; charset=utf-8"},
}

// Paths are the URL paths Handler serves.
var Paths = []string{"/", "/app.js", "/style.css", "/netkit.js", "/netkit.d.ts"}

// csp keeps the page to its own origin: no inline script, nothing from
// elsewhere, so even a bug that wrote peer data as HTML could run nothing.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

var started = time.Now()

// Handler serves the page and the client module. It answers only the
// paths in Paths; the caller routes them here.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		ctype := "text/javascript; charset=utf-8"
		switch r.URL.Path {
		case "/netkit.js":
			body = js.Module
		case "/netkit.d.ts":
			body, ctype = js.Types, "application/typescript; charset=utf-8"
		default:
			f, ok := files[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			b, err := static.ReadFile(f.name)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			body, ctype = b, f.contentType
		}
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache") // revalidate: a new binary serves new files
		http.ServeContent(w, r, "", started, bytes.NewReader(body))
	})
}
