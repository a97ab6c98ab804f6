"""Notices: what users are told (a clue dispatched to them, their clue closed, an alert), kept in their
inbox and carried to their live stream."""
