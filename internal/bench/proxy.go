package bench

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"

	"github.com/warmpool/warmpool/internal/load"
	"github.com/warmpool/warmpool/internal/loopback"
)

// netProxy is an in-process toxiproxy between the client and the server, on
// loopback, that makes the network slower: latency, jitter, bandwidth.
type netProxy struct {
	p *toxiproxy.Proxy
}

// network is what the proxy adds.
type network struct {
	rtt, jitter   time.Duration
	bandwidthKBps int64
}

var toxiproxyOnce sync.Once

// setupToxiproxy silences toxiproxy and registers the handshake toxic. Its
// logging goes through zerolog, partly through zerolog's global logger, so
// the only switch that silences all of it is zerolog's global level; nothing
// else in this program logs with zerolog.
func setupToxiproxy() {
	toxiproxyOnce.Do(func() {
		zerolog.SetGlobalLevel(zerolog.Disabled)
		toxics.Register(handshakeToxicType, new(handshakeToxic))
	})
}

// startProxy listens on a free loopback port and forwards to upstream
// ("host:port") through the toxics of n (none for a zero n).
func startProxy(upstream string, n network) (*netProxy, error) {
	setupToxiproxy()
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(api, "warmpool-bench", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("toxiproxy: %w", err)
	}
	np := &netProxy{p: p}
	// Latency toxics take whole milliseconds; an odd RTT puts the extra
	// millisecond downstream.
	up := n.rtt / 2 / time.Millisecond * time.Millisecond
	down := n.rtt - up
	var toxicsJSON []string
	if n.rtt > 0 {
		toxicsJSON = append(toxicsJSON,
			fmt.Sprintf(`{"type":%q,"stream":"upstream","attributes":{"delay_us":%d}}`, handshakeToxicType, n.rtt.Microseconds()),
			fmt.Sprintf(`{"name":"latency_up","type":"latency","stream":"upstream","attributes":{"latency":%d,"jitter":%d}}`, up.Milliseconds(), n.jitter.Milliseconds()),
			fmt.Sprintf(`{"name":"latency_down","type":"latency","stream":"downstream","attributes":{"latency":%d,"jitter":%d}}`, down.Milliseconds(), n.jitter.Milliseconds()),
		)
	}
	if n.bandwidthKBps > 0 {
		for _, dir := range []string{"upstream", "downstream"} {
			toxicsJSON = append(toxicsJSON, fmt.Sprintf(`{"name":"bandwidth_%s","type":"bandwidth","stream":%q,"attributes":{"rate":%d}}`, dir, dir, n.bandwidthKBps))
		}
	}
	for _, j := range toxicsJSON {
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(j)); err != nil {
			np.close()
			return nil, fmt.Errorf("toxiproxy: adding toxic %s: %w", j, err)
		}
	}
	return np, nil
}

// addr is the proxy's listen address, "127.0.0.1:PORT".
func (np *netProxy) addr() string {
	np.p.Lock()
	defer np.p.Unlock()
	return np.p.Listen
}

// close stops listening and closes every proxied connection. The goroutines
// of each link end as their connections' reads fail, within the latency.
func (np *netProxy) close() { np.p.Stop() }

// setUpNetwork measures what the proxy costs by itself, then puts the
// configured proxy in front of t's server and points t at it.
func setUpNetwork(ctx context.Context, s Settings, t *target) (*ProxyResult, *netProxy, error) {
	n := network{rtt: s.RTT, jitter: s.Jitter, bandwidthKBps: s.BandwidthKBps}
	up := s.RTT / 2 / time.Millisecond * time.Millisecond
	res := &ProxyResult{
		Kind:          "toxiproxy v2.5.0, in-process on 127.0.0.1",
		RTTMs:         ms(s.RTT),
		UpstreamMs:    ms(up),
		DownstreamMs:  ms(s.RTT - up),
		HandshakeMs:   ms(s.RTT),
		JitterMs:      ms(s.Jitter),
		BandwidthKBps: s.BandwidthKBps,
		Requests:      s.calibrationRequests,
	}
	direct := *t
	res.DirectP50Us = calibrationP50(ctx, s, &direct)

	bare, err := startProxy(t.upstream, network{})
	if err != nil {
		return nil, nil, err
	}
	viaBare := proxiedTarget(t, bare.addr())
	res.ProxiedP50Us = calibrationP50(ctx, s, viaBare)
	bare.close()
	res.OverheadP50Us = res.ProxiedP50Us - res.DirectP50Us

	p, err := startProxy(t.upstream, n)
	if err != nil {
		return nil, nil, err
	}
	*t = *proxiedTarget(t, p.addr())
	res.NetworkP50Us = calibrationP50(ctx, s, t)
	return res, p, nil
}

// proxiedTarget is t reached through a proxy listening on addr. The Host
// header and TLS server name stay those of the server.
func proxiedTarget(t *target, addr string) *target {
	p := *t
	u, _ := url.Parse(t.url) // ours: it parses
	host, hostname := u.Host, u.Hostname()
	u.Host = addr
	p.url = u.String()
	if t.host == "" && !loopback.Host(hostname) {
		p.host = host
	}
	if t.tls != nil && t.tls.ServerName == "" {
		p.tls = t.tls.Clone()
		p.tls.ServerName = hostname
	}
	return &p
}

// calibrationP50 is the p50 latency of sequential keep-alive requests to t
// with the tuned client, or 0 if none succeeded.
func calibrationP50(ctx context.Context, s Settings, t *target) int64 {
	c, _ := newClient(ModeTuned, t, s, nil) // cannot fail: no warmpool config; the static token
	defer c.close()
	d := 300 * time.Millisecond
	res := runLoad(ctx, c, newTemplate(t, s.Body, true), load.Spec{
		Workers: 1, Duration: d, Requests: s.calibrationRequests, Grace: stopGrace(d),
	})
	lat, _ := summarize(res.hist, res.tally.lo, res.tally.hi)
	return lat.P50
}

// handshakeToxicType is the name under which handshakeToxic is registered.
const handshakeToxicType = "warmpool_tcp_handshake"

// handshakeToxic holds the first bytes of each connection for one more round
// trip. A loopback proxy cannot delay the TCP handshake itself: the kernel
// completes it at once, and toxiproxy only delays bytes. On a real network
// the client sends its first bytes (TLS ClientHello, or the request) one RTT
// after connect, when the SYN-ACK arrives; holding them for an RTT here makes
// them arrive at the server when they would, so a new connection costs what
// it costs on a network. The time shows up after the dial (in the TLS
// handshake, or waiting for the response), not in the dial itself.
type handshakeToxic struct {
	DelayUs int64 `json:"delay_us"`
}

// handshakeState is per connection and direction: whether the first chunk
// has passed.
type handshakeState struct{ done bool }

func (t *handshakeToxic) NewState() any { return new(handshakeState) }

func (t *handshakeToxic) Pipe(stub *toxics.ToxicStub) {
	st, _ := stub.State.(*handshakeState)
	if st == nil {
		st = new(handshakeState)
	}
	delay := time.Duration(t.DelayUs) * time.Microsecond
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if !st.done {
				st.done = true
				timer := time.NewTimer(delay - time.Since(c.Timestamp))
				select {
				case <-timer.C:
				case <-stub.Interrupt:
					timer.Stop()
					stub.Output <- c // drop nothing
					return
				}
				// The latency toxics after this one count from the
				// timestamp: move it, or they would not delay this chunk.
				c.Timestamp = c.Timestamp.Add(delay)
			}
			stub.Output <- c
		}
	}
}
