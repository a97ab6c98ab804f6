"""Open311 GeoReport v2 server under /open311/v2: services, public requests, reports with an API key."""
