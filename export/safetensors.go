package export

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/deitkd/deitkd/student"
)

// The safetensors format:
//
//	u64 little endian: n, the header's length in bytes
//	n bytes: a JSON object {name: {"dtype", "shape", "data_offsets": [begin, end]}, …,
//	         "__metadata__": {string: string}}, padded with spaces
//	the tensors' bytes, row-major little endian; offsets count from the first byte after the
//	header, and the tensors cover that buffer exactly, without gaps or overlaps
//
// This package writes and reads F32 tensors only: the student has no other kind.

// headerAlign pads the header so the data starts 8-byte aligned, as the reference
// implementation does (readers may then map the tensors in place).
const headerAlign = 8

// maxHeader bounds the header a reader accepts: the reference implementation's limit.
const maxHeader = 100 << 20

// Tensor is one named float32 tensor of a safetensors file.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// File is a parsed safetensors file: its tensors in data order and its metadata.
type File struct {
	Tensors  []Tensor
	Metadata map[string]string
}

// Tensor returns the tensor with the given name.
func (f *File) Tensor(name string) (Tensor, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// Safetensors writes m's parameters to w as a safetensors file with timm's DeiT state-dict
// keys and shapes, F32, in the model's order (timm's): cls_token, dist_token, pos_embed,
// patch_embed.proj.weight (D×C×P×P), …, head.weight, head_dist.weight. The __metadata__
// holds "format": "pt" (what timm and the reference loader expect), MetaConfig, MetaFuse and,
// when opts has them, schema.KeyPreprocess and schema.KeyClassNames.
func Safetensors(w io.Writer, m *student.Model, opts Options) error {
	c := m.Config()
	if err := opts.check(m); err != nil {
		return err
	}
	md, err := opts.metadata(c)
	if err != nil {
		return err
	}
	params := m.Params()
	var hdr bytes.Buffer
	hdr.WriteString(`{"__metadata__":{"format":"pt"`)
	for _, kv := range md {
		hdr.WriteByte(',')
		writeJSONString(&hdr, kv[0])
		hdr.WriteByte(':')
		writeJSONString(&hdr, kv[1])
	}
	hdr.WriteByte('}')
	off := 0
	for _, p := range params {
		n := 4 * len(p.Data)
		hdr.WriteByte(',')
		writeJSONString(&hdr, p.Name)
		shape, _ := json.Marshal(p.Shape) // []int always encodes
		fmt.Fprintf(&hdr, `:{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}`, shape, off, off+n)
		off += n
	}
	hdr.WriteByte('}')
	for hdr.Len()%headerAlign != 0 {
		hdr.WriteByte(' ')
	}
	bw := bufio.NewWriter(w)
	var b8 [8]byte
	binary.LittleEndian.PutUint64(b8[:], uint64(hdr.Len()))
	bw.Write(b8[:])
	bw.Write(hdr.Bytes())
	for _, p := range params {
		for _, v := range p.Data {
			binary.LittleEndian.PutUint32(b8[:4], math.Float32bits(v))
			bw.Write(b8[:4])
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: write safetensors: %w", err)
	}
	return nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	e, _ := json.Marshal(s) // a string always encodes
	b.Write(e)
}

// stEntry is one tensor's header entry.
type stEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// ReadSafetensors parses a safetensors file held in data. Only F32 tensors are accepted;
// anything malformed (a header past the end, bad JSON, an offset outside the data, tensors
// that overlap or leave gaps, a shape that disagrees with its byte count) is ErrSafetensors
// with the reason.
func ReadSafetensors(data []byte) (*File, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSafetensors, fmt.Sprintf(format, args...))
	}
	if len(data) < 8 {
		return nil, bad("%d bytes, shorter than the header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > maxHeader || n > uint64(len(data)-8) {
		return nil, bad("header length %d with %d bytes after it", n, len(data)-8)
	}
	hdr, body := data[8:8+n], data[8+n:]
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, bad("header is not a JSON object")
	}
	f := &File{Metadata: map[string]string{}}
	type span struct {
		begin, end int64
		name       string
	}
	var spans []span
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, bad("header: %v", err)
		}
		name, ok := t.(string)
		if !ok {
			return nil, bad("header key %v is not a string", t)
		}
		if seen[name] {
			return nil, bad("header names %q twice", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			if err := dec.Decode(&f.Metadata); err != nil {
				return nil, bad("__metadata__: %v", err)
			}
			continue
		}
		var e stEntry
		if err := dec.Decode(&e); err != nil {
			return nil, bad("tensor %q: %v", name, err)
		}
		if e.DType != "F32" {
			return nil, bad("tensor %q is %q; only F32 is read", name, e.DType)
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[0] < 0 || e.DataOffsets[1] < e.DataOffsets[0] || e.DataOffsets[1] > int64(len(body)) {
			return nil, bad("tensor %q has data_offsets %v for %d data bytes", name, e.DataOffsets, len(body))
		}
		count := int64(1)
		for _, s := range e.Shape {
			if s < 0 || (s > 0 && count > int64(len(body))/int64(s)) {
				return nil, bad("tensor %q has shape %v", name, e.Shape)
			}
			count *= int64(s)
		}
		if 4*count != e.DataOffsets[1]-e.DataOffsets[0] {
			return nil, bad("tensor %q: shape %v needs %d bytes, offsets give %d", name, e.Shape, 4*count, e.DataOffsets[1]-e.DataOffsets[0])
		}
		spans = append(spans, span{e.DataOffsets[0], e.DataOffsets[1], name})
		f.Tensors = append(f.Tensors, Tensor{Name: name, Shape: e.Shape})
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("header: %v", err)
	}
	if rest := strings.TrimRight(string(hdr[dec.InputOffset():]), " "); rest != "" {
		return nil, bad("header has %d bytes after its JSON object", len(rest))
	}
	// Data order: the tensors must tile the data buffer exactly.
	order := make([]int, len(spans))
	for i := range order {
		order[i] = i
	}
	sortBy(order, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	var pos int64
	tensors := make([]Tensor, 0, len(spans))
	for _, i := range order {
		s := spans[i]
		if s.begin != pos {
			return nil, bad("tensor %q starts at byte %d, the previous ends at %d", s.name, s.begin, pos)
		}
		t := f.Tensors[i]
		t.Data = make([]float32, (s.end-s.begin)/4)
		for j := range t.Data {
			t.Data[j] = math.Float32frombits(binary.LittleEndian.Uint32(body[s.begin+4*int64(j):]))
		}
		tensors = append(tensors, t)
		pos = s.end
	}
	if pos != int64(len(body)) {
		return nil, bad("tensors end at byte %d of %d data bytes", pos, len(body))
	}
	f.Tensors = tensors
	return f, nil
}

// sortBy is an insertion sort: headers list tensors nearly in data order, a few hundred at
// most, and this keeps ties (zero-size tensors at one offset) in header order.
func sortBy(x []int, less func(i, j int) bool) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && less(x[j], x[j-1]); j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

// Model rebuilds the student the file holds: the architecture from MetaConfig, every
// parameter from the tensor of its timm name. A file without MetaConfig (not written by
// deitkd), a missing or extra tensor, or a shape that differs is an error naming it.
func (f *File) Model() (*student.Model, error) {
	raw, ok := f.Metadata[MetaConfig]
	if !ok {
		return nil, fmt.Errorf("%w: no %s in __metadata__ (not a deitkd export)", ErrSafetensors, MetaConfig)
	}
	var c student.Config
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSafetensors, MetaConfig, err)
	}
	m, err := student.New(c, 0)
	if err != nil {
		return nil, fmt.Errorf("export: model of %s: %w", MetaConfig, err)
	}
	params := m.Params()
	if len(params) != len(f.Tensors) {
		return nil, fmt.Errorf("%w: %d tensors, the model has %d parameters", ErrSafetensors, len(f.Tensors), len(params))
	}
	for _, p := range params {
		t, ok := f.Tensor(p.Name)
		if !ok {
			return nil, fmt.Errorf("%w: no tensor %s", ErrSafetensors, p.Name)
		}
		if fmt.Sprint(t.Shape) != fmt.Sprint(p.Shape) {
			return nil, fmt.Errorf("%w: tensor %s has shape %v, the model %v", ErrSafetensors, p.Name, t.Shape, p.Shape)
		}
		copy(p.Data, t.Data) // p.Data is a view of the model's parameters
	}
	return m, nil
}
