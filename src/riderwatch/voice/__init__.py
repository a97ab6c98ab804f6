"""Riders' voice: suggestions and complaints to the police, routed, answered and rated; the police's
visits and condolences with their follow-up actions; satisfaction over time."""
