// Package server is pushd: an append-only log of events per stream, fanned
// out to subscribers over WebSocket, Server-Sent Events and long polling on
// one URL per stream, with resume from a cursor so that nothing is lost.
//
// Start with New and Config (DefaultConfig holds every default); a Server
// is an http.Handler. The log lives in a Store (MemoryStore here; durable
// stores implement the same interface, and store.go says what else a store
// may offer).
// The Hub does the fan-out: each event is encoded once into a frame shared
// by every subscriber and transport, and every subscriber reads the stream's
// recent tail at its own pace, so a publisher never waits on a subscriber.
package server
