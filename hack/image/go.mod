// The image assembler of `make image` (scripts/image.sh): go-containerregistry, the library
// crane is built on, pinned. Move the pin with `go get github.com/google/go-containerregistry@vX`
// (never `go get -u`).
module partnerkit.io/hack/image

go 1.26.0

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
	golang.org/x/sync v0.22.0 // indirect
)
