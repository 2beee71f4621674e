package store

// IndexSet is a set of image indices, one bit each: 160 KB for ImageNet's
// 1.28 million images, so resume never needs ranges or a database.
type IndexSet struct {
	words []uint64
	n     int
}

// Add inserts i (i ≥ 0).
func (s *IndexSet) Add(i int64) {
	w := int(i >> 6)
	if w >= len(s.words) {
		s.words = append(s.words, make([]uint64, w-len(s.words)+1)...)
	}
	bit := uint64(1) << (uint(i) & 63)
	if s.words[w]&bit == 0 {
		s.words[w] |= bit
		s.n++
	}
}

// Contains reports whether i is in the set.
func (s *IndexSet) Contains(i int64) bool {
	if s == nil || i < 0 {
		return false
	}
	w := int(i >> 6)
	return w < len(s.words) && s.words[w]&(uint64(1)<<(uint(i)&63)) != 0
}

// Len is the number of indices in the set.
func (s *IndexSet) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}
