package session

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/whorl-ml/whorl/experiment"
)

// Printer shows training progress: a redrawn bar per phase on a terminal,
// one log line per epoch otherwise.
type Printer struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	last  time.Time
	start map[string]time.Time // by label
	open  bool
}

// NewPrinter prints progress to w (a bar when w is a terminal).
func NewPrinter(w io.Writer) *Printer {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &Printer{w: w, tty: tty, start: map[string]time.Time{}}
}

// Event shows e (an experiment.Runner's Progress function).
func (p *Printer) Event(e experiment.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	label := eventLabel(e)
	if _, ok := p.start[label]; !ok {
		p.start[label] = time.Now()
	}
	done := float64((e.Epoch-1)*e.Steps+e.Step) / float64(e.Epochs*e.Steps)
	eta := time.Duration(0)
	if done > 0 {
		eta = time.Duration(float64(time.Since(p.start[label])) * (1 - done) / done).Round(time.Second)
	}
	if !p.tty {
		if e.EpochDone {
			acc := ""
			if e.Accuracy > 0 {
				acc = fmt.Sprintf("  train acc %5.1f%%", 100*e.Accuracy)
			}
			if e.ClassAccuracy > 0 {
				acc += fmt.Sprintf("  labeled acc %5.1f%%", 100*e.ClassAccuracy)
			}
			fmt.Fprintf(p.w, "%-11s epoch %3d/%d  loss %.4f%s  elapsed %s  eta %s\n", label, e.Epoch, e.Epochs,
				e.Loss, acc, time.Since(p.start[label]).Round(time.Second), eta)
		}
		return
	}
	if !e.EpochDone && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 24
	fill := int(done * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	fmt.Fprintf(p.w, "\r%-11s [%s] epoch %d/%d step %d/%d  loss %.3f  acc %5.1f%%  %4.0f samples/s  eta %-8s",
		label, bar, e.Epoch, e.Epochs, e.Step, e.Steps, e.Loss, 100*e.Accuracy, e.SamplesPerSec, eta)
	p.open = true
	if e.EpochDone && e.Epoch == e.Epochs {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

// eventLabel names an event's phase, and its stage when it has one
// ("baseline, self-training 1"): each has its own clock.
func eventLabel(e experiment.Event) string {
	if e.Stage == "" {
		return e.Phase.Label()
	}
	return e.Phase.Label() + ", " + e.Stage
}

// Finish ends an open progress line.
func (p *Printer) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}
