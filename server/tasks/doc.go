// Package tasks runs pushd's background tasks: work that outlives the
// request that started it, whose every change goes out as a progress event
// on the tasks stream (protocol.TasksStream).
//
// Start with New and a Runner; the server makes one (Server.Tasks returns
// it) and serves it over HTTP. Programs that embed pushd add their own kinds
// of task with RegisterKind. The runner reaches the rest of the server only
// through a Stream (to announce changes and read back what was announced),
// a Store (to keep task records across restarts) and Peers (to reach the
// tasks of the other servers that share the Store); it never imports the
// server.
package tasks
