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
	"unicode"
	"unicode/utf8"

	"github.com/deitkd/deitkd/internal/utf8esc"
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

// Open opens a source from its spec, listing a folder's files by torchvision's IMG_EXTENSIONS;
// it is OpenWith(spec, Options{}).
//
//	DIR          a folder: one subfolder per class (torchvision's ImageFolder: class names
//	             sorted, files ending in one of IMGExtensions anywhere under a class folder,
//	             in os.walk order); a folder without subfolders is a flat, unlabelled set
//	list:FILE    one "path" or "path<TAB>label" a line, paths relative to FILE's folder; blank
//	             lines and lines starting with '#' are skipped; sorted by path; every path
//	             listed is taken, whatever its ending
//	idx:PREFIX   MNIST-format PREFIX-images-idx3-ubyte[.gz] and, if present,
//	             PREFIX-labels-idx1-ubyte[.gz], decoded once into memory
func Open(spec string) (Source, error) {
	return OpenWith(spec, Options{})
}

// Options say how a folder source lists its files. A list file (it names its files) and IDX
// files are not listed from a folder: they ignore Options.
type Options struct {
	// Extensions are the file name endings a folder source lists, matched as torchvision's
	// has_file_allowed_extension matches them: the lower-cased whole file name ends with one
	// (Python's filename.lower().endswith(extensions)), so "a.PNG" and a file named ".png" are
	// listed and "png" is not. nil lists torchvision's IMG_EXTENSIONS, so that image indices
	// agree with ImageFolder's. A list holding AllFiles lists every file that is not a folder:
	// those that are no image then fail to decode, one by one. See ParseExtensions for the
	// forms accepted.
	Extensions []string
}

// OpenWith is Open with the listing options of a folder source.
func OpenWith(spec string, opt Options) (Source, error) {
	switch {
	case strings.HasPrefix(spec, "list:"):
		return openList(strings.TrimPrefix(spec, "list:"))
	case strings.HasPrefix(spec, "idx:"):
		return OpenIDX(strings.TrimPrefix(spec, "idx:"))
	}
	exts, err := CanonicalExtensions(opt.Extensions)
	if err != nil {
		return nil, err
	}
	return openFolder(spec, exts)
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

// IMGExtensions are torchvision's IMG_EXTENSIONS (torchvision.datasets.folder), the endings
// a folder source lists by default. Files ending in .ppm, .pgm or .tif are listed, as
// ImageFolder lists them, so indices agree with torchvision's; .ppm/.pgm then fail to decode
// (not supported here). GIFs decode but are not listed unless the extensions name them.
var IMGExtensions = []string{".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}

// AllFiles in Options.Extensions lists every file of a folder, whatever its name.
const AllFiles = "*"

// ErrExtensions reports extensions CanonicalExtensions does not take.
var ErrExtensions = errors.New("dataset: bad extensions")

// ParseExtensions parses a comma-separated list of file name endings, as precompute
// --extensions takes it: ".jpg,.png,.gif" or "jpg,PNG" (a missing leading dot is added; case
// does not matter), or "all" (or "*") for every file. Empty gives nil, torchvision's list. The
// result is CanonicalExtensions'.
func ParseExtensions(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if p = strings.TrimSpace(p); strings.EqualFold(p, "all") {
			p = AllFiles
		}
		parts[i] = p
	}
	return CanonicalExtensions(parts)
}

// CanonicalExtensions returns the canonical form of a list of file name endings, the form a
// label store records: each trimmed of spaces, lower-cased, with a leading dot, sorted,
// without duplicates; []string{AllFiles} for every file; nil for nil, an empty list or exactly
// torchvision's IMGExtensions (in any order or case), so one listing has one form. An empty
// ending, a lone dot, one holding a '/' or NUL byte, and AllFiles next to anything else are
// errors wrapping ErrExtensions.
func CanonicalExtensions(exts []string) ([]string, error) {
	if len(exts) == 0 {
		return nil, nil
	}
	var out []string
	for _, e := range exts {
		e = strings.TrimSpace(e)
		switch {
		case e == AllFiles:
			if len(exts) > 1 {
				return nil, fmt.Errorf("%w: %q: all files (%s) stands alone", ErrExtensions, strings.Join(exts, ","), AllFiles)
			}
			return []string{AllFiles}, nil
		case e == "" || e == ".":
			return nil, fmt.Errorf("%w: %q: an empty ending", ErrExtensions, strings.Join(exts, ","))
		case strings.ContainsAny(e, "/\x00"):
			return nil, fmt.Errorf("%w: %q: an ending of a file name holds no '/' or NUL", ErrExtensions, e)
		}
		e = pyLower(e)
		if !strings.HasPrefix(e, ".") {
			e = "." + e
		}
		out = append(out, e)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if slices.Equal(out, sortedIMGExtensions) {
		return nil, nil
	}
	return out, nil
}

var sortedIMGExtensions = func() []string {
	s := slices.Clone(IMGExtensions)
	slices.Sort(s)
	return s
}()

// listed reports whether a folder source lists a file of this name with the canonical
// extensions exts (nil: IMGExtensions): torchvision's has_file_allowed_extension,
// filename.lower().endswith(extensions). torchvision passes the whole path, which ends as the
// name does because no ending holds a '/'.
func listed(name string, exts []string) bool {
	if exts == nil {
		exts = IMGExtensions
	} else if exts[0] == AllFiles {
		return true
	}
	low := pyLower(name)
	for _, e := range exts {
		if strings.HasSuffix(low, e) {
			return true
		}
	}
	return false
}

// pyLower lower-cases s as Python's str.lower does where it decides an ending: by Unicode's
// simple lower-case mapping, except that U+0130 (İ) becomes "i\u0307" (Python's full mapping)
// rather than Go's "i", so "A.TİF" does not end in ".tif" here either. Bytes that are not
// UTF-8 stay as they are (Python decodes them to lone surrogates, which lower() keeps). Final
// sigma, the one context-dependent rule of Python's lower(), is not applied: it only bears on
// an ending that itself holds a Greek sigma.
func pyLower(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteByte(s[i])
		case r == '\u0130':
			b.WriteString("i\u0307")
		default:
			b.WriteRune(unicode.ToLower(r))
		}
		i += n
	}
	return b.String()
}

