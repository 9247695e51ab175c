"""The main job: the whole pipeline on one simulated site-day (``spillway run``)."""
