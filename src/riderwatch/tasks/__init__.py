"""Patrol tasks: published by dispatchers or rules, verified from riders' positions."""
