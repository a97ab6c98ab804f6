"""The riders' programme: joining it (imported lists), and their path through it."""
