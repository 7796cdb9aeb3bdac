package shard

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Ignored counts the entries of a data folder that are not images; they
// are passed over without error.
type Ignored struct {
	// Hidden counts entries whose name starts with a dot.
	Hidden int `json:"hidden"`
	// Folders counts folders nested inside class folders.
	Folders int `json:"folders"`
	// NonImage counts files without a .jpg, .jpeg or .png extension,
	// including files at the top level beside the class folders.
	NonImage int `json:"non_image"`
	// Other counts devices, sockets and other special files.
	Other int `json:"other"`
}

// Skipped is an image file that was not used, and why.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// listing is what a walk of a data folder finds.
type listing struct {
	classes []string
	items   []Item
	ignored Ignored
	skipped []Skipped
}

// isImageName reports whether name has an image extension, in any case.
func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// listFolder walks dir: each non-hidden sub-folder is a class, each image
// file directly inside it an item. Items come out sorted by class then path.
func listFolder(dir string) (*listing, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, errorf(ErrLayout, "data folder %s: %v", dir, err)
	}
	if !st.IsDir() {
		return nil, errorf(ErrLayout, "data folder %s is not a folder", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, errorf(ErrLayout, "read data folder %s: %v", dir, err)
	}
	l := &listing{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			l.ignored.Hidden++
			continue
		}
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			l.skipped = append(l.skipped, Skipped{Path: e.Name(), Reason: KindUnreadable + ": " + err.Error()})
			continue
		}
		if !st.IsDir() {
			l.countNonClass(st)
			continue
		}
		if err := l.addClass(dir, e.Name()); err != nil {
			return nil, err
		}
	}
	if len(l.classes) < 2 {
		return nil, errorf(ErrLayout, "data folder %s has %d class folder(s), need at least 2", dir, len(l.classes))
	}
	return l, nil
}

// countNonClass counts a top-level entry that is not a folder.
func (l *listing) countNonClass(st fs.FileInfo) {
	if st.Mode().IsRegular() {
		l.ignored.NonImage++
	} else {
		l.ignored.Other++
	}
}

// addClass lists one class folder; a class without image files is fatal.
func (l *listing) addClass(dir, class string) error {
	cdir := filepath.Join(dir, class)
	entries, err := os.ReadDir(cdir)
	if err != nil {
		return errorf(ErrLayout, "read class folder %s: %v", cdir, err)
	}
	ci := len(l.classes)
	l.classes = append(l.classes, class) // os.ReadDir sorts by name
	var names []string
	for _, e := range entries {
		name := e.Name()
		rel := class + "/" + name
		if strings.HasPrefix(name, ".") {
			l.ignored.Hidden++
			continue
		}
		st, err := os.Stat(filepath.Join(cdir, name)) // follows symlinks
		switch {
		case err != nil:
			l.skipped = append(l.skipped, Skipped{Path: rel, Reason: KindUnreadable + ": " + err.Error()})
		case st.IsDir():
			l.ignored.Folders++
		case !st.Mode().IsRegular():
			l.ignored.Other++
		case !isImageName(name):
			l.ignored.NonImage++
		default:
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return errorf(ErrLayout, "class folder %s has no .jpg, .jpeg or .png files", cdir)
	}
	sort.Strings(names)
	for _, n := range names {
		l.items = append(l.items, Item{Path: class + "/" + n, Class: ci})
	}
	return nil
}

// sortSkipped orders skipped files by path.
func sortSkipped(s []Skipped) {
	sort.Slice(s, func(i, j int) bool { return s[i].Path < s[j].Path })
}

// CountImages is how many image files dir holds (a class folder's images
// as Load would list them before decoding, or a packed dataset's index), or the
// embedded set when dir is "": a cheap count for estimates before loading.
func CountImages(dir string) (int, error) {
	o, err := OpenOrigin(context.Background(), dir)
	if err != nil {
		return 0, err
	}
	defer o.Close()
	return len(o.Items), nil
}
