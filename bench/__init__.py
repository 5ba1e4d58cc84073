"""`python -m bench`: throughput, CPU, lag and storage of the real-time collector."""
