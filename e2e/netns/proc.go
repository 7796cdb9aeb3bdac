package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// ErrRunning says a process was still running when a wait ended.
var ErrRunning = errors.New("still running")

// Proc is a process started on a host.
type Proc struct {
	// Log is the file that receives its standard output and error.
	Log string

	cmd  *exec.Cmd
	logf *os.File
	done chan struct{}
	err  error // valid after done
}

func newProc(cmd *exec.Cmd, logPath string, logf *os.File) *Proc {
	p := &Proc{Log: logPath, cmd: cmd, logf: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig unless the process has exited.
func (p *Proc) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits up to d for the process to exit and returns its exit error
// (nil for status 0, an *exec.ExitError otherwise), or an error wrapping
// ErrRunning when it is still running after d.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("pid %d (%s) after %v: %w", p.Pid(), strings.Join(p.cmd.Args, " "), d, ErrRunning)
	}
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
