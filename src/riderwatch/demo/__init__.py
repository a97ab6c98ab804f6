"""The demo district: Zhenhai Police Station (镇海派出所), Licheng District, Putian.

It follows the source article: a rider team of 80+ members from two delivery platforms, pilot
commercial districts Jinding (金鼎) and Zhengrong Fortune Center (正荣财富中心), and the four-party
linkage of community police, riders, patrol and grid staff. Community and grid boundaries are
plausible shapes around the real place, not surveyed ones.

Everything goes through the real services (create_user, submit_clue, take_action,
escalate_overdue) with explicit times, so every clue carries a timeline the app itself would have
written. The same seed on the same day gives the same data; running again only adds what is
missing (organisations and accounts by code and username; clues only when the district has no
demo clues yet). Four weeks of the police's recorded incidents (with the simulator's planted
hotspots) go through the incident import, once.

Then the simulator gives the riders a few days of delivery rounds, sent in-process to the app's own
HTTP interface: riders switch duty through `PUT /api/v1/me/duty` at the simulated times, positions
go through the platforms' batch ingest, so tracks and coverage are what the server made of them.
"""

from riderwatch.demo.build import build_demo
from riderwatch.demo.geometry import district_geometry
from riderwatch.demo.organisation import load_organisation, plan_people
from riderwatch.demo.seed import OUTLINE, STATIONS, ZONES

__all__ = ["OUTLINE", "STATIONS", "ZONES", "build_demo", "district_geometry", "load_organisation", "plan_people"]
