"""`spillway doctor`'s checks: pure verdicts (``judgements``) over what the probes read
(``probes``); the CLI module only parses arguments and prints."""
