// Package bench is pushd's load generator: it connects many subscribers to
// one room, publishes messages into it, and reports what arrived, how fast
// and how late.
//
// Call Run with Options (DefaultOptions holds the defaults of pushd bench).
// Run follows the method of a fair push benchmark:
//
//  1. learn the room's current cursor with a short poll;
//  2. connect every subscriber with since=<that cursor>, at most
//     ConnectConcurrency at a time, and measure memory per connection;
//  3. publish Messages messages through Publishers publishers, paced to Rate;
//     each text carries the run, the publisher, its sequence number and the
//     time it was sent;
//  4. wait until every subscriber has every acknowledged message, or until
//     Drain passes without a delivery.
//
// A subscriber that is dropped (a slow_consumer close included) reconnects
// with the cursor of the last event it read, as PROTOCOL.md tells clients
// to; the report counts those reconnects. Report.Check says whether any
// acknowledged message was lost, duplicated or delivered out of order.
//
// With ServerCommand Run starts the target's server as a process of its
// own, and with RestartAfter restarts it in the middle of the publishing:
// the publishers send what failed again with the same message ids, and the
// report says how long the server was away and how long every subscriber
// took to come back (a reconnect storm), besides what Check checks.
//
// Latency is the subscriber's receive time minus the publisher's send time,
// both read from this process's clock, so the bench and the server it
// measures must share a clock (run them on one machine).
package bench
