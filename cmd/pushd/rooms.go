package main

import (
	"strings"

	"github.com/pushd/push/protocol"
)

// parseRooms splits a --rooms value into the rooms and patterns a token
// grants, refusing any that no room can ever match (see
// protocol.ValidateRoomPattern).
func parseRooms(value string) ([]string, error) {
	if strings.TrimSpace(value) == "" {
		return nil, usagef("--rooms is empty: name the rooms the token may use, e.g. --rooms 'lobby,dev-*', or leave --rooms out for a token that may use no room")
	}
	var rooms []string
	for i, r := range strings.Split(value, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			return nil, usagef("--rooms %q: room %d is empty; separate rooms with one comma, e.g. --rooms 'lobby,dev-*'", value, i+1)
		}
		if err := protocol.ValidateRoomPattern(r); err != nil {
			return nil, usagef("--rooms: %s", nameRule(err))
		}
		rooms = append(rooms, r)
	}
	return rooms, nil
}

// nameRule returns the message of an error from protocol.ValidateName
// without the "bad name: " it starts with.
func nameRule(err error) string {
	return strings.TrimPrefix(err.Error(), protocol.ErrBadName.Error()+": ")
}
