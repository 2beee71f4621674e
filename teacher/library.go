package teacher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ORTVersion is the ONNX Runtime release `make setup` installs; onnxruntime_go v1.27.0 asks for
// the C API of 1.24, so older libraries are refused when they load.
const ORTVersion = "1.24.3"

// EnvORTLib names the environment variable that points at libonnxruntime.so.
const EnvORTLib = "DEITKD_ORT_LIB"

var (
	// ErrLibrary reports that no ONNX Runtime shared library could be loaded.
	ErrLibrary = errors.New("teacher: cannot load ONNX Runtime")
	// ErrModelsOpen reports a Shutdown while Models are still open.
	ErrModelsOpen = errors.New("teacher: models still open")
)

// Library says which ONNX Runtime library the process runs.
type Library struct {
	Path    string // the file handed to the dynamic loader
	Source  string // where the path came from: "explicit", EnvORTLib, "make setup cache", "system loader"
	Version string // as the library reports it, e.g. "1.24.3"
}

// libCandidate is one place to look for the library.
type libCandidate struct {
	path   string
	source string
}

// The environment is process-global in ONNX Runtime (one OrtEnv, one loaded library), so this
// state is too. A mutex rather than sync.Once: a failed load leaves nothing behind, so the next
// caller tries again and gets its own complete error instead of a stale one.
var env struct {
	mu     sync.Mutex
	loaded *Library
	open   int // Models not yet closed
}

// libraryCandidates lists where to look, in order. A path the user names (explicit, or the
// environment variable) is the only candidate: a user who points at a CUDA build must not be
// handed the CPU library from the cache without being told.
func libraryCandidates(explicit string, getenv func(string) string) []libCandidate {
	if explicit != "" {
		return []libCandidate{{explicit, "explicit"}}
	}
	if p := getenv(EnvORTLib); p != "" {
		return []libCandidate{{p, EnvORTLib}}
	}
	return []libCandidate{
		{cachedLibraryPath(getenv), "make setup cache"},
		// Last, the loader's own search (LD_LIBRARY_PATH, ld.so.cache): a system-wide install.
		{"libonnxruntime.so.1", "system loader"},
	}
}

// CachedLibraryPath is where `make setup` puts the library:
// ${DEITKD_CACHE:-${XDG_CACHE_HOME:-~/.cache}/deitkd}/onnxruntime-<ORTVersion>/libonnxruntime.so.1.
func CachedLibraryPath() string { return cachedLibraryPath(os.Getenv) }

func cachedLibraryPath(getenv func(string) string) string {
	cache := getenv("DEITKD_CACHE")
	if cache == "" {
		base := getenv("XDG_CACHE_HOME")
		if base == "" {
			base = filepath.Join(getenv("HOME"), ".cache")
		}
		cache = filepath.Join(base, "deitkd")
	}
	return filepath.Join(cache, "onnxruntime-"+ORTVersion, "libonnxruntime.so.1")
}

// LoadLibrary loads ONNX Runtime and starts its environment, once per process. explicit is a
// path the user gave (a --ort-lib flag); empty means DEITKD_ORT_LIB, then the `make setup`
// cache, then the system loader. Later calls return the loaded library, or an error when they
// name a different file. When nothing loads, the error lists every path tried and why.
func LoadLibrary(explicit string) (Library, error) {
	env.mu.Lock()
	defer env.mu.Unlock()
	return loadLocked(explicit)
}

// acquire loads the library like LoadLibrary and counts one more user of the environment, so
// that Shutdown cannot pull it away while a Model opens or runs. release undoes it.
func acquire(explicit string) (Library, error) {
	env.mu.Lock()
	defer env.mu.Unlock()
	lib, err := loadLocked(explicit)
	if err == nil {
		env.open++
	}
	return lib, err
}

func release() {
	env.mu.Lock()
	env.open--
	env.mu.Unlock()
}

// loadLocked is LoadLibrary with env.mu held.
func loadLocked(explicit string) (Library, error) {
	if env.loaded != nil {
		if explicit != "" && !samePath(explicit, env.loaded.Path) {
			return Library{}, fmt.Errorf("%w from %s: this process already runs %s (one library per process)",
				ErrLibrary, explicit, env.loaded.Path)
		}
		return *env.loaded, nil
	}
	var tried []string
	for _, c := range libraryCandidates(explicit, os.Getenv) {
		v, err := initEnvironment(c.path)
		if err != nil {
			tried = append(tried, fmt.Sprintf("  %s (%s): %v", c.path, c.source, err))
			continue
		}
		env.loaded = &Library{Path: c.path, Source: c.source, Version: v}
		return *env.loaded, nil
	}
	return Library{}, fmt.Errorf("%w; tried:\n%s\nrun `make setup` (it fetches ONNX Runtime %s into %s), "+
		"or give the path of a libonnxruntime.so of version 1.24 or later (or set %s to it)",
		ErrLibrary, strings.Join(tried, "\n"), ORTVersion, filepath.Dir(CachedLibraryPath()), EnvORTLib)
}

// initEnvironment loads one library file and creates the ONNX Runtime environment.
func initEnvironment(path string) (version string, err error) {
	if strings.ContainsRune(path, '/') {
		// A file path: say "no such file" plainly rather than through dlerror's wording.
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", errors.New("no such file")
			}
			return "", err
		}
	}
	ort.SetSharedLibraryPath(path)
	// Level "error": ONNX Runtime's warnings (e.g. about a provider that is missing) would
	// repeat what our own single warning says.
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		msg := strings.TrimPrefix(err.Error(), "Platform-specific initialization failed: ")
		if strings.Contains(msg, "Error setting ORT API base: 2") {
			// onnxruntime_go asks for API version 24; an older library has none to give.
			return "", errors.New("library too old (need ONNX Runtime 1.24 or later)")
		}
		return "", errors.New(msg)
	}
	return ort.GetVersion(), nil
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, errA := filepath.EvalSymlinks(a)
	rb, errB := filepath.EvalSymlinks(b)
	return errA == nil && errB == nil && ra == rb
}

// LoadedLibrary returns the library this process runs, and false before LoadLibrary succeeds.
func LoadedLibrary() (Library, bool) {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.loaded == nil {
		return Library{}, false
	}
	return *env.loaded, true
}

// Shutdown destroys the ONNX Runtime environment and unloads the library. Every Model must be
// closed first. After Shutdown, LoadLibrary may load a library again. Shutdown without a
// loaded library does nothing.
func Shutdown() error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.loaded == nil {
		return nil
	}
	if env.open > 0 {
		return fmt.Errorf("%w: %d not closed", ErrModelsOpen, env.open)
	}
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("teacher: shut down ONNX Runtime: %w", err)
	}
	env.loaded = nil
	return nil
}
