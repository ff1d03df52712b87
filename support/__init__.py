"""The support queue: recovery cases, their timeline, evidence and the agents' work."""
