package natsstore

// The presence roster keeps, in one JetStream key-value bucket, which
// servers have which users in which rooms:
//
//	r.<room>.<user>   the servers that have user in room: {"servers":[...]}
//	s.<server>        a server's heartbeat, rewritten every Refresh
//
// (names escaped so that their dots do not split the key). A server is
// named by its node name and a random incarnation, new for every Roster and
// again whenever the others have swept it, so the entries of a server that
// vanished are never taken for a live one's.
//
// Every change to a room key is a compare-and-set on its revision, retried
// on conflict: the Create that makes a key is the user's first arrival on
// any server (the login), the Purge that removes it the last departure (the
// logout). Exactly one server's write can succeed at each revision, so each
// of these happens once however many servers race.
//
// Liveness is one heartbeat key per server rather than a time per room key:
// the steady cost is one write per server per Refresh whatever the number
// of users, and each server judges staleness by its own clock, as "no new
// revision of that heartbeat seen for TTL", so servers' clocks need not
// agree. A stale server's heartbeat is purged (a compare-and-set too), then
// it is taken out of every room key; a key that this empties is purged and
// the server whose purge succeeded calls gone.
//
// Every server watches the whole bucket into memory: the sweep needs every
// key and every heartbeat anyway, and Users then answers without a round
// trip to NATS, at the cost of the whole roster's size in each server's
// memory (small: a few bytes per user and room).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	mathrand "math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/server"
)

// RosterOptions configure a Roster. The zero value is ready to use.
type RosterOptions struct {
	// Node names this server in the roster: letters, digits, - and _
	// (default: random). The roster adds a random suffix of its own, so
	// two servers may share a name, and a restarted server never mistakes
	// what it left behind for its own.
	Node string
	// Refresh is how often the server tells the others it is alive, and
	// sweeps (default 5 s).
	Refresh time.Duration
	// TTL is how long a server may go without refreshing before the others
	// take its users out: at least 2 × Refresh, and better more than
	// Refresh plus twice the store's Timeout, since one refresh may take
	// that long when NATS falters (default: the larger of 3 × Refresh and
	// that).
	TTL time.Duration
	// Logger receives sweeps and NATS trouble (default: the store's).
	Logger *slog.Logger
}

// Roster is a server.Roster in a JetStream key-value bucket, shared by every
// server whose Store has the same NATS and prefix. Its methods may be
// called concurrently. Users answers from a view of the bucket that Run
// keeps; without Run, Users fails with server.ErrUnavailable.
type Roster struct {
	store   *Store
	kv      jetstream.KeyValue
	bucket  string
	node    string
	refresh time.Duration
	ttl     time.Duration
	timeout time.Duration
	markers bool // purge markers expire (the bucket has LimitMarkerTTL)
	log     *slog.Logger

	// stripes serialise this server's own changes to one key: an Arrive,
	// a Depart and Run's retries never interleave on it. A key's stripe is
	// chosen by its hash, seeded by seed.
	stripes [64]sync.Mutex
	seed    maphash.Seed

	mu          sync.Mutex
	self        string                 // this server's current incarnation
	mine        []string               // every incarnation this Roster has had, self last
	hbRev       uint64                 // revision of self's heartbeat as last written
	local       map[string]*localEntry // by room key: what this server wants there
	reassertGen uint64                 // bumped by every new incarnation
	reasserted  uint64                 // the generation whose entries are all written
	lostSweeps  map[string]lostSweep   // by room key: sweeps whose removal went unanswered

	// The view of the bucket, fed by the watcher.
	rooms         map[string]map[string]*rosterEntry // room -> user -> servers
	servers       map[string]*serverState            // incarnation -> heartbeat seen
	watchRev      uint64                             // the last revision the watcher delivered
	bucketCreated time.Time                          // when the bucket the view is of was made
	rewatch       bool                               // the bucket may have been made again: reload the view
	selfSeenAt    time.Time                          // when the view last got this server's own heartbeat
	synced        chan struct{}                      // closed once the view has been loaded
	isSynced      bool
}

