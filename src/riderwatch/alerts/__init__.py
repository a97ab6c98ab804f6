"""Early warnings to riders (CAP 1.2): publishing, who they reach, acknowledgements, the CAP feed."""
