//go:build !linux

package js

// rss is unknown off Linux: the worker's own memory limit is then the only
// bound.
func rss(int) int64 { return -1 }
