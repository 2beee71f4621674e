package dataset

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Sentinel errors of opening a source.
var (
	ErrNoImages = errors.New("dataset: no images found")
	ErrBadList  = errors.New("dataset: bad list file")
	// ErrNotRegular: an image path that names a FIFO, device, socket or folder.
	ErrNotRegular = errors.New("dataset: not a regular file")
	// ErrCycle: a folder tree whose symbolic links lead back to a folder being listed.
	ErrCycle = errors.New("dataset: folder cycle")
)

// Item is one image of a source.
type Item struct {
	Index int    // position in the source's canonical order
	ID    string // image_id: path relative to the root with '/' separators; IDX: "train/00000123"
	Label int    // ground-truth class, -1 where unknown
}

// Source is an ordered, immutable collection of images. All methods are safe for concurrent
// use; Item and Load take an index in [0, Len()).
type Source interface {
	Len() int
	// ClassNames are the class folders' names in class-index order, nil when the source has
	// none (a flat folder, a list file, IDX files).
	ClassNames() []string
	Item(i int) Item
	// Load reads and decodes image i into channels (1 or 3) samples as PIL's convert("L") or
	// convert("RGB") gives them. Errors name the image: "decode png/a.png: dataset: ...".
	Load(i, channels int) (*Image, error)
}

// Open opens a source from its spec:
//
//	DIR          a folder: one subfolder per class (torchvision's ImageFolder: class names
//	             sorted, files with an image extension anywhere under a class folder, in
//	             os.walk order); a folder without subfolders is a flat, unlabelled set
//	list:FILE    one "path" or "path<TAB>label" a line, paths relative to FILE's folder; blank
//	             lines and lines starting with '#' are skipped; sorted by path
//	idx:PREFIX   MNIST-format PREFIX-images-idx3-ubyte[.gz] and, if present,
//	             PREFIX-labels-idx1-ubyte[.gz], decoded once into memory
func Open(spec string) (Source, error) {
	switch {
	case strings.HasPrefix(spec, "list:"):
		return openList(strings.TrimPrefix(spec, "list:"))
	case strings.HasPrefix(spec, "idx:"):
		return OpenIDX(strings.TrimPrefix(spec, "idx:"))
	}
	return openFolder(spec)
}

// IDHash is the hex sha256 of the source's image ids in order, each followed by '\n': the
// store records it so a rerun or the trainer can tell the same image list from another.
func IDHash(s Source) string {
	h := sha256.New()
	for i := range s.Len() {
		h.Write([]byte(s.Item(i).ID))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// imageExts are torchvision's IMG_EXTENSIONS plus ".gif". Files with .ppm, .pgm or .tif are
// listed, as ImageFolder lists them, so indices agree with torchvision's; .ppm/.pgm then fail to
// decode (not supported here).
var imageExts = []string{".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif"}

func hasImageExt(name string) bool {
	return slices.Contains(imageExts, strings.ToLower(filepath.Ext(name)))
}

// fileSource is a folder tree or a list file: files under root.
type fileSource struct {
	root    string
	items   []Item
	classes []string
}

func (s *fileSource) Len() int             { return len(s.items) }
func (s *fileSource) ClassNames() []string { return s.classes }
func (s *fileSource) Item(i int) Item      { return s.items[i] }

func (s *fileSource) Load(i, channels int) (*Image, error) {
	id := s.items[i].ID
	data, err := s.read(id)
	if err != nil {
		return nil, err
	}
	m, err := Decode(data, channels)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", id, err)
	}
	return m, nil
}

// MaxFileBytes is the most bytes read of one image file: an uncompressed MaxPixels image of four
// 16-bit channels and 1 MiB of headers and metadata. Anything larger cannot decode within
// MaxPixels, and a cap keeps a file that grows without end from being read into memory.
const MaxFileBytes = 8*MaxPixels + 1<<20

// read reads image file id under the source's root. Only regular files are opened (a symbolic
// link is followed to its target): a FIFO would block for ever and a device such as /dev/zero
// reads without end. Errors name the file and wrap ErrNotRegular or ErrTooLarge.
func (s *fileSource) read(id string) ([]byte, error) {
	name := filepath.Join(s.root, filepath.FromSlash(id))
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", id, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: %w (%s)", id, ErrNotRegular, fi.Mode().Type())
	}
	if fi.Size() > MaxFileBytes {
		return nil, fmt.Errorf("read %s: %w: %d bytes, over %d", id, ErrTooLarge, fi.Size(), int64(MaxFileBytes))
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", id, err)
	}
	defer f.Close()
	// The file may have been replaced or grown since Stat: read at most one byte past the cap.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", id, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("read %s: %w: over %d bytes", id, ErrTooLarge, int64(MaxFileBytes))
	}
	return data, nil
}

