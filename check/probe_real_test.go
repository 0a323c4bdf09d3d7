package check

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gokeepalived/parser"
	"gokeepalived/tests/netns"
)

// These tests run the probes against real servers from Debian, started on loopback by
// the test: Python's http.server and smtpd, busybox httpd, openssl s_server and dnsmasq. A test
// whose server is not installed is skipped.

// daemonCmd is the command of a server to run in dir; the test is skipped when the
// program is not installed.
func daemonCmd(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath(args[0]); err != nil {
		netns.SkipUnlessCI(t, args[0]+" is not installed (tests/setup.sh installs it)")
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	return cmd
}

// runDaemon starts cmd and kills it when the test ends.
func runDaemon(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// waitListening waits (at most 10 s) until something accepts TCP connections at addr.
func waitListening(t *testing.T, addr netip.AddrPort) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pythonHTTP starts python3 -m http.server on 127.0.0.1 serving dir.
func pythonHTTP(t *testing.T, dir string) netip.AddrPort {
	cmd := daemonCmd(t, dir, "python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, cmd)
	// "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		re := regexp.MustCompile(`port (\d+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[1]
				break
			}
		}
		for sc.Scan() { // drain until the server exits
		}
	}()
	select {
	case p := <-port:
		n, _ := strconv.Atoi(p)
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(n))
	case <-time.After(10 * time.Second):
		t.Fatal("python3 http.server did not say its port")
	}
	return netip.AddrPort{}
}

// busyboxHTTP starts busybox httpd on 127.0.0.1 serving dir.
func busyboxHTTP(t *testing.T, dir string) netip.AddrPort {
	addr := closedPort(t, "tcp4")
	cmd := daemonCmd(t, dir, "busybox", "httpd", "-f", "-p", addr.String(), "-h", dir)
	runDaemon(t, cmd)
	waitListening(t, addr)
	return addr
}

// opensslHTTPS starts openssl s_server -WWW (files of its working directory over TLS)
// on 127.0.0.1 with a throw-away certificate.
func opensslHTTPS(t *testing.T, dir string) netip.AddrPort {
	certDir := t.TempDir()
	cert, key := writeTestCert(t, certDir)
	addr := closedPort(t, "tcp4")
	cmd := daemonCmd(t, dir, "openssl", "s_server", "-quiet", "-accept", addr.String(), "-cert", cert, "-key", key, "-WWW")
	runDaemon(t, cmd)
	waitListening(t, addr)
	return addr
}

// writeTestCert writes a self-signed certificate and its key in dir.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gokeepalived test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestHTTPProbeRealServers(t *testing.T) {
	servers := []struct {
		name  string
		typ   string
		start func(*testing.T, string) netip.AddrPort
	}{
		{"python3 http.server", "HTTP_GET", pythonHTTP},
		{"busybox httpd", "HTTP_GET", busyboxHTTP},
		{"openssl s_server", "SSL_GET", opensslHTTPS},
	}
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			dir := t.TempDir()
			page := make([]byte, 5000)
			rand.Read(page)
			page = []byte(strings.ToValidUTF8(string(page), "?") + "\nstatus: healthy\n")
			if err := os.WriteFile(filepath.Join(dir, "health.html"), page, 0o644); err != nil {
				t.Fatal(err)
			}
			addr := s.start(t, dir)
			want := md5hex(page)
			for _, proto := range []string{"1.0", "1.0C", "1.1"} {
				c := httpChecker(s.typ, addr, testURL("/health.html", withDigest(want), withRegex("status: healthy", false, 0, 0)))
				c.HTTP.Protocol = proto
				if r := runProbe(t, mustNew(t, c), 3*time.Second); !r.OK {
					t.Errorf("http_protocol %s: %v", proto, r.Err)
				}
			}
			wrong := httpChecker(s.typ, addr, testURL("/nothing.html", withDigest(want)))
			if r := runProbe(t, mustNew(t, wrong), 3*time.Second); r.OK {
				t.Error("missing page passed")
			}
			got, err := Genhash(t.Context(), "/health.html", GenhashOptions{Server: addr.Addr(), Port: addr.Port(), TLS: s.typ == "SSL_GET", Timeout: 3 * time.Second})
			if err != nil || got != want {
				t.Errorf("Genhash = %q, %v; want %s", got, err, want)
			}
		})
	}
}

func TestSMTPProbeRealServer(t *testing.T) {
	if err := exec.Command("python3", "-c", "import smtpd").Run(); err != nil {
		netns.SkipUnlessCI(t, "python3 with the smtpd module (Python < 3.12) is not installed")
	}
	addr := closedPort(t, "tcp4")
	cmd := daemonCmd(t, t.TempDir(), "python3", "-W", "ignore", "-m", "smtpd", "-n", "-c", "DebuggingServer", addr.String())
	runDaemon(t, cmd)
	waitListening(t, addr)
	c := testChecker("SMTP_CHECK", addr)
	c.SMTP = &parser.SMTPCheck{HeloName: "probe.example.org"}
	for range 2 {
		if r := runProbe(t, mustNew(t, c), 3*time.Second); !r.OK {
			t.Fatal(r.Err)
		}
	}
}

// TestDNSProbeRealServer checks DNS_CHECK against Debian's dnsmasq, answering for one
// name on a loopback port: A example.org is found (rcode 0), and a dnsmasq that does not
// exist (a closed port) is down.
func TestDNSProbeRealServer(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0") // a free port for dnsmasq
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	cmd := daemonCmd(t, t.TempDir(), "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--listen-address=127.0.0.1", "--bind-interfaces", "--port="+strconv.Itoa(port),
		"--no-resolv", "--no-hosts", "--user=root", "--pid-file=", "--address=/example.org/192.0.2.7")
	runDaemon(t, cmd)
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	c := testChecker("DNS_CHECK", dst)
	c.DNS = &parser.DNSCheck{Type: "A", Name: "example.org"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := runProbe(t, mustNew(t, c), time.Second)
		if r.OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq never answered: %v", r.Err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A name dnsmasq does not know (it has no upstream) is not rcode 0: down.
	c.DNS = &parser.DNSCheck{Type: "A", Name: "nothere.invalid"}
	if r := runProbe(t, mustNew(t, c), time.Second); r.OK {
		t.Error("DNS_CHECK up for a name the server does not resolve")
	}
}
