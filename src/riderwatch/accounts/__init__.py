"""Accounts: users and their one role, rider membership, signing in, bearer tokens, Open311 keys."""
