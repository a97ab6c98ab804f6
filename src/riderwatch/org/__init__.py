"""The organisation: jurisdiction, communities, grids, patrol units, platforms, stations, zones, categories."""
