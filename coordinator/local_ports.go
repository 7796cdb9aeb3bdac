package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
)

// localPorts are the loopback ports of a local group as RememberPorts keeps
// them.
type localPorts struct {
	Raft []int `json:"raft"`
	GRPC []int `json:"grpc"`
}

// listenLocal opens size raft and gRPC listeners on 127.0.0.1: on the ports
// in portsFile when it holds size of each, else on fresh ports (saved there
// when portsFile is set). On error nothing stays open.
func listenLocal(portsFile string, size int) (raftLns, grpcLns []net.Listener, err error) {
	ports, remembered, err := readPorts(portsFile, size)
	if err != nil {
		return nil, nil, err
	}
	for i := range size {
		r, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports.Raft[i]))
		if err == nil {
			raftLns = append(raftLns, r)
			var g net.Listener
			if g, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports.GRPC[i])); err == nil {
				grpcLns = append(grpcLns, g)
			}
		}
		if err != nil {
			closeAll(raftLns, grpcLns)
			if remembered {
				return nil, nil, fmt.Errorf("restart the local cluster on the ports in %s: %w (is another process using them?)", portsFile, err)
			}
			return nil, nil, fmt.Errorf("listen on loopback: %w", err)
		}
	}
	if portsFile != "" && !remembered {
		if err := savePorts(portsFile, raftLns, grpcLns); err != nil {
			closeAll(raftLns, grpcLns)
			return nil, nil, err
		}
	}
	return raftLns, grpcLns, nil
}

// readPorts reads remembered ports; a missing file (or "" or another size)
// gives port 0 everywhere (fresh ports) and remembered false.
func readPorts(path string, size int) (localPorts, bool, error) {
	fresh := localPorts{Raft: make([]int, size), GRPC: make([]int, size)}
	if path == "" {
		return fresh, false, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fresh, false, nil
	}
	if err != nil {
		return localPorts{}, false, fmt.Errorf("read the local cluster ports: %w", err)
	}
	var p localPorts
	if err := json.Unmarshal(b, &p); err != nil {
		return localPorts{}, false, fmt.Errorf("read the local cluster ports %s: %w", path, err)
	}
	if len(p.Raft) != size || len(p.GRPC) != size {
		return localPorts{}, false, fmt.Errorf("local cluster ports %s: %d coordinators remembered, %d asked for (use another directory)", path, len(p.Raft), size)
	}
	return p, true, nil
}

// savePorts writes the listeners' ports to path.
func savePorts(path string, raftLns, grpcLns []net.Listener) error {
	var p localPorts
	for i := range raftLns {
		p.Raft = append(p.Raft, raftLns[i].Addr().(*net.TCPAddr).Port)
		p.GRPC = append(p.GRPC, grpcLns[i].Addr().(*net.TCPAddr).Port)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode the local cluster ports: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("save the local cluster ports: %w", err)
	}
	return nil
}
