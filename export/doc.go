// Package export writes a trained student where users deploy it: an ONNX model that ONNX
// Runtime runs (and deitkd's own precompute can use as a teacher), or a safetensors file with
// timm's DeiT state-dict keys and shapes, which timm's distilled DeiT loads as it is.
//
// Both writers take an io.Writer and a *student.Model and nothing of training: the model's
// Config and its timm-named parameters (student.Model.Params) are all they read. WriteFile
// writes either into a folder atomically. ReadSafetensors parses the safetensors format back
// (header and values), and File.Model rebuilds a student from it. LoadInit starts a student of
// another config (image size, class count) from a safetensors file with timm's DeiT keys or a
// deitkd checkpoint (train --init), through student.Init.
//
// The ONNX graph is built from the protobuf types of onnx.proto (internal/onnxpb, generated
// with protoc-gen-go), at opset 17 and IR version 8; see ONNX for its inputs and outputs.
//
// It must not import the label store, the trainer's data pipeline or ONNX Runtime; the tests
// use ONNX Runtime (through teacher/) only to check what was written.
package export
