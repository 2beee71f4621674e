package teacher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLibraryCandidates(t *testing.T) {
	tests := []struct {
		name     string
		explicit string
		env      map[string]string
		want     string
	}{
		{name: "explicit path only", explicit: "/opt/ort-gpu/libonnxruntime.so",
			env:  map[string]string{EnvORTLib: "/env/lib.so", "HOME": "/home/u"},
			want: "/opt/ort-gpu/libonnxruntime.so (explicit)"},
		{name: "environment variable only", env: map[string]string{EnvORTLib: "/env/lib.so", "HOME": "/home/u"},
			want: "/env/lib.so (DEITKD_ORT_LIB)"},
		{name: "cache under HOME, then the system loader", env: map[string]string{"HOME": "/home/u"},
			want: "/home/u/.cache/deitkd/onnxruntime-1.24.3/libonnxruntime.so.1 (make setup cache); " +
				"libonnxruntime.so.1 (system loader)"},
		{name: "XDG_CACHE_HOME", env: map[string]string{"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg"},
			want: "/xdg/deitkd/onnxruntime-1.24.3/libonnxruntime.so.1 (make setup cache); libonnxruntime.so.1 (system loader)"},
		{name: "DEITKD_CACHE wins", env: map[string]string{"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg", "DEITKD_CACHE": "/c"},
			want: "/c/onnxruntime-1.24.3/libonnxruntime.so.1 (make setup cache); libonnxruntime.so.1 (system loader)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range libraryCandidates(tt.explicit, fakeEnv(tt.env)) {
				got = append(got, fmt.Sprintf("%s (%s)", c.path, c.source))
			}
			if s := strings.Join(got, "; "); s != tt.want {
				t.Errorf("got  %s\nwant %s", s, tt.want)
			}
		})
	}
}

// TestLibraryNotFound unloads ONNX Runtime, fails to load it from bogus places, and loads it
// again. Tests in this package run one after another and close their models, so nothing is
// open here.
func TestLibraryNotFound(t *testing.T) {
	if err := Shutdown(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := LoadLibrary(""); err != nil {
			t.Fatalf("reload after the test: %v", err)
		}
	})
	notALib := modelPath("tiny_gray.onnx") // exists, but is no shared library
	empty := t.TempDir()
	tests := []struct {
		name     string
		explicit string
		env      map[string]string
		want     []string
	}{
		{name: "explicit missing file", explicit: "/nonexistent/libonnxruntime.so.1",
			want: []string{"/nonexistent/libonnxruntime.so.1 (explicit): no such file"}},
		{name: "explicit file that is not a library", explicit: notALib,
			want: []string{notALib + " (explicit): Error loading ONNX shared library"}},
		{name: "environment variable", env: map[string]string{EnvORTLib: "/nonexistent/env.so"},
			want: []string{"/nonexistent/env.so (DEITKD_ORT_LIB): no such file"}},
		{name: "empty cache", env: map[string]string{"DEITKD_CACHE": empty, EnvORTLib: ""},
			want: []string{filepath.Join(empty, "onnxruntime-1.24.3/libonnxruntime.so.1") + " (make setup cache): no such file",
				"libonnxruntime.so.1 (system loader): "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			lib, err := LoadLibrary(tt.explicit)
			if err == nil {
				// Only the system loader may find one (a system-wide install); nothing else here can.
				if lib.Source != "system loader" {
					t.Fatalf("loaded %+v", lib)
				}
				if err := Shutdown(); err != nil {
					t.Fatal(err)
				}
				t.Skipf("a system-wide ONNX Runtime loaded (%s)", lib.Version)
			}
			t.Log(err)
			msg := err.Error()
			if !errors.Is(err, ErrLibrary) {
				t.Errorf("error is not ErrLibrary: %v", err)
			}
			for _, w := range append(tt.want, "tried:", "make setup", "give the path", EnvORTLib) {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q:\n%s", w, msg)
				}
			}
			if _, ok := LoadedLibrary(); ok {
				t.Error("LoadedLibrary reports a library after a failed load")
			}
		})
	}
}

func TestLibraryOncePerProcess(t *testing.T) {
	lib, err := LoadLibrary("")
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadLibrary(lib.Path)
	if err != nil || again != lib {
		t.Errorf("second load of the same path: %+v, %v", again, err)
	}
	// A different file cannot replace the running library.
	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.WriteFile(other, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLibrary(other); !errors.Is(err, ErrLibrary) || !strings.Contains(err.Error(), "already runs "+lib.Path) {
		t.Errorf("load of another path: %v", err)
	}
	if got, ok := LoadedLibrary(); !ok || got != lib {
		t.Errorf("LoadedLibrary = %+v, %v", got, ok)
	}
	if !strings.HasPrefix(lib.Version, "1.") {
		t.Errorf("version %q", lib.Version)
	}
}

func TestShutdownWithOpenModel(t *testing.T) {
	m, err := Open(modelPath("tiny_gray.onnx"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Shutdown(); !errors.Is(err, ErrModelsOpen) {
		t.Errorf("Shutdown with a model open: %v, want ErrModelsOpen", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
