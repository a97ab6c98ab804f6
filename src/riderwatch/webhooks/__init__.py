"""Webhooks: the duty group chats and other systems RiderWatch tells of what happens."""
