// Package js holds the netkit JavaScript client so that the hub serves the
// very bytes of clients/js/netkit.js at /netkit.js: there is no copy to
// drift from it.
package js

import _ "embed"

// Module is clients/js/netkit.js, the ES module.
//
//go:embed netkit.js
var Module []byte

// Types is clients/js/netkit.d.ts, its TypeScript declarations.
//
//go:embed netkit.d.ts
var Types []byte
