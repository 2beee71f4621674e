package student

import (
	"fmt"
	"slices"
)

// The training's named modes: each a type with one spelling per value, the word a flag takes
// and the word run.json and the checkpoint record. Each is a flag.Value (Set) and a
// json/TextUnmarshaler that refuses any other word, so a bad value is refused where it is
// parsed, not on a step. The zero value "" of each is "not set": LossConfig and NewRecipe
// fill it in.

// Distill is the distillation loss (see LossConfig).
type Distill string

const (
	DistillNone Distill = "none" // labels only
	DistillSoft Distill = "soft" // KL to the teacher's softmax at τ
	DistillHard Distill = "hard" // CE to the teacher's argmax
)

// KLNorm is the normalisation of the soft loss (see LossConfig).
type KLNorm string

const (
	KLBatch KLNorm = "batch" // KL summed over classes, averaged over the batch: the paper, timm
	KLNumel KLNorm = "numel" // divided by B·K: DeiT's code
)

// Fuse is how evaluation (and an export's fused output) combines the two heads.
type Fuse string

const (
	FuseProbs  Fuse = "probs"  // the mean of the two softmaxes: the paper
	FuseLogits Fuse = "logits" // the mean of the two logits: DeiT's and timm's code
)

// Recipe names a training recipe (NewRecipe).
type Recipe string

const (
	RecipeDefault Recipe = "default" // tuned for short runs
	RecipeDeiT    Recipe = "deit"    // DeiT's ImageNet recipe
	// RecipeFinetune fine-tunes a trained student (train --init), e.g. at a higher resolution.
	RecipeFinetune Recipe = "finetune"
)

// word returns the value of words that s names, or an error listing the words.
func word[T ~string](s string, words ...T) (T, error) {
	if slices.Contains(words, T(s)) {
		return T(s), nil
	}
	list := ""
	for i, w := range words {
		switch {
		case i == 0:
		case i == len(words)-1:
			list += " or "
		default:
			list += ", "
		}
		list += string(w)
	}
	return "", fmt.Errorf("want %s", list)
}

// parseWord is word with an error wrapping ErrConfig that names what and s.
func parseWord[T ~string](what, s string, words ...T) (T, error) {
	v, err := word(s, words...)
	if err != nil {
		return "", fmt.Errorf("%w: %s %q: %w", ErrConfig, what, s, err)
	}
	return v, nil
}

// ParseDistill returns the Distill s names.
func ParseDistill(s string) (Distill, error) {
	return parseWord("distill", s, DistillNone, DistillSoft, DistillHard)
}

// ParseKLNorm returns the KLNorm s names.
func ParseKLNorm(s string) (KLNorm, error) { return parseWord("kl_norm", s, KLBatch, KLNumel) }

// ParseFuse returns the Fuse s names.
func ParseFuse(s string) (Fuse, error) { return parseWord("fuse", s, FuseProbs, FuseLogits) }

// ParseRecipe returns the Recipe s names.
func ParseRecipe(s string) (Recipe, error) {
	return parseWord("recipe", s, RecipeDefault, RecipeDeiT, RecipeFinetune)
}

func (d Distill) String() string { return string(d) }
func (k KLNorm) String() string  { return string(k) }
func (f Fuse) String() string    { return string(f) }
func (r Recipe) String() string  { return string(r) }

// Set parses s (flag.Value): one word per value; the error lists them, for the flag package
// to name the flag and the value.
func (d *Distill) Set(s string) (err error) {
	*d, err = word(s, DistillNone, DistillSoft, DistillHard)
	return err
}
func (k *KLNorm) Set(s string) (err error) { *k, err = word(s, KLBatch, KLNumel); return err }
func (f *Fuse) Set(s string) (err error)   { *f, err = word(s, FuseProbs, FuseLogits); return err }
func (r *Recipe) Set(s string) (err error) {
	*r, err = word(s, RecipeDefault, RecipeDeiT, RecipeFinetune)
	return err
}

// UnmarshalText parses a recorded word; an empty one stays unset. It also reads the words an
// older version recorded: a Fuse "softmax" (FuseProbs) and a Recipe "short" (RecipeDefault),
// so that its run.json files and checkpoints still load and resume.
func (d *Distill) UnmarshalText(b []byte) error { return unmarshalWord(d, b, nil) }
func (k *KLNorm) UnmarshalText(b []byte) error  { return unmarshalWord(k, b, nil) }
func (f *Fuse) UnmarshalText(b []byte) error {
	return unmarshalWord(f, b, map[string]Fuse{"softmax": FuseProbs})
}
func (r *Recipe) UnmarshalText(b []byte) error {
	return unmarshalWord(r, b, map[string]Recipe{"short": RecipeDefault})
}

func unmarshalWord[T ~string, P interface {
	*T
	Set(string) error
}](v P, b []byte, legacy map[string]T) error {
	if w, ok := legacy[string(b)]; ok {
		*v = w
		return nil
	}
	if len(b) == 0 {
		*v = ""
		return nil
	}
	if err := v.Set(string(b)); err != nil {
		return fmt.Errorf("%w: %q: %w", ErrConfig, b, err)
	}
	return nil
}
