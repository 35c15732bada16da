//go:build !linux

package sites

import "errors"

// newCachedFile: no unnamed files here; large files are served from their
// bytes.
func newCachedFile(string, []byte) (*cachedFile, error) {
	return nil, errors.New("sites: no unnamed files on this system")
}
