"""Fault injection: a recorded scenario, its offline truth, a fault schedule, the harness
that runs agents + sink through kills, broker restarts and stalls, and the comparison."""
