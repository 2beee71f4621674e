//go:build !cgo || purego

package dataset

import "errors"

// haveTurbo is false in pure-Go builds: every JPEG goes through internal/jpeg, and Draft is
// ignored (that decoder has no reduced-scale IDCT), so the pixels are always the exact path's.
const haveTurbo = false

var (
	errNoTurbo         = errors.New("built without libjpeg-turbo")
	errTurboColorspace = errors.New("colour space left to the Go decoder")
)

func decodeJPEGTurbo(data []byte, channels, w, h, denom int, buf []uint8) (*Image, error) {
	return nil, errNoTurbo
}
