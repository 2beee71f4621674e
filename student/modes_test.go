package student

import (
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestModes: each mode takes its words (as a flag and in JSON) and refuses any other at parse
// time, naming the words; JSON also reads the words an older version recorded, a flag does not.
func TestModes(t *testing.T) {
	type mode interface {
		flag.Value
		UnmarshalText([]byte) error
	}
	for _, tc := range []struct {
		name   string
		v      func() mode
		good   []string
		legacy map[string]string // recorded word → value
		want   string            // the error's list of words
	}{
		{"distill", func() mode { return new(Distill) }, []string{"none", "soft", "hard"}, nil, "want none, soft or hard"},
		{"kl_norm", func() mode { return new(KLNorm) }, []string{"batch", "numel"}, nil, "want batch or numel"},
		{"fuse", func() mode { return new(Fuse) }, []string{"probs", "logits"}, map[string]string{"softmax": "probs"}, "want probs or logits"},
		{"recipe", func() mode { return new(Recipe) }, []string{"default", "deit", "finetune"}, map[string]string{"short": "default"}, "want default, deit or finetune"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, w := range tc.good {
				v := tc.v()
				if err := v.Set(w); err != nil || v.String() != w {
					t.Errorf("Set(%q): %v, %q", w, err, v.String())
				}
				if err := json.Unmarshal([]byte(`"`+w+`"`), v); err != nil || v.String() != w {
					t.Errorf("json %q: %v, %q", w, err, v.String())
				}
			}
			for old, now := range tc.legacy {
				v := tc.v()
				if err := json.Unmarshal([]byte(`"`+old+`"`), v); err != nil || v.String() != now {
					t.Errorf("json %q (an older version's): %v, %q, want %q", old, err, v.String(), now)
				}
				if err := tc.v().Set(old); err == nil {
					t.Errorf("Set(%q) accepted an older version's word", old)
				}
			}
			for _, bad := range []string{"NONE", "x", " probs"} {
				if err := tc.v().Set(bad); err == nil || err.Error() != tc.want {
					t.Errorf("Set(%q): %v, want %q", bad, err, tc.want)
				}
				if err := json.Unmarshal([]byte(`"`+bad+`"`), tc.v()); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("json %q: %v, want ErrConfig and %q", bad, err, tc.want)
				}
			}
		})
	}
	if _, err := ParseDistill("kd"); !errors.Is(err, ErrConfig) || err.Error() != `student: invalid config: distill "kd": want none, soft or hard` {
		t.Errorf("ParseDistill(kd): %v", err)
	}
}
