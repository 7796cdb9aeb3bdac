// Package trainbench measures the engine's rotation-task training
// throughput (`whorl bench train`): samples per second and per CPU-second,
// achieved GFLOPS against the machine's FMA peak measured on the same
// threads in the same run, peak RSS, and optionally the PyTorch reference
// (rotnet.py bench) in the same session for the speed-up.
package trainbench
