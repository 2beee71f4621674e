// Package onnxpb holds the Go types of the ONNX protobuf schema (onnx.ModelProto and the
// rest), generated from onnx.proto as Debian's python3-onnx 1.12 ships it
// (/usr/lib/python3/dist-packages/onnx/onnx.proto, IR version 8), so that export/ builds its
// graphs with google.golang.org/protobuf and no hand-written wire bytes.
//
// onnx.pb.go is committed: building needs no protoc. To regenerate (Debian's
// protobuf-compiler for protoc; protoc-gen-go at the google.golang.org/protobuf version in
// go.mod):
//
//	cd export/internal/onnxpb && GOFLAGS=-mod=mod go generate
package onnxpb

//go:generate go build -o protoc-gen-go.tmp google.golang.org/protobuf/cmd/protoc-gen-go
//go:generate protoc --plugin=protoc-gen-go=protoc-gen-go.tmp --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=github.com/deitkd/deitkd/export/internal/onnxpb onnx.proto
//go:generate rm -f protoc-gen-go.tmp
