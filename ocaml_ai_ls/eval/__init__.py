"""Evaluation (issue #8): held-out tasks run through the editor's own pipeline, per arm,
and a report of how each arm did with confidence intervals. `tasks` is the task format,
`importers` turn mined examples and MultiPL-E problems into tasks, `runner` runs them,
`report` and `stats` turn the attempt records into figures."""
