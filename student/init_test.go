package student

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// initSource is a model of architecture c with seeded weights far from New's (so a tensor
// left at its initial value shows), and its parameters as Init takes them.
func initSource(t *testing.T, c Config, seed uint64) (*Model, []Param) {
	t.Helper()
	m, err := New(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, p := range m.Params() {
		for i := range p.Data {
			p.Data[i] += float32(0.1 * rng.NormFloat64())
		}
	}
	return m, m.Params()
}

func testBatchImages(c Config, n int) []float32 {
	rng := rand.New(rand.NewPCG(5, 5))
	x := make([]float32, n*c.Channels*c.ImageSize*c.ImageSize)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func TestInitSameConfig(t *testing.T) {
	c := Config{Dim: 32, Depth: 2, Heads: 2}.WithDefaults()
	src, params := initSource(t, c, 1)
	m, r, err := Init(c, params, "src", InitOptions{Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.params, src.params) {
		t.Fatal("parameters differ from the file's")
	}
	if len(r.Notes()) != 0 || r.Copied != len(params) || r.GridFrom != 7 || r.GridTo != 7 {
		t.Errorf("report %+v, notes %q; want every tensor copied and no notes", r, r.Notes())
	}
	x := testBatchImages(c, 3)
	c1, d1, err := src.Infer(x, 3)
	if err != nil {
		t.Fatal(err)
	}
	c2, d2, err := m.Infer(x, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c1, c2) || !slices.Equal(d1, d2) {
		t.Error("outputs differ from the source model's")
	}
}

func TestInitResamplesPosEmbed(t *testing.T) {
	c := Config{Dim: 32, Depth: 2, Heads: 2}.WithDefaults()
	src, params := initSource(t, c, 2)
	big := c
	big.ImageSize = 56
	m, r, err := Init(big, params, "src", InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.GridFrom != 7 || r.GridTo != 14 || len(r.Notes()) != 1 || !strings.Contains(r.Notes()[0], "7×7 to a 14×14") {
		t.Errorf("report %+v, notes %q", r, r.Notes())
	}
	sp, _ := src.Param("pos_embed")
	mp, _ := m.Param("pos_embed")
	if want := resamplePosEmbed(sp.Data, 2, 7, 14, 32); !slices.Equal(mp.Data, want) {
		t.Error("pos_embed is not the resampled grid")
	}
	if !slices.Equal(mp.Data[:2*32], sp.Data[:2*32]) {
		t.Error("class and distillation rows changed")
	}
	for _, name := range []string{"patch_embed.proj.weight", "blocks.1.mlp.fc2.weight", "head_dist.bias"} {
		a, _ := src.Param(name)
		b, _ := m.Param(name)
		if !slices.Equal(a.Data, b.Data) {
			t.Errorf("%s not copied", name)
		}
	}
	cls, dist, err := m.Infer(testBatchImages(big, 2), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range append(cls, dist...) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("non-finite logit %v", v)
		}
	}
}

func TestInitWithoutDistToken(t *testing.T) {
	plain := Config{Dim: 32, Depth: 2, Heads: 2, NoDistToken: true}.WithDefaults()
	src, params := initSource(t, plain, 3)
	c := plain
	c.NoDistToken = false
	m, r, err := Init(c, params, "vit", InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.DistFromCls || !r.HeadDistFromHead || len(r.Notes()) != 2 {
		t.Errorf("report %+v, notes %q", r, r.Notes())
	}
	get := func(m *Model, name string) []float32 { p, _ := m.Param(name); return p.Data }
	if !slices.Equal(get(m, "dist_token"), get(src, "cls_token")) || !slices.Equal(get(m, "head_dist.weight"), get(src, "head.weight")) {
		t.Error("dist_token or head_dist is not the class token's or head's")
	}
	pe, spe := get(m, "pos_embed"), get(src, "pos_embed")
	if !slices.Equal(pe[:32], spe[:32]) || !slices.Equal(pe[32:64], spe[:32]) || !slices.Equal(pe[64:], spe[32:]) {
		t.Error("pos_embed: want the class row twice, then the grid")
	}
	// A distilled file into a plain ViT is refused: its token would be dropped.
	if _, _, err := Init(plain, m.Params(), "deit", InitOptions{}); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "dist_token") {
		t.Errorf("distilled into plain: %v", err)
	}
}

func TestInitHeads(t *testing.T) {
	c := Config{Dim: 32, Depth: 2, Heads: 2, Classes: 1000}.WithDefaults()
	src, params := initSource(t, c, 4)
	ten := c
	ten.Classes = 10
	_, _, err := Init(ten, params, "in1k", InitOptions{})
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "head.weight is [1000 32] in the file, [10 32] in the model") ||
		!strings.Contains(err.Error(), "1000 classes in the file, 10 in the config") {
		t.Errorf("another class count without NewHeads: %v", err)
	}
	m, r, err := Init(ten, params, "in1k", InitOptions{NewHeads: true, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !r.NewHeads || r.ClassesFrom != 1000 || r.ClassesTo != 10 || len(r.Notes()) != 1 {
		t.Errorf("report %+v, notes %q", r, r.Notes())
	}
	fresh, _ := New(ten, 7)
	for _, name := range []string{"head.weight", "head.bias", "head_dist.weight", "head_dist.bias"} {
		a, _ := fresh.Param(name)
		b, _ := m.Param(name)
		if !slices.Equal(a.Data, b.Data) {
			t.Errorf("%s is not New's initial value", name)
		}
	}
	a, _ := src.Param("blocks.0.attn.qkv.weight")
	b, _ := m.Param("blocks.0.attn.qkv.weight")
	if !slices.Equal(a.Data, b.Data) {
		t.Error("the body was not loaded")
	}
	// NewHeads with the same class count loads the heads.
	m, r, err = Init(c, params, "in1k", InitOptions{NewHeads: true})
	if err != nil || r.NewHeads {
		t.Fatalf("same classes with NewHeads: %v, %+v", err, r)
	}
	if h, _ := m.Param("head.weight"); !slices.Equal(h.Data, params[len(params)-4].Data) {
		t.Error("head not loaded")
	}
}

func TestInitRefuses(t *testing.T) {
	c := Config{Dim: 32, Depth: 2, Heads: 2}.WithDefaults()
	_, params := initSource(t, c, 5)
	with := func(f func(c *Config)) Config { x := c; f(&x); return x }
	drop := func(name string) []Param {
		return slices.DeleteFunc(slices.Clone(params), func(p Param) bool { return p.Name == name })
	}
	for _, tc := range []struct {
		name   string
		cfg    Config
		params []Param
		want   string
	}{
		{"deeper model", with(func(c *Config) { c.Depth = 3 }), params, "no tensor blocks.2.norm1.weight: the file has 2 blocks, the model depth 3"},
		{"shallower model", with(func(c *Config) { c.Depth = 1 }), params, "tensor blocks.1.norm1.weight is not a parameter of the model: the file has 2 blocks, the model depth 1"},
		{"dim", with(func(c *Config) { c.Dim = 64; c.Heads = 4 }), params, "tensor cls_token is [1 1 32] in the file, [1 1 64] in the model"},
		{"patch", with(func(c *Config) { c.Patch = 7 }), params, "tensor patch_embed.proj.weight is [32 1 4 4] in the file, [32 1 7 7] in the model"},
		{"mlp", with(func(c *Config) { c.MLPRatio = 2 }), params, "tensor blocks.0.mlp.fc1.weight is [128 32] in the file, [64 32] in the model"},
		{"channels", with(func(c *Config) { c.Channels = 3 }), params, "tensor patch_embed.proj.weight is [32 1 4 4] in the file, [32 3 4 4] in the model"},
		{"missing tensor", c, drop("norm.bias"), "no tensor norm.bias"},
		{"extra tensor", c, append(slices.Clone(params), Param{Name: "fc_norm.weight", Shape: []int{32}, Data: make([]float32, 32)}), "tensor fc_norm.weight is not a parameter"},
		{"grid not square", c, func() []Param {
			p := slices.Clone(params)
			for i := range p {
				if p[i].Name == "pos_embed" {
					p[i] = Param{Name: "pos_embed", Shape: []int{1, 2 + 48, 32}, Data: p[i].Data[:50*32]}
				}
			}
			return p
		}(), "48 rows after 2 prefix rows are not a square patch grid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Init(tc.cfg, tc.params, "file.safetensors", InitOptions{})
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "file.safetensors") {
				t.Errorf("got %v, want ErrMismatch naming the file and %q", err, tc.want)
			}
		})
	}
}
