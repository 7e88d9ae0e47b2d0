"""The dockyard command line: Docker's verbs and flags over the engine."""
