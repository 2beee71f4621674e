package precompute

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
)

// ReadClassNames reads a class-names file: one name a line, in teacher class order; a
// trailing '\r' is dropped, blank lines are not allowed between names (they would shift every
// later class), trailing blank lines are ignored.
func ReadClassNames(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("class names: %w", err)
	}
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	line := make(map[string]int, len(lines)) // name → its line number
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			return nil, fmt.Errorf("class names %s:%d: blank name", path, i+1)
		}
		if !utf8.ValidString(l) { // the store's JSON metadata holds UTF-8 only
			return nil, fmt.Errorf("class names %s:%d: %q is not valid UTF-8", path, i+1, l)
		}
		// Two classes of one name would make a class map by name, and any reader of the
		// store's names, pick one of them silently.
		if first, dup := line[l]; dup {
			return nil, fmt.Errorf("class names %s: %q is on lines %d and %d", path, l, first, i+1)
		}
		line[l] = i + 1
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("class names %s: no names", path)
	}
	return lines, nil
}

// ReadClassMap reads a class-map file, which says which teacher class each dataset class
// folder is: one line per dataset class,
//
//	FOLDER<TAB>TEACHER
//
// where TEACHER is a teacher class index (0..K-1) or one of the teacher's class names. Without
// a tab the line is split at its last space. Blank lines and lines starting with '#' are
// skipped. Every dataset class folder must be listed exactly once; several folders may map to
// one teacher class. The result maps dataset class index to teacher class index.
func ReadClassMap(path string, datasetClasses, teacherNames []string, k int) ([]int32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("class map: %w", err)
	}
	defer f.Close()
	folder := make(map[string]int, len(datasetClasses))
	for i, c := range datasetClasses {
		folder[c] = i
	}
	byName := make(map[string]int, len(teacherNames))
	for i, n := range teacherNames {
		if _, dup := byName[n]; !dup {
			byName[n] = i
		}
	}
	out := make([]int32, len(datasetClasses))
	seen := make([]int, len(datasetClasses)) // line number, 0: not yet
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cut := strings.LastIndexByte(line, '\t')
		if cut < 0 {
			cut = strings.LastIndexByte(line, ' ')
		}
		if cut < 0 {
			return nil, fmt.Errorf("class map %s:%d: want FOLDER<TAB>TEACHER, got %q", path, n, line)
		}
		// A folder name that is not UTF-8 is a class folder by its escaped name (dataset.EscapeID);
		// the map may give it either way.
		name, target := dataset.EscapeID(line[:cut]), strings.TrimSpace(line[cut+1:])
		d, ok := folder[name]
		if !ok {
			return nil, fmt.Errorf("class map %s:%d: %q is not a class folder of the dataset", path, n, name)
		}
		if seen[d] != 0 {
			return nil, fmt.Errorf("class map %s:%d: %q already mapped on line %d", path, n, name, seen[d])
		}
		t, err := strconv.Atoi(target)
		if err != nil {
			var ok bool
			if t, ok = byName[target]; !ok {
				return nil, fmt.Errorf("class map %s:%d: %q is neither a class index nor a teacher class name", path, n, target)
			}
		}
		if t < 0 || t >= k {
			return nil, fmt.Errorf("class map %s:%d: teacher class %d outside 0..%d", path, n, t, k-1)
		}
		out[d], seen[d] = int32(t), n
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("class map %s: %w", path, err)
	}
	for d, line := range seen {
		if line == 0 {
			return nil, fmt.Errorf("class map %s: dataset class %q is not mapped", path, datasetClasses[d])
		}
	}
	return out, nil
}

// classMapEntries is the store's record of a --class-map (schema.KeyClassMap): each dataset
// class folder, in folder order, with its teacher class; nil without a class map, so that a
// store made without one keeps the metadata it always had.
func classMapEntries(folders []string, labels []int32, classMapFile string) []schema.ClassMapEntry {
	if classMapFile == "" || len(folders) != len(labels) {
		return nil
	}
	out := make([]schema.ClassMapEntry, len(folders))
	for d, f := range folders {
		out[d] = schema.ClassMapEntry{Folder: f, Class: int(labels[d])}
	}
	return out
}

// labelMap decides what the label column holds: the teacher class of each image's ground truth.
// It returns the map from dataset label to teacher class (nil: identity) after checking that
// the dataset's classes mean the teacher's: where both have names they must agree in order
// (teacher class 3 must mean dataset class 3) unless a class map says otherwise.
func labelMap(src dataset.Source, teacherNames []string, k int, classMapFile string) ([]int32, error) {
	folders := src.ClassNames()
	if classMapFile != "" {
		if folders == nil {
			return nil, optionError(fmt.Errorf("%w: a class map needs a dataset of class folders; this one has none", ErrClasses), "ClassMapFile")
		}
		m, err := ReadClassMap(classMapFile, folders, teacherNames, k)
		if err != nil {
			return nil, classFileError(err)
		}
		return m, nil
	}
	if folders != nil && teacherNames != nil {
		for i := range min(len(folders), len(teacherNames)) {
			if folders[i] != teacherNames[i] {
				return nil, fmt.Errorf("%w: class %d is %q in the dataset but %q in the teacher (give a class map to map dataset folders to teacher classes)",
					ErrClasses, i, folders[i], teacherNames[i])
			}
		}
		if len(folders) != len(teacherNames) {
			return nil, fmt.Errorf("%w: the dataset has %d classes, the teacher %d (names agree up to class %d; give a class map to map them)",
				ErrClasses, len(folders), len(teacherNames), min(len(folders), len(teacherNames))-1)
		}
		return nil, nil
	}
	// Integer labels (class folders of an unnamed teacher, list files, IDX) are taken as
	// teacher classes: each must be one.
	for i := range src.Len() {
		it := src.Item(i)
		if it.Label >= k {
			return nil, fmt.Errorf("%w: %s has label %d, the teacher has %d classes (0..%d)", ErrClasses, it.ID, it.Label, k, k-1)
		}
	}
	return nil, nil
}

// classFileError wraps an error of reading a class-names or class-map file as ErrClasses,
// unless the file could not be read at all: a missing file is that, not a disagreement.
func classFileError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrClasses, err)
}
