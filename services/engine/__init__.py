"""The metrics engine: faust-streaming agents that turn case events into figures."""
