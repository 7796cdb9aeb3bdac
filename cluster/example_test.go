package cluster_test

import (
	"context"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"

	"github.com/whorl-ml/whorl/cluster"
)

// A worker creates one Service, serves it on its gRPC server (on the
// service's Listener, so that the lanes can carry chunks on direct
// connections beside gRPC) and joins the ring of each generation the
// coordinator announces.
func Example() {
	cfg := cluster.DefaultConfig()
	cfg.Job = "example"
	var addrs []string
	var services []*cluster.Service
	for range 2 {
		svc, err := cluster.NewService(cfg)
		if err != nil {
			panic(err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		gs := grpc.NewServer(svc.ServerOptions()...)
		svc.Register(gs)
		go func() { _ = gs.Serve(svc.Listener(lis)) }()
		defer gs.Stop()
		addrs, services = append(addrs, lis.Addr().String()), append(services, svc)
	}
	grads := [][]float32{{1, 2, 3}, {10, 20, 30}}
	var wg sync.WaitGroup
	for rank, svc := range services {
		wg.Go(func() {
			ring, err := svc.NewRing(context.Background(), 1, addrs, rank)
			if err != nil {
				panic(err)
			}
			defer ring.Close()
			if err := ring.AllReduce(context.Background(), 0, grads[rank]); err != nil {
				panic(err)
			}
		})
	}
	wg.Wait()
	fmt.Println(grads[0], grads[1])
	// Output: [11 22 33] [11 22 33]
}
