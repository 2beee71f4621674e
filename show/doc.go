// Package show makes pictures and tensors of a label store's rows as the teacher saw them, for
// `labels show`: each row's stored view (its crop box and flip) rendered with the store's
// preprocessing, drawn on a contact sheet with the teacher's top-1 class and probability and
// the ground truth under it, and written as the teacher's float32 input (.npy, N×C×H×W, after
// the store's normalisation) with the rows' ids, for checks outside deitkd.
//
// The rows are traindata.Set.Rows': the store joined to its images by traindata, so the
// images are checked against the store's dataset identity (count, id hash, content hash)
// before a pixel is drawn, and rendered by the code that trains on them. show imports
// traindata, dataset, schema and internal/atomicfile; it knows nothing of ONNX or training.
package show