// fileSource is a folder tree or a list file: files under root.
type fileSource struct {
	root    string
	exts    []string // canonical extensions a folder is listed with (nil: IMGExtensions)
	items   []Item
	paths   []string // paths[i]: item i's file relative to root, '/' separated, as on disk (items[i].ID is it escaped, see EscapeID)
	classes []string
}

// ErrIDCollision: two files (or class folders) of one source whose names differ on disk but
// whose ids, escaped by EscapeID, are the same.
var ErrIDCollision = errors.New("dataset: two names give one id")

// EscapeID is the image_id (or class name) of a file name: the name itself when it is valid
// UTF-8, as every name is on most systems; otherwise each byte that is not part of valid UTF-8
// is written as `\xHH` (lower-case hex) and the valid parts are kept, as Python's
// bytes.decode("utf-8", "backslashreplace") writes it, so that an id is always valid UTF-8 (the
// utf8 columns of a label store and JSON hold nothing else). In Python the id of a path is
// os.fsencode(path).decode("utf-8", "backslashreplace"). A valid name that holds the text
// `\xHH` itself can give the same id as another name: a source refuses such a listing
// (ErrIDCollision).
func EscapeID(name string) string { return utf8esc.Escape(name) }

// escapeNames returns the ids of names (EscapeID of each, in order), or an error wrapping
// ErrIDCollision naming both names when two distinct names give one id; what says what the
// names are ("file", "class folder"). Names are distinct on input.
func escapeNames(names []string, what string) ([]string, error) {
	ids := make([]string, len(names))
	escaped := false
	for i, n := range names {
		ids[i] = EscapeID(n)
		escaped = escaped || len(ids[i]) != len(n)
	}
	if !escaped { // no name changed, and the names are distinct
		return ids, nil
	}
	seen := make(map[string]int, len(ids))
	for i, id := range ids {
		if j, dup := seen[id]; dup {
			return nil, fmt.Errorf("%w: %s %q and %s %q both have id %q (a name that is not UTF-8 is written with \\xHH escapes, which the other name holds as text): rename one", ErrIDCollision, what, names[j], what, names[i], id)
		}
		seen[id] = i
	}
	return ids, nil
}

func (s *fileSource) Len() int             { return len(s.items) }
func (s *fileSource) ClassNames() []string { return s.classes }
func (s *fileSource) Item(i int) Item      { return s.items[i] }

func (s *fileSource) Load(i, channels int) (*Image, error) {
	id := s.items[i].ID
	data, err := s.read(i)
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

// read reads the file of image i under the source's root (by its name on disk, which its id
// escapes where it is not UTF-8). Only regular files are opened (a symbolic link is followed to
// its target): a FIFO would block for ever and a device such as /dev/zero reads without end.
// Errors name the file by its id and wrap ErrNotRegular or ErrTooLarge.
func (s *fileSource) read(i int) ([]byte, error) {
	id := s.items[i].ID
	name := filepath.Join(s.root, filepath.FromSlash(s.paths[i]))
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

func openFolder(root string, exts []string) (*fileSource, error) {
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
	s := &fileSource{root: root, exts: exts}
	var flat []string
	for _, e := range entries { // ReadDir sorts by name, as torchvision's sorted(scandir) does
		if isDir(filepath.Join(root, e.Name())) {
			s.classes = append(s.classes, e.Name())
		} else if listed(e.Name(), exts) {
			flat = append(flat, e.Name())
		}
	}
	var labels []int
	if s.classes == nil {
		s.paths = flat
	} else {
		for label, class := range s.classes {
			files, err := walkSorted(root, class, exts)
			if err != nil {
				return nil, fmt.Errorf("dataset: %w", err)
			}
			s.paths = append(s.paths, files...)
			for range files {
				labels = append(labels, label)
			}
		}
		// Class names go into the store's JSON metadata, which holds only UTF-8.
		if s.classes, err = escapeNames(s.classes, "class folder"); err != nil {
			return nil, fmt.Errorf("dataset: %s: %w", root, err)
		}
	}
	if len(s.paths) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoImages, root)
	}
	ids, err := escapeNames(s.paths, "file")
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", root, err)
	}
	s.items = make([]Item, len(ids))
	for i, id := range ids {
		s.items[i] = Item{Index: i, ID: id, Label: -1}
		if labels != nil {
			s.items[i].Label = labels[i]
		}
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
// returns paths relative to root with '/' separators, as on disk (not escaped).
func walkSorted(root, rel string, exts []string) ([]string, error) {
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
			} else if listed(e.Name(), exts) {
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
		s.items = append(s.items, Item{ID: id, Label: label}) // ID: the path as listed, escaped below
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadList, file, err)
	}
	if len(s.items) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoImages, file)
	}
	slices.SortFunc(s.items, func(a, b Item) int { return strings.Compare(a.ID, b.ID) })
	s.paths = make([]string, len(s.items))
	for i := range s.items {
		s.paths[i] = s.items[i].ID
	}
	ids, err := escapeNames(s.paths, "path")
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", file, err)
	}
	for i := range s.items {
		s.items[i].Index, s.items[i].ID = i, ids[i]
	}
	return s, nil
}
