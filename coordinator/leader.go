package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/sync/errgroup"

	"github.com/whorl-ml/whorl/coordinator/client"
)

// proposeTimeout bounds one raft Apply.
const proposeTimeout = 10 * time.Second

// leaderLoop starts the leader's duties when this node gains leadership and
// stops them when it loses it (raft's NotifyCh), until ctx is done.
func (n *Node) leaderLoop(ctx context.Context) error {
	var (
		cancel context.CancelFunc
		wg     sync.WaitGroup
	)
	stop := func() {
		if cancel != nil {
			cancel()
			wg.Wait()
			cancel = nil
		}
	}
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case leader := <-n.notify:
			stop()
			n.metrics.leaderChanges.Inc()
			if !leader {
				n.log.Info("lost leadership")
				continue
			}
			n.log.Info("became leader")
			lctx, c := context.WithCancel(ctx)
			cancel = c
			wg.Add(1)
			go func() { defer wg.Done(); n.lead(lctx) }()
		}
	}
}

// lead runs while this node leads: it takes over (see takeOver), grants
// every known worker a fresh lease, then runs the lease timer and the job
// driver. It returns when ctx is done (leadership lost or the node stops).
func (n *Node) lead(ctx context.Context) {
	if err := n.takeOver(ctx); err != nil {
		return
	}
	var ids []string
	n.fsm.View(func(s *State) {
		for id := range s.Workers {
			ids = append(ids, id)
		}
	})
	n.leases.reset(ids, time.Now())
	n.leaderReady.Store(true)
	defer n.leaderReady.Store(false)
	n.log.Info("leading", "workers", len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { n.leaseLoop(gctx); return nil })
	g.Go(func() error { (&driver{n: n}).run(gctx); return nil })
	_ = g.Wait()
}

// Backoff between the attempts of a new leader's take-over steps.
const (
	leaderRetryMin = 50 * time.Millisecond
	leaderRetryMax = time.Second
)

// takeOver waits until the FSM has applied every earlier entry (a raft
// barrier) and then announces this node's gRPC address, retrying each step
// with backoff: a leader that gave up would answer NO_LEADER until the next
// election. It fails only when ctx is done.
func (n *Node) takeOver(ctx context.Context) error {
	if err := n.retry(ctx, "leader barrier", func() error { return n.barrier(proposeTimeout) }); err != nil {
		return err
	}
	return n.retry(ctx, "announce leader address", func() error {
		_, err := n.propose(ctx, &Announce{ID: n.cfg.ID, GRPCAddr: n.Addr()})
		return err
	})
}

// retry calls op until it succeeds or ctx is done, waiting leaderRetryMin
// after the first failure and doubling up to leaderRetryMax; each failure
// is logged at Warn with its attempt number.
func (n *Node) retry(ctx context.Context, what string, op func() error) error {
	delay := leaderRetryMin
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		n.log.Warn(what+" failed", "attempt", attempt, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, leaderRetryMax)
	}
}

// followerLoop runs on every node: it keeps the health status, announces
// this node's gRPC address to the leader until it is in the state, and
// fetches committed checkpoint blobs this node lacks.
func (n *Node) followerLoop(ctx context.Context) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var lastRepair time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		_, leaderID := n.rp.raft.LeaderWithID()
		n.setServing(leaderID != "")
		n.announceSelf(ctx)
		if time.Since(lastRepair) > time.Second {
			lastRepair = time.Now()
			n.repairBlobs(ctx)
		}
	}
}

// announceSelf asks the leader to record this node's gRPC address.
func (n *Node) announceSelf(ctx context.Context) {
	var have string
	n.fsm.View(func(s *State) { have = s.Coordinators[n.cfg.ID] })
	if have == n.Addr() || n.IsLeader() {
		return
	}
	_, addr := n.leader()
	if addr == "" {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := announce(cctx, n.pool, addr, n.cfg.ID, n.Addr()); err != nil {
		n.log.Debug("announce to leader", "leader", addr, "err", err)
	}
}

// leader returns the leader's id and gRPC address ("" when unknown).
func (n *Node) leader() (id, grpcAddr string) {
	_, lid := n.rp.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	n.fsm.View(func(s *State) { grpcAddr = s.Coordinators[string(lid)] })
	return string(lid), grpcAddr
}

// requireLeader returns nil on the leader once it is ready (its FSM caught
// up with every earlier entry and its leases granted), else a
// *client.NotLeaderError naming the leader (wrapping client.ErrNotLeader, or client.ErrNoLeader
// when none is known or the leader is not ready yet: clients retry).
func (n *Node) requireLeader() error {
	if n.IsLeader() {
		if n.leaderReady.Load() {
			return nil
		}
		return &client.NotLeaderError{}
	}
	id, addr := n.leader()
	return &client.NotLeaderError{LeaderID: id, LeaderAddr: addr}
}

// propose replicates c through raft and returns the result of applying it.
func (n *Node) propose(ctx context.Context, c Command) (Result, error) {
	b, err := EncodeCommand(c)
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("propose %s: %w", c.kind(), err)
	}
	f := n.rp.raft.Apply(b, proposeTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
			errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return Result{}, fmt.Errorf("propose %s: %w", c.kind(), n.requireLeader())
		}
		if errors.Is(err, raft.ErrRaftShutdown) {
			return Result{}, fmt.Errorf("propose %s: %w", c.kind(), client.ErrShutdown)
		}
		return Result{}, fmt.Errorf("propose %s: %w", c.kind(), err)
	}
	resp, _ := f.Response().(applyResponse)
	return resp.Result, resp.Err
}
