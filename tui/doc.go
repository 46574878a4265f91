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
// implements them with the Go client, their Updates from a Feed (the
// subscriptions of the streams a screen follows, merged into one channel;
// pushd top's screen reads one too); tests implement them with values.
//
// The screens share a frame: their configs embed Common (the server, the
// transport asked for, the styles, the clock, the request timeout), and
// each model embeds the frame that holds what every screen has, beside its
// own parts: its size, the connection its header shows, the spinner, the
// help line, the events already applied. A component handles its own keys:
// the chat screen offers a key to its message pane, which says whether it
// used it, and gives the input line what the pane left.
//
// Updates reach a model through a command that waits on the channel, drains
// whatever else is already queued into one updatesMsg, and is re-armed after
// each message, so a burst of events costs one Update and one View per
// frame rather than one per event.
//
// Everything is drawn with the Styles given in the model's config, built by
// NewStyles from a lipgloss renderer: an ASCII colour profile gives plain
// text, which is what --no-color and the golden tests use.
package tui
