package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrBadIDX is wrapped by every error of reading MNIST-format files.
var ErrBadIDX = errors.New("dataset: bad IDX file")

// maxIDXBytes bounds one IDX file's payload: 4 GiB, 85 times MNIST's training images.
const maxIDXBytes = 1 << 32

// ParseIDX reads an IDX file of unsigned bytes (type 0x08; MNIST and Fashion-MNIST use no
// other): its dimensions and its data, which must have exactly their product in bytes. gzip
// input is recognised by its magic and inflated.
func ParseIDX(r io.Reader) (dims []int, data []byte, err error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: gzip: %v", ErrBadIDX, err)
		}
		defer z.Close()
		br = bufio.NewReader(z)
	}
	var head [4]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return nil, nil, fmt.Errorf("%w: header: %v", ErrBadIDX, err)
	}
	if head[0] != 0 || head[1] != 0 {
		return nil, nil, fmt.Errorf("%w: magic % x", ErrBadIDX, head)
	}
	if head[2] != 0x08 {
		return nil, nil, fmt.Errorf("%w: element type 0x%02x, only unsigned bytes (0x08) are read", ErrBadIDX, head[2])
	}
	nd := int(head[3])
	if nd == 0 {
		return nil, nil, fmt.Errorf("%w: no dimensions", ErrBadIDX)
	}
	size := uint64(1)
	for range nd {
		var d [4]byte
		if _, err := io.ReadFull(br, d[:]); err != nil {
			return nil, nil, fmt.Errorf("%w: dimensions: %v", ErrBadIDX, err)
		}
		n := binary.BigEndian.Uint32(d[:])
		size *= uint64(n)
		if size > maxIDXBytes {
			return nil, nil, fmt.Errorf("%w: dimensions %v… exceed %d bytes", ErrBadIDX, append(dims, int(n)), uint64(maxIDXBytes))
		}
		dims = append(dims, int(n))
	}
	// Read what is there (at most one byte past the claim) instead of allocating what the
	// header claims: a forged header then costs nothing.
	// Start from the claimed size (capped at 64 MiB, Fashion-MNIST's 47 MB fits) so a real file
	// is read without regrowing, and a forged one grows only as far as its bytes go.
	buf := bytes.NewBuffer(make([]byte, 0, min(size+1, 64<<20)))
	_, err = buf.ReadFrom(io.LimitReader(br, int64(size)+1))
	data = buf.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: data: %v", ErrBadIDX, err)
	}
	if uint64(len(data)) != size {
		return nil, nil, fmt.Errorf("%w: %d data bytes, dimensions %v need %d", ErrBadIDX, len(data), dims, size)
	}
	return dims, data, nil
}

// idxSource holds MNIST-format images in memory.
type idxSource struct {
	name       string // the prefix's base name: "train", "t10k"
	rows, cols int
	pix        []byte
	labels     []byte // nil: unlabelled
	n          int
}

// OpenIDX reads PREFIX-images-idx3-ubyte[.gz] and, if present, PREFIX-labels-idx1-ubyte[.gz].
// Ids are "<base name of PREFIX>/%08d".
func OpenIDX(prefix string) (Source, error) {
	imgPath, err := findIDX(prefix + "-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	dims, pix, err := readIDXFile(imgPath)
	if err != nil {
		return nil, err
	}
	if len(dims) != 3 {
		return nil, wrongIDXKind(imgPath, len(dims), 3)
	}
	if dims[1] == 0 || dims[2] == 0 {
		return nil, fmt.Errorf("%w: %s: dimensions %v, want (count, rows, cols)", ErrBadIDX, imgPath, dims)
	}
	s := &idxSource{name: filepath.Base(prefix), n: dims[0], rows: dims[1], cols: dims[2], pix: pix}
	if s.n == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoImages, imgPath)
	}
	if s.rows*s.cols > MaxPixels {
		return nil, fmt.Errorf("%w: %s: %d×%d", ErrTooLarge, imgPath, s.cols, s.rows)
	}
	labPath, err := findIDX(prefix + "-labels-idx1-ubyte")
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	ldims, labels, err := readIDXFile(labPath)
	if err != nil {
		return nil, err
	}
	if len(ldims) != 1 {
		return nil, wrongIDXKind(labPath, len(ldims), 1)
	}
	if ldims[0] != s.n {
		return nil, fmt.Errorf("%w: %s: dimensions %v, want (%d) to match the images", ErrBadIDX, labPath, ldims, s.n)
	}
	s.labels = labels
	return s, nil
}

// wrongIDXKind says what an IDX file of nd dimensions is and what magic the file named p
// should have had (want dimensions: 3 images, 1 labels), since a swapped or wrong file is the
// usual cause and "dimensions [60000 28 28]" does not say so.
func wrongIDXKind(p string, nd, want int) error {
	kind := func(nd int) string {
		switch nd {
		case 1:
			return "an IDX labels file (1-D uint8)"
		case 3:
			return "an IDX images file (3-D uint8)"
		}
		return fmt.Sprintf("a %d-D uint8 IDX file", nd)
	}
	wantName := "an images file"
	if want == 1 {
		wantName = "a labels file"
	}
	return fmt.Errorf("%w: %s: magic 0x%08x is %s; %s has magic 0x%08x",
		ErrBadIDX, p, 0x0800|nd, kind(nd), wantName, 0x0800|want)
}

// findIDX prefers the plain file, then name.gz.
func findIDX(name string) (string, error) {
	for _, p := range []string{name, name + ".gz"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("dataset: neither %s nor %s.gz: %w", name, name, os.ErrNotExist)
}

func readIDXFile(p string) ([]int, []byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	dims, data, err := ParseIDX(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	return dims, data, nil
}

func (s *idxSource) Len() int             { return s.n }
func (s *idxSource) ClassNames() []string { return nil }

func (s *idxSource) Item(i int) Item {
	label := -1
	if s.labels != nil {
		label = int(s.labels[i])
	}
	return Item{Index: i, ID: fmt.Sprintf("%s/%08d", s.name, i), Label: label}
}

func (s *idxSource) Load(i, channels int) (*Image, error) {
	if channels != 1 && channels != 3 {
		return nil, fmt.Errorf("decode %s: %w, not %d", s.Item(i).ID, ErrChannels, channels)
	}
	n := s.rows * s.cols
	g := s.pix[i*n : (i+1)*n]
	m := NewImage(s.cols, s.rows, channels)
	if channels == 1 {
		copy(m.Pix, g)
		return m, nil
	}
	for j, v := range g {
		m.Pix[3*j], m.Pix[3*j+1], m.Pix[3*j+2] = v, v, v
	}
	return m, nil
}
