// Package model is whorl's training engine: the RotNet networks of the paper (Gidaris et al.,
// ICLR 2018) as defined by the PyTorch reference rotnet.py — the Network-in-Network "nin" family
// and a small VGG-style net — and torchvision's ResNet-18/34/50 (with its ImageNet stem or a
// small-image stem), with forward and backward passes, softmax cross-entropy against labels or target distributions
// (SoftCrossEntropy: a student learning a teacher's probabilities), SGD and Adam
// (the learning-rate schedules are the job's: job.ScheduleConfig), and safetensors checkpoints that PyTorch (torchvision, for the ResNets)
// loads with strict=True.
//
// Layout. Activations are kept channels-last (NHWC) inside the package so that every convolution is
// one GEMM (1x1 convolutions need no im2col at all); the public inputs and feature maps are NCHW
// like PyTorch's. All trainable parameters live in one contiguous float32 buffer and their
// gradients in another, in the order of PyTorch's state_dict (parameters only, each tensor in
// PyTorch's own layout), so the ring all-reduces Grads() in place. BatchNorm running statistics
// live in a separate State() buffer. Params() and State() are also exposed as named
// gorgonia.org/tensor Dense views (Tensors) that share the buffers.
//
// Data parallelism. With a Reducer set, BatchNorm layers in training mode synchronise their batch
// statistics across replicas (forward and backward), so N replicas each holding 1/N of a batch
// compute what one process computes on the whole batch. TrainStep scales gradients so that the sum
// over replicas is the gradient of the global mean loss.
//
// Determinism. Every reduction runs over fixed blocks combined in a fixed order and the GEMMs
// (model/gemm) never split the summed dimension, so results are bit-identical for any thread count.
package model
