"""Snapshots of a workspace's history with its build state (issue #7): the store (a
bare git repository per workspace), the recorder that fills it, and the miner that
turns it into training examples."""
