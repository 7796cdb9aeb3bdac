// Command diag trains briefly and reports weight magnitudes and accuracy
// (a debugging aid).
package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/model"
)

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		if math.IsNaN(float64(x)) {
			return math.NaN()
		}
		m = max(m, math.Abs(float64(x)))
	}
	return m
}

func main() {
	ctx := context.Background()
	c := experiment.DefaultConfig()
	mode := os.Args[1]
	epochs, _ := strconv.Atoi(os.Args[2])
	d, err := experiment.LoadData(ctx, c)
	if err != nil {
		panic(err)
	}
	t := time.Now()
	if mode == "base" {
		c.Supervised.Epochs = epochs
		n, _ := experiment.NewNet(c, 5, 1)
		_, err := experiment.Supervised(ctx, n, d, c.Supervised, 0, 7, "b", func(e experiment.Event) {
			if e.EpochDone {
				v, _ := experiment.Classify(ctx, n, d, d.Validation)
				fmt.Printf("epoch %d loss %.3f acc %.3f val %.3f max|w| %.3g maxstate %.3g (%v)\n", e.Epoch, e.Loss, e.Accuracy, v.Accuracy(), maxAbs(n.Params()), maxAbs(n.State()), time.Since(t).Round(time.Second))
			}
		})
		if err != nil {
			panic(err)
		}
		return
	}
	c.Pretrain.Epochs = epochs
	st, _ := experiment.NewPretrainState(c)
	err = experiment.Pretrain(ctx, c, d, st, nil, func(e experiment.Event) {
		if e.Step%20 == 0 || e.EpochDone {
			fmt.Printf("epoch %d step %d loss %.3f acc %.3f max|w| %.3g maxstate %.3g lr? (%v)\n", e.Epoch, e.Step, e.Loss, e.Accuracy, maxAbs(st.Net.Params()), maxAbs(st.Net.State()), time.Since(t).Round(time.Second))
		}
	})
	if err != nil {
		panic(err)
	}
	ra, _ := experiment.RotationAccuracy(ctx, st.Net, d, d.Split.Test)
	fmt.Println("rot acc", ra)
	_ = model.Cosine
}
