"""``python -m streams.agents ...`` is ``spillway agents ...`` (handy for subprocesses)."""

import sys

from streams.cli import main

main(["agents", *sys.argv[1:]])
