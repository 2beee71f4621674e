package train

import (
	"fmt"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/student"
)

// DeiTAugment is DeiT's train-time augmentation (deit/main.py's defaults: --aa
// rand-m9-mstd0.5-inc1, --reprob 0.25 with --remode pixel, --mixup 0.8, --cutmix 1.0,
// --mixup-prob 1.0, --mixup-switch-prob 0.5), RecipeDeiT's against a fixed teacher. The rest
// of DeiT's recipe (label smoothing 0.1, drop-path 0.1) is student.NewRecipe's.
func DeiTAugment() dataset.AugmentConfig {
	ra, err := dataset.ParseRandAugment("rand-m9-mstd0.5-inc1")
	if err != nil {
		panic(err) // a constant spec
	}
	return dataset.AugmentConfig{RandAugment: &ra, EraseProb: 0.25,
		Mix: dataset.MixConfig{MixupAlpha: 0.8, CutMixAlpha: 1.0, Prob: 1.0, SwitchProb: 0.5}}
}

// augment resolves the run's train-time augmentation: the recipe's (RecipeDeiT: DeiTAugment,
// for a single-view store only: stored views are replayed as stored; the default recipe:
// none), then each option that is set, literally. It returns a log line where the recipe's
// does not apply.
func augment(o Options, tc student.TrainConfig) (dataset.AugmentConfig, string, error) {
	var a dataset.AugmentConfig
	why := ""
	if tc.Recipe == student.RecipeDeiT {
		views, err := storeViews(o.Labels)
		if err != nil {
			return a, "", err
		}
		if views == 1 {
			a = DeiTAugment()
		} else {
			why = fmt.Sprintf("recipe deit: its train-time RandAugment, erasing and mixing are for a single-view store; %s has %d views per image, replayed as stored", o.Labels, views)
		}
	}
	if o.RandAugment != nil {
		ra := *o.RandAugment
		a.RandAugment = &ra
		if ra.Layers == 0 {
			a.RandAugment = nil
		}
	}
	for _, f := range []struct {
		dst *float64
		v   *float64
	}{{&a.EraseProb, o.EraseProb}, {&a.Mix.MixupAlpha, o.MixupAlpha}, {&a.Mix.CutMixAlpha, o.CutMixAlpha},
		{&a.Mix.Prob, o.MixProb}, {&a.Mix.SwitchProb, o.MixSwitch}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if a.Mix == (dataset.MixConfig{Prob: a.Mix.Prob, SwitchProb: a.Mix.SwitchProb}) {
		a.Mix = dataset.MixConfig{} // no alpha: no mixing, whatever its probabilities
	}
	if err := a.Check(); err != nil {
		return a, "", fmt.Errorf("%w: %w", ErrOptions, err)
	}
	return a, why, nil
}

// storeViews is the view count a label store (folder or manifest file) records.
func storeViews(path string) (int, error) {
	man, err := store.ManifestPath(path)
	if err != nil {
		return 0, err
	}
	m, err := store.ReadManifest(man)
	if err != nil {
		return 0, err
	}
	return m.Meta().Views.Count, nil
}
