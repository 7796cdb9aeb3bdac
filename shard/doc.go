// Package shard turns a folder of photos into what training needs: it lists
// and decodes the images once into memory (uint8, HWC, RGB, square at the
// training size or a larger store size), makes the seeded stratified train/test/labeled split and
// its JSON manifest, and builds normalised rotation and classification
// batches with the paper's augmentation or SimCLR's.
//
// # Reading
//
// A data folder holds one sub-folder per class; class names are the folder
// names in sorted order. Files ending in .jpg, .jpeg or .png (any letter
// case) are images. Hidden entries, nested folders and other files are
// ignored and counted in the Report. The walk never descends below a class
// folder, so a symbolic link cannot make it loop; links are followed with
// os.Stat and a broken or self-referential link is reported as a skipped
// file. Bad images (empty, truncated, not an image, undecodable, or declaring
// more than LoadConfig.MaxPixels pixels in their header) are skipped and
// listed with a reason, or make Load fail when LoadConfig.Strict is set.
//
// Each image is converted to RGB (JPEG baseline, progressive, grayscale,
// CMYK and YCCK; PNG 8/16-bit, palette, gray and alpha, composited over
// black), its centred square of side min(width, height) is cut out and
// resampled to Size x Size with an exact area (box) filter when shrinking
// and bilinear interpolation when enlarging. That is the same as resizing
// the shorter side to Size and then cropping the centre.
//
// A packed dataset (Pack; `whorl data pack`) is the same photos as tar
// shards in WebDataset's layout plus an index that places every image; it
// lives in a folder or behind a URL (a Store: DirStore, or whatever
// RegisterStore was given for the URL's scheme; package bucket gives
// file://, s3:// and gs://). OpenOrigin reads only its index; PackedSource
// reads each image with a range request and checks its digest. The layout
// is in DESIGN.md.
//
// Data larger than memory is not decoded into a Dataset: ScanOrigin checks
// and decodes every image once as Load would, keeping only its items and
// each image's exact ChannelSums (for the Normalizer), and a Stream then
// reads the images a request names from the Source, decodes them in
// parallel, reads the next requests ahead and keeps a cache bounded in
// bytes. A Dataset of Size 0 is such a catalogue: items without pixels.
//
// With LoadConfig.Dir empty, Load uses the embedded set: the 3,480 CC BY 2.0
// photos of the flowers data set credited in EmbeddedLicense, stored as
// 48x48 JPEGs and rebuilt reproducibly by `make dataset`.
//
// # Splits and manifests
//
// MakeSplit orders each class's images by a hash of (seed, SHA-256 of the
// bytes, path) and so depends only on the seed and the set of files, never on
// directory listing order. A Manifest records the split; ApplyManifest
// restores it and fails if a listed file is missing or changed.
//
// # Augmentation
//
// The batch functions (RotationBatch, RotationBatchEach, ClassBatch,
// ImagesEach) render each image under an Augment at Augment.OutSize: the
// stored image, or a random-resized crop of it (ResizedCrop, with
// sub-pixel regions), is resampled to that side with the same filters as
// loading; then come the padded crop and the flip of the paper, a colour
// jitter (ColorJitter: brightness, contrast, saturation, in that order)
// and a random grayscale. Images can thus be stored larger than they are
// trained at, so that crops have real detail. Rotations turn the rendered
// square. Augment documents the order of the draws; with Pad and Flip
// alone at the stored size the batches are the paper's, bit for bit.
//
// The epoch plan and the pretraining batches built from a Dataset are the
// job package's (job.PlanEpoch, job.Batcher): shard provides the images and
// RotationBatchEach, not who trains on what.
//
// The package imports no networking; Source abstracts where image bytes come
// from (a shared folder, memory, a packed dataset's Store, or the
// coordinator), and Store where a packed dataset's objects live.
package shard
