// Package dataset owns deitkd's images: sources (a class-folder tree, a list file, MNIST-format
// IDX files), decoding by content (JPEG, PNG, GIF, WebP, BMP, TIFF) into the 8-bit pixels PIL's
// convert('RGB') or convert('L') would give, views (the eval centre crop and RandomResizedCrop
// boxes, each a pure function of seed, image index and view number), and preprocessing to NCHW
// float32 that matches torchvision's PIL path: Resize with PIL's antialiased resampling,
// CenterCrop, ToTensor, Normalize.
//
// A class-folder tree lists the files torchvision's ImageFolder lists, those ending in one of
// its IMG_EXTENSIONS ([IMGExtensions]), so an image's index is ImageFolder's; [OpenWith] with
// [Options] lists other endings, or every file.
//
// Both stages use this package, so a crop box in a label file means the same pixels when the
// teacher labels it and when the student trains on it: precompute and the trainer render every
// view with [Render].
//
// A pipeline opens a source, asks its length, loads each image, computes its views and renders
// them into caller-owned float32 slices:
//
//	src, err := dataset.Open("testdata/images") // or "list:FILE", "idx:DIR/train"
//	for i := range src.Len() {
//		img, err := src.Load(i, cfg.Channels)
//		for v := range views {
//			view, err := dataset.ViewFor(img.Width, img.Height, i, v, cfg, vcfg)
//			err = dataset.Render(dst[v*n:(v+1)*n], img, view, cfg.Crop, cfg)
//		}
//	}
//
// (Example has it with its error handling.) The trainer rebuilds a stored row from its
// columns alone: View{Index: view, Box: crop, Flip: flip}, rendered at the student's size.
// Feed runs the eval view of a whole source on all cores into ordered batches (internal/ordered,
// the pool precompute and traindata run on): what a teacher is fed, rendered with no copy.
//
// [RNG] is deitkd's one keyed random stream (splitmix64 keyed by words): views draw from it, and
// traindata's epoch order and stored-view choice.
//
// DeiT's augmentations are pure functions of plain parameter structs, so they can be drawn
// once, stored and replayed: [AugmentOp] (RandAugment's ops, bit-exact with Pillow's as timm
// calls them), [Erase] (RandomErasing), [Mix] (Mixup/CutMix with a partner view), drawn from
// the same kind of keyed generator as views by [RandAugment.Draw], [DrawErase] and
// [MixConfig.Draw]; [RenderAugmented] renders a view with them in timm's order.
//
// Built with cgo (the default), JPEGs decode through libjpeg-turbo (Debian's
// libjpeg62-turbo-dev) and the resampler's two passes run in C; both give the pure-Go code's
// pixels bit for bit (TestTurboMatchesGoDecoder, TestResampleCMatchesGo), about twice as fast
// overall. -tags purego (or CGO_ENABLED=0) builds the pure-Go path alone, which stays the
// reference; the fidelity tests pass on both.
//
// [Config] is deitkd's one preprocessing type, with its one table of default normalisation
// ([DefaultNorm]) and its one per-channel expansion ([PerChannel]): a label store records it
// (schema.Metadata.Preprocess, JSON under deitkd.preprocess), a model's ONNX metadata carries
// it, a checkpoint records it, and every view is rendered with it. It lives here, the lowest
// package that uses it, so that every package above can name it.
//
// Sources, images and configs are immutable once made and safe for concurrent use.
//
// dataset must not import Arrow, ONNX Runtime or anything of the store, the teacher or the
// student: it knows images and pixels only.
package dataset
