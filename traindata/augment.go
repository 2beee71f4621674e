package traindata

import (
	"fmt"

	"github.com/deitkd/deitkd/dataset"
)

// augmented reports whether train-time augmentations beyond the crop and flip are on.
func (s *Set) augmented() bool { return s.opts.Augment.On() }

func (s *Set) augmentNote() string {
	a := s.opts.Augment
	ra := "none"
	if a.RandAugment != nil && a.RandAugment.Layers > 0 {
		ra = a.RandAugment.String()
	}
	note := fmt.Sprintf("train-time augmentation after each crop and flip: RandAugment %s, random erasing p %g", ra, a.EraseProb)
	if m := a.Mix; m.On() {
		note += fmt.Sprintf(", mixup α %g / cutmix α %g (p %g, switch %g) with the batch's mirrored row; a mixed row's teacher "+
			"target is the λ-mix of the two stored targets (the stored-teacher approximation, as FKD does; not the teacher's "+
			"output on the mixed pixels)", m.MixupAlpha, m.CutMixAlpha, m.Prob, m.SwitchProb)
	}
	return note
}

// mixRows mixes the rendered rows of b in place: row r with row n−1−r (timm's flipped batch;
// the middle row of an odd batch stays unmixed), each with its own parameters drawn from
// (seed, its image, its draw) by Options.Mix. Partners are read from the unmixed pixels and
// targets. keys[r] is row r's (image index, view number) key.
func (s *Set) mixRows(b *Batch, seed uint64, keys [][2]int) {
	n, per, K := b.Len(), dataset.TensorLen(s.opts.Channels, s.opts.Size), s.opts.Classes
	orig := append(b.scratch[:0], b.Images...)
	b.scratch = orig
	var probs []float32
	if b.TeacherProbs != nil {
		probs = append(b.scratchProbs[:0], b.TeacherProbs...)
		b.scratchProbs = probs
	}
	for r := range n {
		p := n - 1 - r
		b.MixLambda[r], b.MixLabels[r], b.MixPartner[r], b.Mix[r] = 1, b.Labels[r], -1, dataset.Mix{}
		if b.MixTeacherHard != nil {
			b.MixTeacherHard[r] = b.TeacherHard[r]
		}
		m, ok := s.opts.Augment.Mix.Draw(seed, keys[r][0], keys[r][1], s.opts.Size)
		if !ok || p == r {
			continue
		}
		m.Apply(b.Images[r*per:(r+1)*per], orig[p*per:(p+1)*per], s.opts.Channels, s.opts.Size)
		b.Mix[r], b.MixPartner[r], b.MixLambda[r], b.MixLabels[r] = m, p, m.Lambda, b.Labels[p]
		if b.MixTeacherHard != nil {
			b.MixTeacherHard[r] = b.TeacherHard[p]
		}
		if probs != nil {
			l, k := m.Lambda, float32(1-float64(m.Lambda))
			own, other := b.TeacherProbs[r*K:(r+1)*K], probs[p*K:(p+1)*K]
			for i := range own {
				own[i] = float32(own[i]*l) + float32(other[i]*k)
			}
		}
	}
}

// replayMix mixes stored row r of b (plan ref rf, already rendered with its replayed Augment)
// with its stored partner, as precompute did: the partner image's random view and its
// augmentation drawn again (dataset.DrawnView) from the store's deitkd.views and deitkd.augment,
// rendered, then Mix.Apply. Unmixed rows get λ 1 and their own label.
func (s *Set) replayMix(b *Batch, r int, rf ref) error {
	per := dataset.TensorLen(s.opts.Channels, s.opts.Size)
	b.Mix[r], b.MixPartner[r], b.MixLambda[r], b.MixLabels[r] = dataset.Mix{}, -1, 1, b.Labels[r]
	if b.MixTeacherHard != nil {
		b.MixTeacherHard[r] = b.TeacherHard[r] // the teacher labelled the mixed pixels
	}
	if rf.row < 0 || s.rows[rf.row].mix == nil {
		return nil
	}
	m := s.rows[rf.row].mix
	pi, pv := int(m.Index), int(m.View)
	img, err := s.image(pi)
	if err != nil {
		return fmt.Errorf("mix partner %s: %w", s.src.Item(pi).ID, err)
	}
	view, a, err := dataset.DrawnView(img.Width, img.Height, pi, pv, s.cfg, s.vc, *s.meta.Augment)
	if err != nil {
		return fmt.Errorf("mix partner %s view %d: %w", s.src.Item(pi).ID, pv, err)
	}
	if cap(b.scratch) < per {
		b.scratch = make([]float32, per)
	}
	partner := b.scratch[:per]
	if err := dataset.RenderAugmented(partner, img, view, a, s.opts.Size, s.cfg); err != nil {
		return fmt.Errorf("mix partner %s view %d: %w", s.src.Item(pi).ID, pv, err)
	}
	m.Apply(b.Images[r*per:(r+1)*per], partner, s.opts.Channels, s.opts.Size)
	b.Mix[r], b.MixLambda[r] = m.Mix, m.Lambda
	if l, ok := s.labelOf[int32(pi)]; ok && l >= 0 {
		b.MixLabels[r] = int(l)
	}
	return nil
}
