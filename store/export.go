package store

import (
	"bufio"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ExportFormats are the formats Export writes.
var ExportFormats = []string{"csv", "jsonl"}

// Export writes up to limit rows (all if limit ≤ 0) in one of ExportFormats,
// "csv" or "jsonl". In CSV, list columns are JSON arrays in one field.
func Export(ctx context.Context, r *Reader, w io.Writer, format string, limit int64) error {
	if !slices.Contains(ExportFormats, format) {
		return fmt.Errorf("export %s: unknown format %q (%s)", r.Dir, format, strings.Join(ExportFormats, " or "))
	}
	bw := bufio.NewWriter(w)
	cw := csv.NewWriter(bw)
	cols := columnsOf(r.Meta)
	if format == "csv" {
		head := make([]string, len(cols))
		for i, c := range cols {
			head[i] = c.name
		}
		cw.Write(head)
	}
	var n int64
	errStop := fmt.Errorf("stop")
	cells := make([]string, len(cols))
	var line []byte
	for shard := range r.Manifest.Shards {
		err := r.ScanRows(ctx, shard, nil, func(_ int, s *StoredRow) error {
			if limit > 0 && n >= limit {
				return errStop
			}
			n++
			if format == "csv" {
				for i, c := range cols {
					cells[i] = csvCell(c.value(s))
				}
				return cw.Write(cells)
			}
			// One JSON object, the columns in file order: what json.Encoder writes for a
			// struct of them, a null label included.
			line = append(line[:0], '{')
			for i, c := range cols {
				if i > 0 {
					line = append(line, ',')
				}
				v, err := json.Marshal(c.value(s))
				if err != nil {
					return err
				}
				line = append(append(append(line, '"'), c.name...), '"', ':')
				line = append(line, v...)
			}
			_, err := bw.Write(append(line, '}', '\n'))
			return err
		})
		if err == errStop {
			break
		}
		if err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("export %s: %w", r.Dir, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export %s: %w", r.Dir, err)
	}
	return nil
}

// ExportFailures writes the store's failure log (every image that could not be labelled, in
// image-index order) to w as csv (with a header) or jsonl, with the columns image_index,
// image_id, stage and error; limit > 0 stops after that many.
func ExportFailures(r *Reader, w io.Writer, format string, limit int64) error {
	if !slices.Contains(ExportFormats, format) {
		return fmt.Errorf("export %s: unknown format %q (%s)", r.Dir, format, strings.Join(ExportFormats, " or "))
	}
	fs, err := r.Failures()
	if err != nil {
		return err
	}
	slices.SortStableFunc(fs, func(a, b Failure) int { return cmp.Compare(a.ImageIndex, b.ImageIndex) })
	if limit > 0 && int64(len(fs)) > limit {
		fs = fs[:limit]
	}
	bw := bufio.NewWriter(w)
	cw := csv.NewWriter(bw)
	enc := json.NewEncoder(bw)
	if format == "csv" {
		cw.Write([]string{"image_index", "image_id", "stage", "error"})
	}
	for _, f := range fs {
		if format == "csv" {
			cw.Write([]string{strconv.FormatInt(f.ImageIndex, 10), f.ImageID, f.Stage, f.Err})
			continue
		}
		enc.Encode(struct {
			ImageIndex int64  `json:"image_index"`
			ImageID    string `json:"image_id"`
			Stage      string `json:"stage"`
			Error      string `json:"error"`
		}{f.ImageIndex, f.ImageID, f.Stage, f.Err})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// csvCell is a column's value as a csv field: a string as it is, a null empty, numbers and
// booleans as Go formats them (float32 at its own precision), lists as JSON arrays.
func csvCell(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int32:
		return strconv.Itoa(int(v))
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
