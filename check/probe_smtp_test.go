package check

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"gokeepalived/parser"
)

// fakeSMTP is a scripted SMTP server: it sends greeting, and answers HELO with heloReply.
// It records the HELO lines it receives.
func fakeSMTP(greeting, heloReply string, helos chan<- string) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		if _, err := io.WriteString(c, greeting); err != nil {
			return
		}
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(line, "HELO "):
				if helos != nil {
					helos <- line
				}
				io.WriteString(c, heloReply)
			case line == "QUIT\r\n":
				io.WriteString(c, "221 bye\r\n")
				return
			default:
				io.WriteString(c, "500 what?\r\n")
			}
		}
	}
}

func TestSMTPProbe(t *testing.T) {
	endless := func(c net.Conn) {
		defer c.Close()
		chunk := bytes.Repeat([]byte("2"), 4096)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
	trickle := func(c net.Conn) {
		defer c.Close()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			if _, err := c.Write([]byte("2")); err != nil {
				return
			}
		}
	}
	manyLines := func(c net.Conn) {
		defer c.Close()
		for {
			if _, err := io.WriteString(c, "220-still greeting\r\n"); err != nil {
				return
			}
		}
	}
	tests := []struct {
		name    string
		handle  func(net.Conn)
		wantOK  bool
		wantErr string
	}{
		{"good", fakeSMTP("220 mail.example.org ESMTP\r\n", "250 hello\r\n", nil), true, ""},
		{"multi-line replies", fakeSMTP("220-mail.example.org\r\n220-more\r\n220 ESMTP\r\n", "250-hello\r\n250 PIPELINING\r\n", nil), true, ""},
		{"bare codes", fakeSMTP("220\r\n", "250\n", nil), true, ""},
		{"greeting 554", fakeSMTP("554 go away\r\n", "250 hello\r\n", nil), false, "greeting 554"},
		{"HELO refused", fakeSMTP("220 ok\r\n", "501 bad helo\r\n", nil), false, "HELO reply 501"},
		{"HTTP server", fakeSMTP("HTTP/1.0 400 Bad Request\r\n", "", nil), false, "malformed reply line"},
		{"code changes in a reply", fakeSMTP("220-a\r\n250 b\r\n", "250 hello\r\n", nil), false, "code changed"},
		{"silent", sinkConn, false, "timeout"},
		{"slow loris greeting", trickle, false, "timeout"},
		{"endless line", endless, false, "longer than 1024 bytes"},
		{"endless reply", manyLines, false, "longer than 64 lines"},
		{"closes at once", func(c net.Conn) { c.Close() }, false, "EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := serveLoopback(t, tc.handle)
			r := runProbe(t, mustNew(t, testChecker("SMTP_CHECK", srv.addr())), 400*time.Millisecond)
			if r.OK != tc.wantOK {
				t.Fatalf("OK = %v (%v), want %v", r.OK, r.Err, tc.wantOK)
			}
			if tc.wantErr != "" && !strings.Contains(r.Err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", r.Err, tc.wantErr)
			}
		})
	}
}

func TestSMTPProbeHeloName(t *testing.T) {
	helos := make(chan string, 2)
	srv := serveLoopback(t, fakeSMTP("220 ok\r\n", "250 ok\r\n", helos))
	c := testChecker("SMTP_CHECK", srv.addr())
	if r := runProbe(t, mustNew(t, c), time.Second); !r.OK {
		t.Fatal(r.Err)
	}
	if got := <-helos; got != "HELO smtpchecker.keepalived.org\r\n" {
		t.Errorf("default HELO %q", got)
	}
	c.SMTP = &parser.SMTPCheck{HeloName: "lb1.example.org"}
	if r := runProbe(t, mustNew(t, c), time.Second); !r.OK {
		t.Fatal(r.Err)
	}
	if got := <-helos; got != "HELO lb1.example.org\r\n" {
		t.Errorf("HELO %q", got)
	}
	c.SMTP = &parser.SMTPCheck{HeloName: "x\r\nQUIT"}
	if _, err := New(c, nil, nil); err == nil {
		t.Error("helo_name with a line break accepted")
	}
}
