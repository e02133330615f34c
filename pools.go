package warmpool

import (
	"sync"
	"time"
)

// poolSet is a client's pools, one per dialed address. An endpoint address
// that another host name already uses, or that is also dialed as it is, gets
// the key "ip:port@name": its connections carry another TLS server name, so
// they cannot share a pool.
type poolSet struct {
	env *poolEnv
	m   sync.Map // key → *pool

	mu   sync.Mutex
	list []*pool // every pool ever made, in order; guarded by mu
}

// get returns the pool of addr for host name name ("" for an address
// dialed as it is), making it on first use.
func (s *poolSet) get(addr, name string) *pool {
	if p, ok := s.m.Load(addr); ok && p.(*pool).name == name {
		return p.(*pool)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.m.Load(addr); ok {
		if p.(*pool).name == name {
			return p.(*pool)
		}
		addr += "@" + name
		if p, ok := s.m.Load(addr); ok {
			return p.(*pool)
		}
	}
	p := newPool(s.env, addr, name)
	s.m.Store(addr, p)
	s.list = append(s.list, p)
	return p
}

// all returns every pool, in the order they were made.
func (s *poolSet) all() []*pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*pool(nil), s.list...)
}

// poolEnv is what every pool of a client shares: its settings, and the
// client's clock, hooks, logger and done channel, handed down once.
type poolEnv struct {
	now         func() time.Time
	rand        func() float64
	hooks       *Hooks
	log         func(msg string, args ...any) // lifecycle notes, such as a learned idle timeout
	done        <-chan struct{}               // closed by Client.Close
	idleExpiry  time.Duration
	maxAge      time.Duration // 0: connections never retire
	maxConns    int
	poolTimeout time.Duration
	learnIdle   bool

	concurrencyLimit string        // concurrency_limit
	limitQueue       time.Duration // limit_queue_timeout
	breakerFailures  int32         // circuit_breaker_failures; 0: off
	openFor          time.Duration // circuit_breaker_open_for
	ejectAfter       int32         // eject_after_failures
	throttle         bool          // client-side throttling: on with the limit or the breaker
	http2            bool          // HTTP/2 is offered over TLS
	h2c              bool          // plain connections speak HTTP/2 by prior knowledge
}

// newPoolEnv is what the pools of c, made from cfg, share.
func newPoolEnv(cfg Config, c *Client) *poolEnv {
	return &poolEnv{
		now:         c.now,
		rand:        c.rand,
		hooks:       &c.hooks,
		log:         logFunc(c.log),
		done:        c.done,
		idleExpiry:  cfg.KeepaliveExpiry,
		maxAge:      cfg.MaxConnectionAge,
		maxConns:    cfg.MaxConnections,
		poolTimeout: cfg.PoolTimeout,
		learnIdle:   !cfg.DisableIdleLearning,
		http2:       !cfg.DisableHTTP2 || cfg.H2C,
		h2c:         cfg.H2C,

		concurrencyLimit: cfg.ConcurrencyLimit,
		limitQueue:       cfg.LimitQueueTimeout,
		breakerFailures:  int32(cfg.CircuitBreakerFailures),
		openFor:          cfg.CircuitBreakerOpenFor,
		ejectAfter:       int32(cfg.EjectAfterFailures),
		throttle:         cfg.ConcurrencyLimit != concurrencyOff || cfg.CircuitBreakerFailures > 0,
	}
}