var _ server.Roster = (*Roster)(nil)

// localEntry is this server's own intent for a room key.
type localEntry struct {
	room, user string
	present    bool // a local connection has the user: keep our entry there
	// pending: take our entry out (a Depart or Withdraw, or an Arrive
	// that failed after it may have written); announce: call gone if that
	// empties the key, because a login went out and its logout has not.
	pending, announce bool
	// purged: a removal of ours that would have emptied the key went
	// unanswered, so it may have landed; the key found absent later
	// counts as emptied by it.
	purged bool
}

// lostSweep is a room key that a sweep would have emptied, without an
// answer: the next sweep's retry takes the same servers out, and counts
// the key found absent as emptied by it.
type lostSweep struct {
	room, user string
	stale      []string // the servers swept out
}

// rosterEntry is a room key as the view knows it. A tombstone stands for a
// key this server removed, until the watcher reports the removal too, so
// that an older value the watcher still delivers cannot bring it back.
type rosterEntry struct {
	rev     uint64
	servers []string
	tomb    bool
}

// serverState is what this server has seen of another's heartbeat: the
// last revision and when it first saw it, by its own clock.
type serverState struct {
	rev  uint64
	at   time.Time
	dead bool // heartbeat removed: the server was swept
}

// rosterValue is a room key's value.
type rosterValue struct {
	Servers []string `json:"servers"`
}

var nodeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Roster returns the presence roster of the servers that share this store's
// NATS and prefix, creating its bucket if needed, and registers this server
// in it. Call Run to keep it registered.
func (s *Store) Roster(ctx context.Context, opts RosterOptions) (*Roster, error) {
	if opts.Node == "" {
		opts.Node = randomHex(4)
	}
	if !nodeRE.MatchString(opts.Node) {
		return nil, fmt.Errorf("open presence roster: node name %q: use 1 to 64 letters, digits, - and _", opts.Node)
	}
	if opts.Refresh <= 0 {
		opts.Refresh = 5 * time.Second
	}
	if opts.TTL <= 0 {
		opts.TTL = max(3*opts.Refresh, opts.Refresh+2*s.opts.Timeout)
	}
	if opts.TTL < 2*opts.Refresh {
		return nil, fmt.Errorf("open presence roster: TTL %s is under twice the refresh interval %s", opts.TTL, opts.Refresh)
	}
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	if err := s.checkOpen(); err != nil {
		return nil, fmt.Errorf("open presence roster: %w", err)
	}
	r := &Roster{
		store:      s,
		bucket:     s.opts.Prefix + "_presence",
		node:       opts.Node,
		refresh:    opts.Refresh,
		ttl:        opts.TTL,
		timeout:    s.opts.Timeout,
		log:        opts.Logger.With("roster", opts.Node),
		local:      make(map[string]*localEntry),
		lostSweeps: make(map[string]lostSweep),
		rooms:      make(map[string]map[string]*rosterEntry),
		servers:    make(map[string]*serverState),
		synced:     make(chan struct{}),
		seed:       maphash.MakeSeed(),
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.openBucket(ctx); err != nil {
		return nil, fmt.Errorf("open presence roster: %w", err)
	}
	if err := r.incarnate(ctx); err != nil {
		return nil, fmt.Errorf("open presence roster: %w", err)
	}
	r.reasserted = r.reassertGen
	return r, nil
}

// openBucket creates or updates the bucket and keeps a handle on it. Purge
// markers expire after TTL where the NATS server can do that (2.11 on), so
// the bucket does not grow by a marker for every user who ever came.
func (r *Roster) openBucket(ctx context.Context) error {
	cfg := jetstream.KeyValueConfig{
		Bucket:         r.bucket,
		Description:    "pushd presence: the servers that have each user in each room",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       r.store.opts.Replicas,
		LimitMarkerTTL: max(r.ttl, time.Second),
	}
	kv, err := r.store.js.CreateOrUpdateKeyValue(ctx, cfg)
	markers := true
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		cfg.LimitMarkerTTL, markers = 0, false
		kv, err = r.store.js.CreateOrUpdateKeyValue(ctx, cfg)
	}
	if err != nil {
		return unavailable(fmt.Errorf("bucket %s: %w", r.bucket, err))
	}
	r.mu.Lock()
	r.kv, r.markers = kv, markers
	r.mu.Unlock()
	return nil
}

