package parser

import (
	"io/fs"
	"path"
	"sort"
	"strings"
	"testing"
)

// memFS is an in-memory file system for include tests.
type memFS map[string]string

func (m memFS) options() Options {
	o := testOptions()
	o.ReadFile = func(name string) ([]byte, error) {
		if v, ok := m[name]; ok {
			return []byte(v), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	o.Glob = func(pattern string) ([]string, error) {
		var out []string
		for k := range m {
			if ok, _ := path.Match(pattern, k); ok {
				out = append(out, k)
			}
		}
		sort.Strings(out)
		return out, nil
	}
	return o
}

func texts(lines []Line) string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return strings.Join(out, "|")
}

func TestPreprocess(t *testing.T) {
	tests := []struct {
		name, in, want string
		diag           string // substring of the first diagnostic, "" for none
	}{
		{name: "comments hash and bang anywhere", in: "a b # c\n! full\nd ! e\n", want: "a b|d"},
		{name: "comment chars inside quotes kept", in: `script "/bin/echo #x !y" # c` + "\n", want: `script "/bin/echo #x !y"`},
		{name: "escaped comment chars", in: `a \#b \!c` + "\n", want: "a #b !c"},
		{name: "blank and CRLF lines", in: "a\r\n\r\n   \n\tb\r\n", want: "a|b"},
		{name: "conditional match", in: "@main a\n@backup b\n", want: "a"},
		{name: "negated conditional", in: "@^main a\n@^backup b\n", want: "b"},
		{name: "conditional needs space", in: "@main\n", want: "", diag: "'@' must be followed"},
		{name: "definition and use", in: "$X=10.0.0.1\nip $X\n", want: "ip 10.0.0.1"},
		{name: "braced use anywhere", in: "$N=5\nvrid 1${N}0\n", want: "vrid 150"},
		{name: "bare use needs blank after", in: "$N=5\nvrid $N0\n", want: "vrid $N0"},
		{name: "undefined kept verbatim", in: "script \"$1 ${UNDEF}\"\n", want: "script \"$1 ${UNDEF}\""},
		{name: "lazy recursive expansion", in: "$A=10.2.${B}\n$B=0\n${A}.1\n$B=10\n${A}.1\n", want: "10.2.0.1|10.2.10.1"},
		{name: "redefinition overwrites", in: "$A=1\n$A=2\nx $A\n", want: "x 2"},
		{name: "empty value", in: "$A=\nx ${A}y\n", want: "x y"},
		{name: "conditional definition", in: "@main $P=240\n@backup $P=200\npriority $P\n", want: "priority 240"},
		{name: "value expanding to conditional", in: "$IF_MAIN=@main\n$IF_NOT=@backup\n$IF_MAIN priority 240\n$IF_NOT priority 1\n", want: "priority 240"},
		{name: "multi-line definition", in: "$I= \\\nvrrp_instance V${N} { \\\n  priority 1${N} \\\n}\n$N=1\n$I\n$N=2\n$I\n",
			want: "vrrp_instance V1 {|priority 11|}|vrrp_instance V2 {|priority 12|}"},
		{name: "nested multi-line", in: "$RS= \\\nrs ${R}\n$VS= \\\nvs { \\\n$R=1 \\\n$RS \\\n$R=2 \\\n$RS \\\n}\n$VS\n",
			want: "vs {|rs 1|rs 2|}"},
		{name: "multi-line must be alone", in: "$M= \\\na \\\nb\nx $M\n", want: "x a b", diag: "must be used alone"},
		{name: "recursive definition", in: "$A=x $A\ny $A\n", diag: "does not terminate"},
		{name: "self-including multi-line definition", in: "$M= \\\n$M \\\n$M\n$M\n", diag: "nested more than 64"},
		{name: "self-doubling definition", in: "$M=$M x$M\n$M\n", diag: "grows past"},
		{name: "builtins", in: "a ${_INSTANCE} ${_HASH} ${_BANG} ${_ENV GKA_TEST_IF} ${_ENV NOPE}x\n", want: "a main # ! eth7 x"},
		{name: "pwd builtin", in: "p ${_PWD}\n", want: "p /etc/keepalived"},
		{name: "random in range", in: "r ${_RANDOM 7 7}\n", want: "r 7"},
		{name: "random_seed makes _RANDOM repeatable", in: "random_seed 5\nr ${_RANDOM}\nrandom_seed 5\nr ${_RANDOM}\n", want: "random_seed 5|r 25386|random_seed 5|r 25386"},
		{name: "seq start end", in: "~SEQ(S, 0, 3) ip 10.0.${S}.1\n", want: "ip 10.0.0.1|ip 10.0.1.1|ip 10.0.2.1|ip 10.0.3.1"},
		{name: "seq end only", in: "~SEQ(S, 3) n $S\n", want: "n 1|n 2|n 3"},
		{name: "seq negative step", in: "~SEQ(S, 3, -2, -1) n $S\n", want: "n 3|n 1|n -1"},
		{name: "seqx hex", in: "~SEQx(S, 0x90, 0x10, 0xc0) fe80::${S}\n", want: "fe80::90|fe80::a0|fe80::b0|fe80::c0"},
		{name: "nested seq", in: "~SEQ(A,1,2) ~SEQ(B,1,2) v ${A}.${B}\n", want: "v 1.1|v 1.2|v 2.1|v 2.2"},
		{name: "lst", in: "~LST(X, a, b) v $X\n", want: "v a|v b"},
		{name: "lst tuples with seq", in: "~LST({IP,IP1}, {10,1},{20,4}) ~SEQ(T,1,2) 192.${T}.${IP}.${IP1}\n",
			want: "192.1.10.1|192.2.10.1|192.1.20.4|192.2.20.4"},
		{name: "seq of multi-line", in: "$B= \\\nb ${I} {\\\n}\n~SEQ(I,1,2) $B\n", want: "b 1 {|}|b 2 {|}"},
		{name: "seq bad step", in: "~SEQ(S, 1, 0, 3) x\n", diag: "step must not be 0"},
		{name: "lst arity", in: "~LST({A,B}, {1}) x\n", diag: "has 1 items, want 2"},
		{name: "unterminated multi-line", in: "$M= \\\na \\\n", diag: "not terminated"},
		{name: "NUL byte", in: "a\x00b\nc\n", want: "c", diag: "NUL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines, ds := PreprocessBytes("/etc/keepalived/keepalived.conf", []byte(tc.in), testOptions())
			if got := texts(lines); tc.want != "" && got != tc.want {
				t.Errorf("lines = %q, want %q", got, tc.want)
			}
			if tc.diag == "" && len(ds) > 0 {
				t.Errorf("unexpected diagnostics: %v", ds)
			}
			if tc.diag != "" && (len(ds) == 0 || !strings.Contains(ds[0].Msg, tc.diag)) {
				t.Errorf("diagnostics %v, want one containing %q", ds, tc.diag)
			}
		})
	}
}

