//go:build !unix

package main

import "errors"

// raiseFileLimit has no open-file limit to read or raise here.
func raiseFileLimit() (fileLimit, error) {
	return fileLimit{}, errors.New("no open-file limit on this system")
}
