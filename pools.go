package warmpool

import "sync"

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
