package shard

// Item is one image of a Dataset.
type Item struct {
	// Path is the file's path relative to the data folder, with forward
	// slashes: "class/file.jpg".
	Path string `json:"path"`
	// SHA256 is the lowercase hex SHA-256 of the file's bytes.
	SHA256 string `json:"sha256"`
	// Class indexes Dataset.Classes.
	Class int `json:"class"`
}

// Dataset is a decoded image set held in memory: every image is Size x
// Size x 3 uint8, HWC, RGB. Items are sorted by class, then path. A
// Dataset of Size 0 holds no pixels, only the items (a catalogue, from
// ScanOrigin or a packed index): its images are read through a Stream.
type Dataset struct {
	// Classes are the class names, sorted.
	Classes []string
	// Items are the images, parallel to the pixel storage.
	Items []Item
	// Size is the side of every image in pixels.
	Size int

	pix []uint8
}

// NewDataset wraps already decoded pixels (len(items)*size*size*3 bytes,
// image i at offset i*size*size*3). It is how a worker that received its
// images from elsewhere builds a Dataset; Load is the usual way.
func NewDataset(classes []string, items []Item, size int, pix []uint8) (*Dataset, error) {
	if want := len(items) * size * size * 3; len(pix) != want {
		return nil, errorf(ErrConfig, "new dataset: %d pixel bytes for %d images of %d px, want %d",
			len(pix), len(items), size, want)
	}
	for i, it := range items {
		if it.Class < 0 || it.Class >= len(classes) {
			return nil, errorf(ErrConfig, "new dataset: item %d (%s) has class %d of %d", i, it.Path, it.Class, len(classes))
		}
	}
	return &Dataset{Classes: classes, Items: items, Size: size, pix: pix}, nil
}

// Len returns the number of images.
func (d *Dataset) Len() int { return len(d.Items) }

// Image returns image i as Size*Size*3 HWC RGB bytes; the slice aliases the
// dataset's storage and must not be modified.
func (d *Dataset) Image(i int) []uint8 {
	if d.Size == 0 {
		panic("shard: Image of a dataset without pixels (a catalogue): read its images through a Stream")
	}
	n := d.Size * d.Size * 3
	return d.pix[i*n : (i+1)*n : (i+1)*n]
}

// ClassCounts returns the number of images of each class, parallel to
// Classes.
func (d *Dataset) ClassCounts() []int {
	counts := make([]int, len(d.Classes))
	for _, it := range d.Items {
		counts[it.Class]++
	}
	return counts
}
