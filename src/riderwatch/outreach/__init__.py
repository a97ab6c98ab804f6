"""Leaflet outreach: campaigns, stock issued to stations and returned, distributions riders log from their
phones, and the totals and map the command centre reads."""
