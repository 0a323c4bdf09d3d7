package check

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gokeepalived/parser"
)

const (
	// smtpMaxLine bounds one reply line (RFC 5321 allows 512 bytes).
	smtpMaxLine = 1024
	// smtpMaxLines bounds the lines of a multi-line reply.
	smtpMaxLines = 64
	// smtpDefaultHelo is keepalived's helo_name.
	smtpDefaultHelo = "smtpchecker.keepalived.org"
)

// smtpProbe is an SMTP_CHECK: the server must greet with 220 and answer "HELO
// helo_name" with 250; the probe then sends QUIT and closes without waiting for the
// answer. Reply lines are read with a bounded buffer and multi-line replies
// ("250-...") are followed to their last line.
type smtpProbe struct {
	target probeTarget
	helo   string
}

func newSMTPProbe(c *parser.Checker, rs *parser.RealServer) (*smtpProbe, error) {
	t, err := newProbeTarget(c, rs, true)
	if err != nil {
		return nil, err
	}
	helo := smtpDefaultHelo
	if c.SMTP != nil && c.SMTP.HeloName != "" {
		helo = c.SMTP.HeloName
	}
	if strings.ContainsAny(helo, "\r\n") {
		return nil, fmt.Errorf("SMTP_CHECK: helo_name %q has a line break", helo)
	}
	return &smtpProbe{target: t, helo: helo}, nil
}

// Check runs the SMTP dialogue.
func (p *smtpProbe) Check(ctx context.Context) Result {
	start := time.Now()
	ctx, cancel := probeContext(ctx, p.target.timeout)
	defer cancel()
	fail := func(err error) Result {
		return probeResult(start, fmt.Errorf("SMTP_CHECK %s: %w", p.target.dst, err))
	}
	conn, err := p.target.dial(ctx, "tcp")
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	stop := probeBind(ctx, conn)
	defer stop()
	br := bufio.NewReaderSize(conn, smtpMaxLine)
	if err := smtpExpect(br, 220, "greeting"); err != nil {
		return fail(err)
	}
	if _, err := conn.Write([]byte("HELO " + p.helo + "\r\n")); err != nil {
		return fail(fmt.Errorf("send HELO: %w", err))
	}
	if err := smtpExpect(br, 250, "HELO reply"); err != nil {
		return fail(err)
	}
	_, _ = conn.Write([]byte("QUIT\r\n")) // the check has passed; the answer does not matter
	return probeResult(start, nil)
}

// smtpExpect reads a whole reply and checks its code.
func smtpExpect(br *bufio.Reader, want int, what string) error {
	code, text, err := smtpReadReply(br)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	if code != want {
		return fmt.Errorf("%s %d %q, want %d", what, code, text, want)
	}
	return nil
}

// smtpReadReply reads a reply, following "NNN-" continuation lines, and returns its
// code and the text of its last line.
func smtpReadReply(br *bufio.Reader) (code int, text string, err error) {
	for range smtpMaxLines {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, "", fmt.Errorf("reply line longer than %d bytes", smtpMaxLine)
		}
		if err != nil {
			return 0, "", err
		}
		s := strings.TrimRight(string(line), "\r\n")
		n, err := strconv.Atoi(s[:min(3, len(s))])
		if len(s) < 3 || err != nil || n < 100 || n > 599 || (len(s) > 3 && s[3] != ' ' && s[3] != '-') {
			return 0, "", fmt.Errorf("malformed reply line %q", probeQuote([]byte(s)))
		}
		if code != 0 && n != code {
			return 0, "", fmt.Errorf("reply code changed from %d to %d within a reply", code, n)
		}
		code = n
		if len(s) == 3 || s[3] == ' ' {
			return code, s[min(4, len(s)):], nil
		}
	}
	return 0, "", fmt.Errorf("reply longer than %d lines", smtpMaxLines)
}
