"""`spillway bench`: throughput, latency and memory of Spillway against a bare consumer (the
limit) and a naive per-event faust agent, on the same pre-produced data, in one run."""
