// Command mkdataset builds whorl's embedded data set (shard/embedded) from a
// copy of the flowers photos: only the photos credited in the source's
// LICENSE.txt (Creative Commons Attribution 2.0) are included, each resized
// to its centred square of side -size and stored as a JPEG in one tar
// archive, with the attribution text beside it. The output is byte-for-byte
// reproducible from the same input. Run it through `make dataset`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	var o options
	flag.StringVar(&o.Src, "src", "../shared/data/flowers", "the flowers folder (class sub-folders and LICENSE.txt)")
	flag.StringVar(&o.Out, "out", "shard/embedded", "output folder for flowers.zip and LICENSE.txt")
	flag.IntVar(&o.Size, "size", 48, "side of the stored square images in pixels")
	flag.IntVar(&o.Quality, "quality", 90, "JPEG quality 1..100")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "mkdataset:", err)
		os.Exit(1)
	}
}
