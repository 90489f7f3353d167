# Make targets for people who expect them; the scripts do the work.
.PHONY: build test release ci

build:
	go build -o netkit ./cmd/netkit

test:
	go test -race ./...

# Static binaries for every platform, version stamped, and SHA256SUMS in dist/.
release:
	scripts/release.sh

ci:
	.ci/run
