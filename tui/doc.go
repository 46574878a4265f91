// Package tui holds pushtui's Bubble Tea models: the chat screen
// (ChatModel), the task list (WatchModel) and the single-task follower
// (FollowModel), and the components they are built from: the message pane,
// the presence list, the input line with history, the task strip and the
// task table.
//
// The models never talk to the network themselves. Each takes a small
// interface (ChatConn, TaskConn, FollowConn) whose Updates channel carries
// the events of the streams it follows and the changes of their connection
// state, and whose methods send messages or act on tasks. cmd/pushtui
// implements them with the Go client; tests implement them with values.
//
// Updates reach a model through a command that waits on the channel, drains
// whatever else is already queued into one UpdatesMsg, and is re-armed after
// each message, so a burst of events costs one Update and one View per
// frame rather than one per event.
//
// Everything is drawn with the Styles given in the model's config, built by
// NewStyles from a lipgloss renderer: an ASCII colour profile gives plain
// text, which is what --no-color and the golden tests use.
package tui
