package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// binaries are the programs a run starts, built for it.
type binaries struct {
	benchserver string // the servers but the example app, and the delaying proxy
	exampleApp  string // "" when the run does not compare it
}

// repoRoot returns the directory of the library's module, found by the go command
// from the working directory.
func repoRoot(ctx context.Context, goTool string) (string, error) {
	out, err := goCommand(ctx, goTool, "", "env", "GOMOD")
	if err != nil {
		return "", err
	}
	root := filepath.Dir(strings.TrimSpace(out))
	if filepath.Base(root) == "example-app" {
		root = filepath.Dir(root)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "cmd", "benchserver")); err != nil {
		return "", fmt.Errorf("run from the tenant repository (found the module %q): %w", root, err)
	}
	return root, nil
}

// build compiles the servers into dir, with the race detector when race is set.
func build(ctx context.Context, goTool, root, dir string, withExample, race bool) (binaries, error) {
	args := []string{"build"}
	if race {
		args = append(args, "-race")
	}
	b := binaries{benchserver: filepath.Join(dir, "benchserver")}
	if _, err := goCommand(ctx, goTool, root, append(args, "-o", b.benchserver, "./internal/cmd/benchserver")...); err != nil {
		return binaries{}, err
	}
	if withExample {
		b.exampleApp = filepath.Join(dir, "example-app")
		if _, err := goCommand(ctx, goTool, filepath.Join(root, "example-app"), append(args, "-o", b.exampleApp, ".")...); err != nil {
			return binaries{}, err
		}
	}
	return b, nil
}

// goCommand runs the go command in dir ("" for the working directory) and returns its
// output; a failure includes what it printed.
func goCommand(ctx context.Context, goTool, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", goTool, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}
