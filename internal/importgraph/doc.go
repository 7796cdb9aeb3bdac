// Package importgraph checks the import direction of this module against the
// rules of CONTRIBUTING.md ("Layout and import direction"), so the picture
// cannot drift: model and shard link no networking, the coordinator links
// neither the experiment nor the training engine, nothing imports cmd.
//
// Rules is the table; Load reads the real non-test import graph with
// `go list -deps`; Check is a pure function of a graph and rules that
// returns, for every package a rule applies to, each edge where its
// dependencies first cross into a forbidden package, with one shortest
// import chain. `make lint` runs this package's tests.
package importgraph
