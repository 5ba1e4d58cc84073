"""`python -m scripts.benchmark`: throughput, CPU, lag and storage of the real-time collector."""
