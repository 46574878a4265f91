// Package protocol defines pushd's wire contract: the event every transport
// carries, cursors that let a client resume, the error body of every failed
// request, and the rules for room and user names.
//
// It imports nothing but the standard library, so both the server and any
// client can depend on it. PROTOCOL.md at the repository root is the prose
// version of the same contract.
package protocol
