package server

import (
	"runtime"
	"sync"
)

// runQueue runs woken pushers on a few goroutines rather than one fresh
// goroutine per wake. A publish to a room of 15,000 wakes 15,000 parked
// subscribers at once; a goroutine each costs its start and, every time,
// the growth of a new small stack to the depth of a socket write, and they
// all contend for the CPUs at once. The queue's workers keep their grown
// stacks from one pusher to the next, take pushers in the order they were
// woken, and are never more than twice the CPUs.
//
// A worker does only what cannot block: it collects a subscriber's events
// and writes them with a write that never waits (sink.trySend). Whatever
// may wait (a socket that does not take the whole write, a ping, an end, a
// store error) goes to a goroutine of the pusher's own, as before.
//
// Workers exist only while there is work: one that finds the queue empty
// ends. The queue holds no goroutine of its own when idle.
type runQueue struct {
	mu      sync.Mutex
	queue   []*pusher
	head    int
	workers int
	max     int
}

func newRunQueue() *runQueue {
	return &runQueue{max: 2 * runtime.GOMAXPROCS(0)}
}

// push queues p, whose running flag the caller has set, and starts a
// worker when there are fewer than the queue has work for. It never
// blocks on the workers.
func (q *runQueue) push(p *pusher) {
	q.mu.Lock()
	q.queue = append(q.queue, p)
	start := q.workers < q.max && q.workers < len(q.queue)-q.head
	if start {
		q.workers++
	}
	q.mu.Unlock()
	if start {
		go q.work()
	}
}

// runQueueTake is how many pushers a worker takes at a time, so that the
// workers and the waker share the lock less often.
const runQueueTake = 16

// work runs queued pushers until there are none.
func (q *runQueue) work() {
	var mine [runQueueTake]*pusher
	for {
		q.mu.Lock()
		n := copy(mine[:], q.queue[q.head:])
		clear(q.queue[q.head : q.head+n])
		q.head += n
		if q.head == len(q.queue) {
			q.queue, q.head = q.queue[:0], 0
		}
		if n == 0 {
			q.workers--
			if q.workers == 0 && cap(q.queue) > 1<<16 {
				q.queue = nil // a storm's worth of queue is not kept
			}
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		for i, p := range mine[:n] {
			mine[i] = nil
			p.poll()
		}
	}
}
