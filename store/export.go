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

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deitkd/deitkd/schema"
)

// ExportRow is one row as Export writes it in JSON Lines, with the
// contract's column names.
type ExportRow struct {
	ImageID     string     `json:"image_id"`
	ImageIndex  int64      `json:"image_index"`
	Label       *int32     `json:"label"`
	View        int32      `json:"view"`
	Crop        [4]float32 `json:"crop"`
	Flip        bool       `json:"flip"`
	TeacherHard int32      `json:"teacher_hard"`
	Logits      []float32  `json:"teacher_logits,omitempty"`
	TopKIndex   []int32    `json:"topk_index,omitempty"`
	TopKLogit   []float32  `json:"topk_logit,omitempty"`
	LogSumExp   *float32   `json:"logsumexp,omitempty"`
}

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
	enc := json.NewEncoder(bw)
	md := r.Meta
	topk := md.Store.Mode == schema.ModeTopK
	if format == "csv" {
		head := []string{schema.ColImageID, schema.ColImageIndex, schema.ColLabel, schema.ColView, schema.ColCrop, schema.ColFlip, schema.ColTeacherHard}
		if topk {
			head = append(head, schema.ColTopKIndex, schema.ColTopKLogit, schema.ColLogSumExp)
		} else {
			head = append(head, schema.ColTeacherLogits)
		}
		cw.Write(head)
	}
	var n int64
	errStop := fmt.Errorf("stop")
	width := md.Width()
	err := r.Scan(ctx, nil, func(rec arrow.RecordBatch) error {
		ids := rec.Column(0).(*array.String)
		idx := rec.Column(1).(*array.Int64)
		labels := rec.Column(2).(*array.Int32)
		views := rec.Column(3).(*array.Int32)
		crops := rec.Column(4).(*array.FixedSizeList).ListValues().(*array.Float32).Float32Values()
		flips := rec.Column(5).(*array.Boolean)
		hard := rec.Column(6).(*array.Int32)
		var vals arrow.Array
		var ti []int32
		var lse []float32
		if topk {
			ti = rec.Column(7).(*array.FixedSizeList).ListValues().(*array.Int32).Int32Values()
			vals = rec.Column(8).(*array.FixedSizeList).ListValues()
			lse = rec.Column(9).(*array.Float32).Float32Values()
		} else {
			vals = rec.Column(7).(*array.FixedSizeList).ListValues()
		}
		for i := 0; i < ids.Len(); i++ {
			if limit > 0 && n >= limit {
				return errStop
			}
			n++
			row := ExportRow{ImageID: ids.Value(i), ImageIndex: idx.Value(i), View: views.Value(i), Flip: flips.Value(i), TeacherHard: hard.Value(i)}
			copy(row.Crop[:], crops[4*i:4*i+4])
			if !labels.IsNull(i) {
				y := labels.Value(i)
				row.Label = &y
			}
			logits := floatsAt(vals, i*width, width, nil)
			if topk {
				row.TopKIndex, row.TopKLogit = ti[i*width:(i+1)*width], logits
				l := lse[i]
				row.LogSumExp = &l
			} else {
				row.Logits = logits
			}
			if format == "jsonl" {
				if err := enc.Encode(row); err != nil {
					return err
				}
				continue
			}
			label := ""
			if row.Label != nil {
				label = strconv.Itoa(int(*row.Label))
			}
			crop, _ := json.Marshal(row.Crop)
			rec := []string{row.ImageID, strconv.FormatInt(row.ImageIndex, 10), label, strconv.Itoa(int(row.View)), string(crop), strconv.FormatBool(row.Flip), strconv.Itoa(int(row.TeacherHard))}
			if topk {
				a, _ := json.Marshal(row.TopKIndex)
				b, _ := json.Marshal(row.TopKLogit)
				rec = append(rec, string(a), string(b), strconv.FormatFloat(float64(*row.LogSumExp), 'g', -1, 32))
			} else {
				a, _ := json.Marshal(row.Logits)
				rec = append(rec, string(a))
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && err != errStop {
		return err
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
