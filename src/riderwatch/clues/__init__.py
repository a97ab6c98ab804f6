"""Clues: riders' reports of crime and hazards, and the closed loop that takes each one to its outcome."""
