package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/pushd/push/protocol"
)

// statsPath is the stats snapshot's path; its stream is under it.
const statsPath = "/v1/admin/stats"

// Stats is the operators' stream: a protocol.Stats snapshot of the server
// (of every node of a cluster) each second, in events of type
// protocol.TypeStats. It needs a token with the admin right, or on a
// server without tokens a client on the same machine. The server keeps
// the last minute of it, in memory: a subscription from "0" starts with
// that, and one that resumes after a server restart gets a reset.
func Stats() Stream { return Stream{kind: kindStats} }

// Stats returns a snapshot of the server's figures, of every node of a
// cluster merged (GET /v1/admin/stats). A server that nobody has asked
// for a while takes about a second to answer: its rates need two samples.
func (c *Client) Stats(ctx context.Context) (*protocol.Stats, error) {
	var st protocol.Stats
	if err := c.do(ctx, http.MethodGet, statsPath, nil, nil, 0, http.StatusOK, &st); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return &st, nil
}

// Subscribers returns the subscribers of a stream ("room/lobby", "tasks")
// on every node, the limit furthest behind first (0: the server's most,
// protocol.MaxSubscribers).
func (c *Client) Subscribers(ctx context.Context, stream string, limit int) (*protocol.SubscriberList, error) {
	q := withLimit(url.Values{"stream": {stream}}, limit)
	var list protocol.SubscriberList
	if err := c.do(ctx, http.MethodGet, statsPath+"/subscribers", q, nil, 0, http.StatusOK, &list); err != nil {
		return nil, fmt.Errorf("subscribers of %s: %w", stream, err)
	}
	return &list, nil
}
