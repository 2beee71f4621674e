package export

import (
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/deitkd/deitkd/internal/atomicfile"
	"github.com/deitkd/deitkd/student"
)

// FileName is the name WriteFile gives an export of format: ONNXFile or SafetensorsFile.
func FileName(format string) (string, error) {
	switch format {
	case FormatONNX:
		return ONNXFile, nil
	case FormatSafetensors:
		return SafetensorsFile, nil
	}
	return "", fmt.Errorf("%w: format %q (want %s or %s)", ErrOptions, format, FormatONNX, FormatSafetensors)
}

// WriteFile writes m in format (FormatONNX or FormatSafetensors) into the folder dir as
// FileName(format), atomically: a temporary file in dir, fsync, rename, fsync of dir. A
// reader never sees a half-written export, and a failed write leaves any earlier file of that
// name as it was. It returns the path written.
func WriteFile(dir, format string, m *student.Model, opts Options) (path string, err error) {
	name, err := FileName(format)
	if err != nil {
		return "", err
	}
	// Rendered in memory first (a DeiT-Small is 88 MB): an encoding error is then the
	// writer's own, and the file's errors are wrapped once, here, with the path.
	var buf bytes.Buffer
	if format == FormatONNX {
		err = ONNX(&buf, m, opts)
	} else {
		err = Safetensors(&buf, m, opts)
	}
	if err != nil {
		return "", err
	}
	path = filepath.Join(dir, name)
	if err = atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return "", fmt.Errorf("export: write %s: %w", path, err)
	}
	return path, nil
}
