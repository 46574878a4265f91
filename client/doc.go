// Package client is the Go client of pushd: it follows streams over
// WebSocket, Server-Sent Events or long polling, resumes after every drop
// without losing or repeating an event, publishes to rooms and drives
// background tasks. PROTOCOL.md at the repository root is the wire contract
// it implements.
//
// Start with New, which takes the server's base URL and options (the user
// to act as, a bearer token, an *http.Client, a logger):
//
//	c, err := client.New("http://127.0.0.1:8080", client.WithUser("alice"))
//
// Then either call the request helpers (Publish, Presence, Cursor, Poll,
// StartTask, GetTask, ListTasks, CancelTask, ReportProgress), each one
// request bounded by its context and the client's request timeout, or
// follow a stream with Subscribe:
//
//	sub := c.Subscribe(ctx, client.Room("lobby"), client.SubscribeOptions{})
//	defer sub.Close()
//	for ev := range sub.Events() {
//		// ev is a protocol.Event; a reset event means "refetch derived state"
//	}
//	// sub.Err() says why it ended
//
// A Subscription owns one goroutine that connects, reads, reconnects with
// exponential backoff and full jitter, and resumes from the cursor of the
// last event it handed over; it drops duplicates, so every event reaches the
// caller once, in order. Its Events channel is bounded and the goroutine
// waits on it: a slow reader costs nothing but delay, because the
// subscription resumes from its cursor. Connection state changes
// (connecting, connected, reconnecting, closed) arrive on States or through
// SubscribeOptions.OnState. Close, or cancelling the context given to
// Subscribe, stops it and leaves no goroutine behind.
//
// Publish gives every message an id (WithID, or a random one) and retries a
// failure that trying again may fix with the same id: the server stores
// the message once, so Publish is safe to retry, by itself and by the
// caller (with WithID).
//
// A subscription to one task's events (Task(id)) ends by itself after the
// task's final event: the server says the stream is over, and Events is
// closed with Err nil. FollowTask combines such a subscription with
// GetTask and returns the task's final state.
//
// Errors the server answers with are *protocol.Error values (HTTP status,
// code, message and Retry-After), wrapped with the operation that failed;
// use errors.As to read them. Retryable says whether trying the same
// request again may succeed after an error (the rule subscriptions
// reconnect by), and MayHaveApplied whether the server may have done what
// a failed request asked.
package client