func openFolder(root string) (*fileSource, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("dataset: open %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("dataset: %s is not a folder (a list file is list:FILE, MNIST files idx:PREFIX)", root)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	s := &fileSource{root: root}
	var flat []string
	for _, e := range entries { // ReadDir sorts by name, as torchvision's sorted(scandir) does
		if isDir(filepath.Join(root, e.Name())) {
			s.classes = append(s.classes, e.Name())
		} else if hasImageExt(e.Name()) {
			flat = append(flat, e.Name())
		}
	}
	if s.classes == nil {
		for _, name := range flat {
			s.items = append(s.items, Item{Index: len(s.items), ID: name, Label: -1})
		}
	} else {
		for label, class := range s.classes {
			files, err := walkSorted(root, class)
			if err != nil {
				return nil, fmt.Errorf("dataset: %w", err)
			}
			for _, id := range files {
				s.items = append(s.items, Item{Index: len(s.items), ID: id, Label: label})
			}
		}
	}
	if len(s.items) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoImages, root)
	}
	return s, nil
}

// isDir follows symbolic links, as Python's DirEntry.is_dir() and os.walk(followlinks=True).
func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// walkSorted lists the image files under root/rel in torchvision's order:
// sorted(os.walk(dir)) — folders by their full path — then sorted file names in each. It
// returns ids relative to root with '/' separators.
func walkSorted(root, rel string) ([]string, error) {
	type dir struct {
		rel   string
		files []string
	}
	var dirs []dir
	// ancestors are the folders on the path being listed, root's own first: a symbolic link
	// to any of them (by device and inode, os.SameFile) is a cycle, on which os.walk would
	// loop for ever (two `ln -s .` in one folder make 2^depth paths before any depth guard).
	top, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	ancestors := []os.FileInfo{top}
	var visit func(rel string, fi os.FileInfo) error
	visit = func(rel string, fi os.FileInfo) error {
		for _, a := range ancestors {
			if os.SameFile(a, fi) {
				return fmt.Errorf("%w: %s leads back to a folder that contains it", ErrCycle, rel)
			}
		}
		if len(ancestors) > 64 { // deeper than any real data set; bounds a chain of links
			return fmt.Errorf("folder nesting over 64 levels at %s", rel)
		}
		ancestors = append(ancestors, fi)
		defer func() { ancestors = ancestors[:len(ancestors)-1] }()
		entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		d := dir{rel: rel}
		for _, e := range entries {
			child := path.Join(rel, e.Name())
			if cfi, err := os.Stat(filepath.Join(root, filepath.FromSlash(child))); err == nil && cfi.IsDir() {
				if err := visit(child, cfi); err != nil {
					return err
				}
			} else if hasImageExt(e.Name()) {
				d.files = append(d.files, child)
			}
		}
		dirs = append(dirs, d)
		return nil
	}
	fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	if err := visit(rel, fi); err != nil {
		return nil, err
	}
	// Python compares the walk's root strings, which differ from rel only by a common prefix.
	slices.SortFunc(dirs, func(a, b dir) int { return strings.Compare(a.rel, b.rel) })
	var out []string
	for _, d := range dirs {
		out = append(out, d.files...)
	}
	return out, nil
}

func openList(file string) (*fileSource, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	s := &fileSource{root: filepath.Dir(file)}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	seen := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if n == 1 { // a UTF-8 byte order mark (Notepad, Excel) is not part of the first path
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, lab, hasLabel := strings.Cut(line, "\t")
		label := -1
		if hasLabel {
			v, err := strconv.Atoi(strings.TrimSpace(lab))
			if err != nil || v < 0 {
				return nil, fmt.Errorf("%w: %s:%d: label %q is not a class index", ErrBadList, file, n, lab)
			}
			label = v
		}
		id := path.Clean(filepath.ToSlash(p))
		if p == "" || path.IsAbs(id) || filepath.IsAbs(p) || id == ".." || strings.HasPrefix(id, "../") {
			return nil, fmt.Errorf("%w: %s:%d: path %q must be relative to the list file's folder, inside it", ErrBadList, file, n, p)
		}
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("%w: %s:%d: %s already listed on line %d", ErrBadList, file, n, id, prev)
		}
		seen[id] = n
		s.items = append(s.items, Item{ID: id, Label: label})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadList, file, err)
	}
	if len(s.items) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoImages, file)
	}
	slices.SortFunc(s.items, func(a, b Item) int { return strings.Compare(a.ID, b.ID) })
	for i := range s.items {
		s.items[i].Index = i
	}
	return s, nil
}
