"""Reading the boundary files a street office's GIS exports: GeoJSON (a FeatureCollection, a Feature or a
bare Polygon), KML or KMZ (Placemarks with Polygons), into one `FeatureIn` per area.

Each feature names its area by properties (GeoJSON) or by its Placemark's name and extended data (KML):
`code` (or 编码/代码), `name` (名称), `name_en`, a grid's `community` (社区), a zone's `kind`,
`rollout_stage`, `pilot_on` and `rolled_out_on`. Files drawn on Chinese base maps are often in GCJ-02:
`crs="gcj02"` converts them to WGS-84. What a feature's area must satisfy is checked by `district`.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from lxml import etree

from riderwatch.errors import N_, InvalidInput
from riderwatch.geo.coords import gcj02_to_wgs84

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_FEATURES = 2_000
KML_NS = "{http://www.opengis.net/kml/2.2}"
# Property names in the files → the field.
PROPERTY_NAMES: dict[str, str] = {
    "code": "code",
    "编码": "code",
    "代码": "code",
    "id": "code",
    "name": "name",
    "名称": "name",
    "name_en": "name_en",
    "英文名": "name_en",
    "community": "community",
    "社区": "community",
    "kind": "kind",
    "rollout_stage": "rollout_stage",
    "pilot_on": "pilot_on",
    "rolled_out_on": "rolled_out_on",
    "jurisdiction": "jurisdiction",
}


@dataclass(frozen=True)
class FeatureIn:
    """One area of a file: where it is in the file (1-based), its fields, its polygon as GeoJSON."""

    index: int
    values: dict[str, Any]


def _fields(properties: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if isinstance(properties, dict):
        for key, value in properties.items():
            name = PROPERTY_NAMES.get(str(key).strip().lower()) or PROPERTY_NAMES.get(str(key).strip())
            if name and value is not None and str(value).strip():
                found[name] = str(value).strip()
    return found


def _converted(polygon: dict[str, Any], crs: str) -> dict[str, Any]:
    """The polygon's positions from GCJ-02 to WGS-84 (positions that are not pairs of numbers are left
    for the boundary check to name)."""
    if crs != "gcj02":
        return polygon

    def position(pos: Any) -> Any:
        if isinstance(pos, list) and len(pos) >= 2 and all(isinstance(v, int | float) for v in pos[:2]):
            lat, lon = gcj02_to_wgs84(float(pos[1]), float(pos[0]))
            return [round(lon, 7), round(lat, 7)]
        return pos

    rings = polygon.get("coordinates")
    if not isinstance(rings, list):
        return polygon
    return {**polygon, "coordinates": [[position(p) for p in r] if isinstance(r, list) else r for r in rings]}


def _one_polygon(geometry: Any, index: int) -> dict[str, Any]:
    if isinstance(geometry, dict) and geometry.get("type") == "MultiPolygon":
        parts = geometry.get("coordinates")
        if isinstance(parts, list) and len(parts) == 1:
            return {"type": "Polygon", "coordinates": parts[0]}
        raise InvalidInput(
            N_("feature %(index)d has several polygons: give each part its own feature and code"), index=index
        )
    if not isinstance(geometry, dict):
        raise InvalidInput(N_("feature %(index)d has no geometry"), index=index)
    return geometry


def read_geojson(data: bytes, *, crs: str = "wgs84") -> list[FeatureIn]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(N_("the file is not GeoJSON (UTF-8 JSON): %(reason)s"), reason=str(exc)[:200]) from exc
    if not isinstance(doc, dict):
        raise InvalidInput(N_("the file is not GeoJSON: it must hold a FeatureCollection, a Feature or a Polygon"))
    if doc.get("type") == "FeatureCollection":
        raw = doc.get("features")
        if not isinstance(raw, list):
            raise InvalidInput(N_("the FeatureCollection has no list of features"))
        items = raw
    elif doc.get("type") == "Feature":
        items = [doc]
    elif doc.get("type") in ("Polygon", "MultiPolygon"):
        items = [{"type": "Feature", "geometry": doc, "properties": {}}]
    else:
        raise InvalidInput(N_("the file is not GeoJSON: it must hold a FeatureCollection, a Feature or a Polygon"))
    if len(items) > MAX_FEATURES:
        raise InvalidInput(N_("at most %(max)d areas per file; the file has more"), max=MAX_FEATURES)
    features = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict) or item.get("type") != "Feature":
            raise InvalidInput(N_("feature %(index)d is not a GeoJSON Feature"), index=index)
        values = _fields(item.get("properties"))
        values["boundary"] = _converted(_one_polygon(item.get("geometry"), index), crs)
        features.append(FeatureIn(index, values))
    return features


def _kml_ring(element: Any, index: int) -> list[list[float]]:
    text = element.findtext(f"{KML_NS}coordinates") or ""
    ring = []
    for token in text.split():
        parts = token.split(",")
        try:
            ring.append([float(parts[0]), float(parts[1])])
        except (IndexError, ValueError) as exc:
            raise InvalidInput(
                N_("feature %(index)d holds a position that is not 'longitude,latitude': %(value)r"),
                index=index,
                value=token[:60],
            ) from exc
    return ring


def read_kml(data: bytes, *, crs: str = "wgs84") -> list[FeatureIn]:
    if data.startswith(b"PK\x03\x04"):  # KMZ: a zip whose first .kml file is the document
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                name = next((n for n in archive.namelist() if n.lower().endswith(".kml")), None)
                if name is None or archive.getinfo(name).file_size > MAX_FILE_BYTES:
                    raise InvalidInput(N_("the KMZ file holds no KML document (or one too large)"))
                data = archive.read(name)
        except zipfile.BadZipFile as exc:
            raise InvalidInput(N_("the file is not a valid KMZ archive")) from exc
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise InvalidInput(N_("the file is not valid KML (XML): %(reason)s"), reason=str(exc)[:200]) from exc
    placemarks = list(root.iter(f"{KML_NS}Placemark"))
    if not placemarks:
        raise InvalidInput(N_("the KML file has no Placemark (KML 2.2, one Placemark per area)"))
    if len(placemarks) > MAX_FEATURES:
        raise InvalidInput(N_("at most %(max)d areas per file; the file has more"), max=MAX_FEATURES)
    features = []
    for index, placemark in enumerate(placemarks, start=1):
        properties: dict[str, Any] = {"name": placemark.findtext(f"{KML_NS}name") or ""}
        for data_el in placemark.iter(f"{KML_NS}Data"):
            properties[data_el.get("name", "")] = data_el.findtext(f"{KML_NS}value") or ""
        for simple in placemark.iter(f"{KML_NS}SimpleData"):
            properties[simple.get("name", "")] = simple.text or ""
        polygons = list(placemark.iter(f"{KML_NS}Polygon"))
        if not polygons:
            raise InvalidInput(N_("feature %(index)d has no geometry"), index=index)
        if len(polygons) > 1:
            raise InvalidInput(
                N_("feature %(index)d has several polygons: give each part its own feature and code"), index=index
            )
        outer = polygons[0].find(f"{KML_NS}outerBoundaryIs/{KML_NS}LinearRing")
        if outer is None:
            raise InvalidInput(N_("feature %(index)d has no geometry"), index=index)
        rings = [_kml_ring(outer, index)]
        for inner in polygons[0].iterfind(f"{KML_NS}innerBoundaryIs/{KML_NS}LinearRing"):
            rings.append(_kml_ring(inner, index))
        values = _fields(properties)
        values["boundary"] = _converted({"type": "Polygon", "coordinates": rings}, crs)
        features.append(FeatureIn(index, values))
    return features


def read_file(data: bytes, *, filename: str = "", crs: str = "wgs84") -> list[FeatureIn]:
    """The areas of a GeoJSON, KML or KMZ file, told apart by content (then by name)."""
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(N_("the file is larger than %(mib)d MiB; split it"), mib=MAX_FILE_BYTES // (1024 * 1024))
    if crs not in ("wgs84", "gcj02"):
        raise InvalidInput(N_("crs must be wgs84 or gcj02"))
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:200]
    if data.startswith(b"PK\x03\x04") or head.startswith(b"<") or filename.lower().endswith((".kml", ".kmz")):
        return read_kml(data, crs=crs)
    return read_geojson(data, crs=crs)
