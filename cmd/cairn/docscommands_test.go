package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// shellWords splits the start of a shell command into words, honouring
// quotes, and stops at what ends a simple command (a pipe, a comment, a
// closing parenthesis or backtick, a redirection).
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case strings.ContainsRune("|;&)#<>`", r):
			if inWord {
				words = append(words, w.String())
			}
			return words
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// TestDocsCommandsParse: every `cairn …` command in the documentation's
// code blocks names commands and flags that exist, so a renamed flag cannot leave a
// guide behind (TestQuickstart runs the quickstart's for real).
func TestDocsCommandsParse(t *testing.T) {
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, "../../README.md", "../../deploy/README.md", "../../examples/todo/README.md")
	start := regexp.MustCompile(`(?:^|[\s($` + "`" + `])(?:go run \./cmd/cairn|cairn) `)
	checked := 0
	for _, p := range docs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// Commands in code blocks; prose may name a flag without its value.
		text := strings.ReplaceAll(string(b), "\\\n", " ")
		code := false
		for n, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				code = !code
				continue
			}
			if !code {
				continue
			}
			for _, m := range start.FindAllStringIndex(line, -1) {
				words := shellWords(line[m[1]:])
				root := newRoot(&cliEnv{getenv: func(string) string { return "" }})
				if len(words) == 0 || !isCommand(root, words[0]) {
					continue // prose, or another program's argument
				}
				cmd, rest, err := root.Find(words)
				if err != nil {
					t.Errorf("%s:%d: cairn %s: %v", p, n+1, strings.Join(words, " "), err)
					continue
				}
				checked++
				if cmd.DisableFlagParsing {
					continue
				}
				if cmd.HasAvailableSubCommands() && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
					t.Errorf("%s:%d: cairn %s: no subcommand %q", p, n+1, strings.Join(words, " "), rest[0])
					continue
				}
				if err := cmd.ParseFlags(longFlags(root, words)[len(words)-len(rest):]); err != nil {
					t.Errorf("%s:%d: cairn %s: %v", p, n+1, strings.Join(words, " "), err)
				}
			}
		}
	}
	t.Logf("%d cairn commands in code blocks parse", checked)
	if checked < 30 {
		t.Fatalf("checked only %d commands in the docs: is the pattern still finding them?", checked)
	}
}

func isCommand(root *cobra.Command, name string) bool {
	for _, c := range root.Commands() {
		if c.Name() == name {
			return true
		}
	}
	return false
}
