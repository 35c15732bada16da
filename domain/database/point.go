package database

import (
	"encoding/json"
	"fmt"
	"math"
)

// CoercePoint returns v as a point's typed value, []any{longitude,
// latitude} of float64. It takes Appwrite's shape, a [longitude, latitude]
// array, or a GeoJSON Point object ({"type": "Point", "coordinates":
// [longitude, latitude]}); longitude must lie in [-180, 180] and latitude in
// [-90, 90]. Errors name the coordinate that is wrong.
func CoercePoint(v any) ([]any, error) {
	if m, ok := v.(map[string]any); ok {
		if t, _ := m["type"].(string); t != "Point" {
			return nil, fmt.Errorf("must be a [longitude, latitude] array or a GeoJSON Point object; got an object whose type is not \"Point\"")
		}
		v = m["coordinates"]
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 2 {
		if ok {
			return nil, fmt.Errorf("must be a [longitude, latitude] array of 2 numbers; got %d elements", len(arr))
		}
		return nil, fmt.Errorf("must be a [longitude, latitude] array; got %s", describe(v))
	}
	lon, err := coordinate(arr[0], "longitude", 180)
	if err != nil {
		return nil, err
	}
	lat, err := coordinate(arr[1], "latitude", 90)
	if err != nil {
		return nil, err
	}
	return []any{lon, lat}, nil
}

func coordinate(v any, name string, limit float64) (float64, error) {
	f, ok := floatOf(v)
	if !ok {
		if n, isNumber := v.(json.Number); isNumber {
			return 0, fmt.Errorf("%s must be a number; got %s", name, n)
		}
		return 0, fmt.Errorf("%s must be a number; got %s", name, describe(v))
	}
	if math.IsNaN(f) || f < -limit || f > limit {
		return 0, fmt.Errorf("%s must be between %g and %g; got %s", name, -limit, limit, formatFloat(f))
	}
	if f == 0 {
		f = 0 // -0 and 0 are one point; keep one encoding
	}
	return f, nil
}
