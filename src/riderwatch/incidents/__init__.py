"""Incidents: the police's own recorded cases, imported for hotspots and key periods."""