func TestPreprocessPositions(t *testing.T) {
	lines, _ := PreprocessBytes("k.conf", []byte("a\n\n   b c\n@main   d\n"), testOptions())
	want := []Pos{{"k.conf", 1, 1}, {"k.conf", 3, 4}, {"k.conf", 4, 9}}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines", len(lines))
	}
	for i, l := range lines {
		if l.Pos != want[i] {
			t.Errorf("line %q at %v, want %v", l.Text, l.Pos, want[i])
		}
	}
}

func TestInclude(t *testing.T) {
	fsys := memFS{
		"/k/main.conf":        "a\ninclude conf.d/*.conf\ninclude /k/{x,y}.inc\nz\n",
		"/k/conf.d/1.conf":    "one ${_PWD}\ninclude ../sub/s.inc\n",
		"/k/conf.d/2.conf":    "two\n",
		"/k/sub/s.inc":        "sub\n",
		"/k/x.inc":            "x\n",
		"/k/y.inc":            "y\n",
		"/k/loop.conf":        "include loop.conf\n",
		"/k/missing.conf":     "include nothere.conf\nincludem nothere.conf\n",
		"/k/wild.conf":        "includem none/*.conf\nincludew none/*.conf\n",
		"/k/brace.conf":       "includeb /k/{x,q}.inc\n",
		"/k/readable.conf":    "includer /k/x.inc\n",
		"/k/vars.conf":        "$V=1\ninclude vars.inc\nv $V $W\n",
		"/k/vars.inc":         "$W=2\n",
		"/k/check.conf":       "include_check match\ninclude nothere.conf\n",
		"/k/conf.d/ignore.md": "never\n",
	}
	tests := []struct {
		file, want string
		exit       int
		diag       string
	}{
		{file: "/k/main.conf", want: "a|one /k/conf.d|sub|two|x|y|z"},
		{file: "/k/loop.conf", exit: ExitFatal, diag: "include loop"},
		{file: "/k/missing.conf", exit: ExitFatal, diag: "no file matches"},
		{file: "/k/wild.conf", exit: ExitFatal, diag: "no file matches"},
		{file: "/k/brace.conf", want: "x", exit: ExitFatal, diag: "nothing matches /k/q.inc"},
		{file: "/k/readable.conf", want: "x"},
		{file: "/k/vars.conf", want: "v 1 2"},
		{file: "/k/check.conf", want: "include_check match", exit: ExitFatal, diag: "no file matches"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			lines, ds := Preprocess(tc.file, fsys.options())
			if got := texts(lines); got != tc.want {
				t.Errorf("lines = %q, want %q", got, tc.want)
			}
			if ds.ExitCode() != tc.exit {
				t.Errorf("exit %d, want %d (%v)", ds.ExitCode(), tc.exit, ds)
			}
			found := tc.diag == ""
			for _, d := range ds {
				if strings.Contains(d.Msg, tc.diag) {
					found = true
				}
			}
			if !found {
				t.Errorf("diagnostics %v lack %q", ds, tc.diag)
			}
		})
	}
}

func TestMissingMainFileIsFatal(t *testing.T) {
	_, ds := Load("/nonexistent/keepalived.conf", testOptions())
	if ds.ExitCode() != ExitFatal {
		t.Fatalf("exit %d, want %d: %v", ds.ExitCode(), ExitFatal, ds)
	}
}

func TestExpandBraces(t *testing.T) {
	got := strings.Join(expandBraces("a{b,c{d,e}}f{,g}"), " ")
	if want := "abf abfg acdf acdfg acef acefg"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestShellWords(t *testing.T) {
	tests := []struct{ in, want string }{
		{`/bin/true`, "/bin/true"},
		{`"/usr/bin/killall -0 haproxy" root`, "/usr/bin/killall -0 haproxy|root"},
		{`abcd" efg h jkl "mnop`, "abcd efg h jkl mnop"},
		{`abcd "efg h jkl" mnop`, "abcd|efg h jkl|mnop"},
		{`'a "b" c' d\ e`, `a "b" c|d e`},
		{`"tab\there" \x41\101\cA`, "tab\there|AA\x01"},
	}
	for _, tc := range tests {
		w, err := shellWords(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if got := strings.Join(w, "|"); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
	if _, err := shellWords(`"open`); err == nil {
		t.Error("unterminated quote accepted")
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"priority", "virtual_router_id", "advert_int", "interface"}
	for in, want := range map[string]string{"priorty": "priority", "virtual_routerid": "virtual_router_id", "xyz": "", "Interface": "interface"} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
