"""Scenarios: the YAML contract (schema), the runner, results, reports and what-if comparison."""
