package student

import (
	"errors"
	"fmt"

	"github.com/deitkd/deitkd/internal/fielddiff"
)

// Sentinel errors of the package.
var (
	ErrConfig        = errors.New("student: invalid config")
	ErrNonFinite     = errors.New("student: non-finite loss")
	ErrMismatch      = errors.New("student: checkpoint does not match")
	ErrBatch         = errors.New("student: invalid batch")
	ErrInternal      = errors.New("student: internal error")
	ErrBadCheckpoint = errors.New("student: not a valid checkpoint")
)

// Config is the student's architecture. The zero value of every field
// means its default, the fm-tiny preset's value; it is saved in every
// checkpoint.
type Config struct {
	ImageSize   int     `json:"image_size,omitempty"`    // 28: square input side, pixels
	Channels    int     `json:"channels,omitempty"`      // 1
	Patch       int     `json:"patch,omitempty"`         // 4: P, the patch side; ImageSize must be a multiple
	Dim         int     `json:"dim,omitempty"`           // 64: D, the embedding width
	Depth       int     `json:"depth,omitempty"`         // 4: L, transformer blocks
	Heads       int     `json:"heads,omitempty"`         // 4: H; Dim must be a multiple
	MLPRatio    float64 `json:"mlp_ratio,omitempty"`     // 4: hidden width of the MLP over Dim
	Classes     int     `json:"classes,omitempty"`       // 10
	NoDistToken bool    `json:"no_dist_token,omitempty"` // false: DeiT; true: a plain ViT with one head
	// The stochastic depth is a training setting, TrainConfig.DropPath. A checkpoint or
	// run.json of an older version records it here as drop_path; decoding ignores it.
}

// Preset returns a named architecture: "fm-tiny" (the default),
// "deit-tiny" or "deit-small" (224×224×3, P=16, 1000 classes).
func Preset(name string) (Config, error) {
	switch name {
	case "", "fm-tiny":
		return Config{}.WithDefaults(), nil
	case "deit-tiny":
		return Config{ImageSize: 224, Channels: 3, Patch: 16, Dim: 192, Depth: 12, Heads: 3, MLPRatio: 4, Classes: 1000}.WithDefaults(), nil
	case "deit-small":
		return Config{ImageSize: 224, Channels: 3, Patch: 16, Dim: 384, Depth: 12, Heads: 6, MLPRatio: 4, Classes: 1000}.WithDefaults(), nil
	}
	return Config{}, fmt.Errorf("%w: unknown preset %q (fm-tiny, deit-tiny, deit-small)", ErrConfig, name)
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.ImageSize, 28)
	def(&c.Channels, 1)
	def(&c.Patch, 4)
	def(&c.Dim, 64)
	def(&c.Depth, 4)
	def(&c.Heads, 4)
	def(&c.Classes, 10)
	if c.MLPRatio == 0 {
		c.MLPRatio = 4
	}
	return c
}

// Validate reports the first field that cannot work.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.ImageSize < 0 || c.Channels < 0 || c.Patch < 0 || c.Dim < 0 || c.Depth < 0 || c.Heads < 0 || c.Classes < 0 || c.MLPRatio < 0:
		return fmt.Errorf("%w: negative size in %+v", ErrConfig, c)
	case c.ImageSize%c.Patch != 0:
		return fmt.Errorf("%w: image_size %d is not a multiple of patch %d", ErrConfig, c.ImageSize, c.Patch)
	case c.Dim%c.Heads != 0:
		return fmt.Errorf("%w: dim %d is not a multiple of heads %d", ErrConfig, c.Dim, c.Heads)
	case c.Hidden() < 1:
		return fmt.Errorf("%w: mlp_ratio %g gives no hidden units", ErrConfig, c.MLPRatio)
	}
	return nil
}

// Patches is N, the number of patches; Tokens is N plus the class and
// (unless NoDistToken) distillation tokens.
func (c Config) Patches() int { s := c.ImageSize / c.Patch; return s * s }
func (c Config) Tokens() int {
	if c.NoDistToken {
		return c.Patches() + 1
	}
	return c.Patches() + 2
}

// Hidden is the MLP's hidden width, int(Dim·MLPRatio) as timm.
func (c Config) Hidden() int { return int(float64(c.Dim) * c.MLPRatio) }

// archDiff names the first architecture field where a and b differ, or "".
func archDiff(a, b Config) string {
	if f, ok := fielddiff.First("", a.WithDefaults(), b.WithDefaults()); ok {
		return fmt.Sprintf("%s: %v vs %v", f.Path, f.A, f.B)
	}
	return ""
}