// incarnate gives this server a new incarnation and writes its first
// heartbeat. Entries of earlier incarnations are rewritten by reassert.
func (r *Roster) incarnate(ctx context.Context) error {
	me := r.node + "=" + randomHex(4)
	rev, err := r.kvHandle().Create(ctx, serverKey(me), heartbeat())
	if err != nil {
		return unavailable(fmt.Errorf("register %s in %s: %w", me, r.bucket, err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.self, r.hbRev = me, rev
	r.mine = append(r.mine, me)
	r.reassertGen++
	return nil
}

// Bucket names the roster's key-value bucket in NATS.
func (r *Roster) Bucket() string { return r.bucket }

func (r *Roster) kvHandle() jetstream.KeyValue {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kv
}

// ---- keys and values ---------------------------------------------------

// roomKey is the key of user in room. Names cannot hold '=', so the escape
// is undone without doubt.
func roomKey(room, user string) string { return "r." + escape(room) + "." + escape(user) }

func serverKey(member string) string { return "s." + member }

var unescaper = strings.NewReplacer("=2E", ".", "=2F", "/")

// parseKey says what a key of the bucket is: a room key (room and user
// set), a heartbeat (member set), or neither.
func parseKey(key string) (room, user, member string) {
	if rest, ok := strings.CutPrefix(key, "r."); ok {
		if r, u, ok := strings.Cut(rest, "."); ok && r != "" && u != "" && !strings.Contains(u, ".") {
			return unescaper.Replace(r), unescaper.Replace(u), ""
		}
		return "", "", ""
	}
	if m, ok := strings.CutPrefix(key, "s."); ok {
		return "", "", m
	}
	return "", "", ""
}

func heartbeat() []byte { return []byte(time.Now().UTC().Format(time.RFC3339Nano)) }

func encodeServers(servers []string) []byte {
	b, _ := json.Marshal(rosterValue{Servers: servers})
	return b
}

func decodeServers(b []byte) ([]string, error) {
	var v rosterValue
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v.Servers, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// isConflict reports a compare-and-set that lost: the key's revision was
// not the one expected. Create on a key with a delete marker reports it
// without ErrKeyExists, hence the codes.
func isConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// ---- server.Roster -----------------------------------------------------

// Arrive implements server.Roster. On error the user may or may not be in
// the bucket; Run takes this server's entry out again unless a later
// Arrive succeeds.
func (r *Roster) Arrive(ctx context.Context, room, user string) (bool, error) {
	if err := r.store.checkOpen(); err != nil {
		return false, fmt.Errorf("arrive %s in %s: %w", user, room, err)
	}
	key, unlock := r.lockKey(room, user)
	defer unlock()
	r.mu.Lock()
	prev := r.local[key]
	r.local[key] = &localEntry{room: room, user: user, present: true}
	me, mine := r.self, slices.Clone(r.mine)
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	others := false // the key has servers other than this one
	out, err := r.update(ctx, key, room, user, func(servers []string) ([]string, bool) {
		others = slices.ContainsFunc(servers, func(s string) bool { return !slices.Contains(mine, s) })
		return withOnly(servers, me, mine)
	})
	// A departure of this server's that is still being taken out: if it
	// owes a logout, the user never left; if it was a Withdraw, their
	// login never went out.
	leaving := prev != nil && prev.pending
	if err != nil {
		// If the write landed and joined other servers that have the user,
		// their login went out, and emptying the key later owes its
		// logout; so does a departure that owed one.
		announce := leaving && prev.announce || others
		r.mu.Lock()
		r.local[key] = &localEntry{room: room, user: user, pending: true, announce: announce, purged: leaving && prev.purged}
		r.mu.Unlock()
		return false, fmt.Errorf("arrive %s in %s: %w", user, room, err)
	}
	switch {
	case leaving && prev.announce:
		return false, nil
	case leaving:
		return !others, nil // this is the login, unless another server's was
	}
	return out.created, nil
}

// Depart implements server.Roster. On error Run keeps trying to take this
// server's entry out, and calls gone if that turns out to be the last.
func (r *Roster) Depart(ctx context.Context, room, user string) (bool, error) {
	last, err := r.depart(ctx, room, user, true)
	if err != nil {
		return false, fmt.Errorf("depart %s from %s: %w", user, room, err)
	}
	return last, nil
}

// Withdraw takes back an Arrive that reported the user first but whose
// login the caller could not publish: it takes this server's entry out
// as Depart does, but no logout is owed for it, so on error Run keeps
// trying without ever calling gone for it. An Arrive meanwhile is the
// user's login unless another server has them.
func (r *Roster) Withdraw(ctx context.Context, room, user string) error {
	if _, err := r.depart(ctx, room, user, false); err != nil {
		return fmt.Errorf("withdraw %s from %s: %w", user, room, err)
	}
	return nil
}

// depart takes this server's entry for user in room out, and reports
// whether that emptied the key. announce: a login went out, so emptying
// the key owes a logout.
func (r *Roster) depart(ctx context.Context, room, user string, announce bool) (bool, error) {
	key, unlock := r.lockKey(room, user)
	defer unlock()
	r.mu.Lock()
	prev := r.local[key]
	e := &localEntry{room: room, user: user, pending: true, announce: announce,
		purged: prev != nil && prev.pending && prev.purged}
	r.local[key] = e
	mine := slices.Clone(r.mine)
	r.mu.Unlock()
	if err := r.store.checkOpen(); err != nil {
		return false, err
	}
	return r.takeOut(ctx, key, e, mine)
}

// takeOut takes this server's incarnations (mine) out of a room key for
// e, its pending entry, forgets e once that is done, and reports whether
// that emptied the key. The caller holds the key's stripe. A removal that
// goes unanswered may have landed: e remembers it, and a later takeOut
// that finds the key absent counts it as emptied, so that the logout it
// owes is announced once. (Were the key taken out by another server's
// sweep of this one in between, both would announce it; a sweep of a live
// server is rare.)
func (r *Roster) takeOut(ctx context.Context, key string, e *localEntry, mine []string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	absent := false
	out, err := r.update(ctx, key, e.room, e.user, func(servers []string) ([]string, bool) {
		absent = len(servers) == 0
		return without(servers, mine)
	})
	if err != nil {
		if out.removed {
			r.mu.Lock()
			e.purged = true
			r.mu.Unlock()
		}
		return false, err
	}
	r.mu.Lock()
	if r.local[key] == e {
		delete(r.local, key)
	}
	r.mu.Unlock()
	return out.removed || e.purged && absent, nil
}

// Users implements server.Roster from the view Run keeps, which follows the
// bucket closely but not in lockstep: a user another server has just let
// in shows up here a moment later. It fails with server.ErrUnavailable
// while NATS is out of reach.
func (r *Roster) Users(ctx context.Context, room string) ([]string, error) {
	if err := r.store.checkOpen(); err != nil {
		return nil, fmt.Errorf("presence of %s: %w", room, err)
	}
	timer := time.NewTimer(r.timeout)
	defer timer.Stop()
	select {
	case <-r.synced:
	case <-ctx.Done():
		return nil, fmt.Errorf("presence of %s: %w", room, ctx.Err())
	case <-timer.C:
		return nil, unavailable(fmt.Errorf("presence of %s: the roster is not loaded yet", room))
	}
	r.mu.Lock()
	users := make([]string, 0, len(r.rooms[room]))
	for u, e := range r.rooms[room] {
		if !e.tomb && len(e.servers) > 0 {
			users = append(users, u)
		}
	}
	r.mu.Unlock()
	slices.Sort(users)
	return users, nil
}

// lockKey takes the stripe of user's key in room, which serialises this
// server's changes to that key, and returns the key and the stripe's
// unlock.
func (r *Roster) lockKey(room, user string) (key string, unlock func()) {
	key = roomKey(room, user)
	mu := &r.stripes[maphash.String(r.seed, key)%uint64(len(r.stripes))]
	mu.Lock()
	return key, mu.Unlock
}

// withOnly puts me into servers and takes this Roster's earlier
// incarnations out; changed is false if servers were so already.
func withOnly(servers []string, me string, mine []string) ([]string, bool) {
	next := make([]string, 0, len(servers)+1)
	for _, s := range servers {
		if !slices.Contains(mine, s) {
			next = append(next, s)
		}
	}
	next = append(next, me)
	slices.Sort(next)
	return next, !slices.Equal(next, servers)
}

// without takes the members of gone out of servers.
func without(servers []string, gone []string) ([]string, bool) {
	next := slices.DeleteFunc(slices.Clone(servers), func(s string) bool { return slices.Contains(gone, s) })
	return next, len(next) != len(servers)
}

// outcome is what a change to a room key did.
type outcome struct {
	created bool // it made the key: no server had the user
	removed bool // it removed the key: no server has the user now
}

// update changes the servers of a room key by compare-and-set: it reads
// the key, writes what change makes of it if that differs, and starts over
// if another write came first. It always reads the bucket rather than
// trusting the view: a revision is a compare-and-set's only guard, and a
// bucket that NATS lost and made again counts its revisions from 1 again.
// If a write fails without an answer, the outcome says what that write
// would have done.
func (r *Roster) update(ctx context.Context, key, room, user string, change func([]string) ([]string, bool)) (outcome, error) {
	kv := r.kvHandle()
	for attempt := 0; ; attempt++ {
		// Several servers race for this key: spread the retries.
		if attempt > 1 && !backoff.Sleep(ctx, mathrand.N(time.Duration(attempt)*time.Millisecond)) {
			return outcome{}, unavailable(fmt.Errorf("presence %s: %w", key, ctx.Err()))
		}
		var rev uint64
		var servers []string
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return outcome{}, unavailable(fmt.Errorf("read presence %s: %w", key, err))
		default:
			rev = e.Revision()
			if servers, err = decodeServers(e.Value()); err != nil {
				r.log.Warn("overwrite an unreadable presence entry", "key", key, "err", err)
				servers = nil
			}
		}
		next, changed := change(servers)
		if !changed {
			return outcome{}, nil
		}
		var out outcome
		var newRev uint64
		switch {
		case len(next) == 0 && rev == 0:
			return outcome{}, nil // nothing there to take out
		case len(next) == 0:
			err = r.purge(ctx, kv, key, rev)
			out.removed = true
		case rev == 0:
			// The key is absent or holds a marker: Create handles both.
			newRev, err = kv.Create(ctx, key, encodeServers(next))
			out.created = true
		default:
			newRev, err = kv.Update(ctx, key, encodeServers(next), rev)
		}
		if isConflict(err) {
			continue
		}
		if err != nil {
			// The write may have landed: out says what it was.
			return out, unavailable(fmt.Errorf("write presence %s: %w", key, err))
		}
		if out.removed {
			r.applyRoom(room, user, rev, nil, true, true)
		} else {
			r.applyRoom(room, user, newRev, next, false, true)
		}
		return out, nil
	}
}

// purge removes a key if it is still at rev. Its marker expires where the
// bucket allows it.
func (r *Roster) purge(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64) error {
	opts := []jetstream.KVDeleteOpt{jetstream.LastRevision(rev)}
	if r.markers {
		opts = append(opts, jetstream.PurgeTTL(max(r.ttl, time.Second)))
	}
	return kv.Purge(ctx, key, opts...)
}
