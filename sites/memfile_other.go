//go:build !linux

package sites

import "errors"

// newMemFile: no memfd here; large files are served from their bytes.
func newMemFile([]byte) (*memFile, error) {
	return nil, errors.New("sites: no memfd on this system")
}
