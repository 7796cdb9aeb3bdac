// Command pause is the sandbox ("pause") container of k8s/node's one-node
// Kubernetes: the process that holds a pod's namespaces while its containers
// come and go. It sleeps until SIGINT or SIGTERM and, as PID 1 of a pod that
// shares its process namespace, reaps the orphans it inherits. k8s/node/up.sh
// builds it static (CGO_ENABLED=0) into an image FROM scratch, because this
// machine pulls no images (registry.k8s.io/pause included).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		// Reap every exited child; WNOHANG returns 0 when none is left.
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
