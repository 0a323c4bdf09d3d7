//go:build vmguest

package vmlab

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// CheckerAgent is the User-Agent of keepalived's (and gokeepalived's) HTTP checkers.
const CheckerAgent = "KeepAliveClient"

// Server is a real server: HTTP on :80 and HTTPS on :443 in its own namespace, each
// answering its name.
type Server struct {
	Name string
	Addr string
	// Path, when not empty, is the only path served (others: 404); set it before Start.
	Path string

	ns   *NS
	tls  *tls.Config
	mu   sync.Mutex
	srvs map[int]*http.Server
	// checks counts the requests with CheckerAgent, per port.
	checks map[int]*atomic.Int64
}

// NewServer returns the real server name with address addr in namespace n, serving
// HTTPS with cfg; no port is open yet.
func NewServer(name, addr string, n *NS, cfg *tls.Config) *Server {
	return &Server{Name: name, Addr: addr, ns: n, tls: cfg, srvs: map[int]*http.Server{},
		checks: map[int]*atomic.Int64{80: {}, 443: {}}}
}

func (s *Server) handler(port int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Path != "" && r.URL.Path != s.Path {
			http.NotFound(w, r)
			return
		}
		if r.UserAgent() == CheckerAgent {
			s.checks[port].Add(1)
		}
		io.WriteString(w, s.Name+"\n")
	})
}

// Start opens the listener of port (80: HTTP, 443: HTTPS) and serves it.
func (s *Server) Start(port int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srvs[port] != nil {
		return fmt.Errorf("%s:%d already started", s.Name, port)
	}
	ln, err := s.ns.Listen(fmt.Sprintf("%s:%d", s.Addr, port))
	if err != nil {
		return fmt.Errorf("%s: listen :%d: %w", s.Name, port, err)
	}
	srv := &http.Server{Handler: s.handler(port), ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	srv.SetKeepAlivesEnabled(false)
	if port == 443 {
		srv.TLSConfig = s.tls
		go srv.ServeTLS(ln, "", "")
	} else {
		go srv.Serve(ln)
	}
	s.srvs[port] = srv
	return nil
}

// Stop closes the listener of port, so that new connections are refused, and lets the
// requests in progress finish (5 s at most).
func (s *Server) Stop(port int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	srv := s.srvs[port]
	if srv == nil {
		return fmt.Errorf("%s:%d not started", s.Name, port)
	}
	delete(s.srvs, port)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// CheckCount returns the number of checker requests (User-Agent CheckerAgent) port has
// answered.
func (s *Server) CheckCount(port int) int64 { return s.checks[port].Load() }

// SelfSigned returns a TLS configuration with a fresh self-signed ECDSA certificate for
// commonName.
func SelfSigned(commonName string) (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, nil
}
