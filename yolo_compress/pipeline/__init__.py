"""Multi-stage compression pipelines (sparsity, prune, distill, quantize) from one YAML recipe."""
