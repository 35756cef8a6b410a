"""Slack front door: the Bolt app, the shared command grammar, Block Kit rendering, listeners."""
