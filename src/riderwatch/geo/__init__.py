"""Geography: GCJ-02 ⇄ WGS-84, distances, GeoJSON areas."""
