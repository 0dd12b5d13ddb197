// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package distribution

// Checks of the container image (distribution/Containerfile): it is built
// exactly as `make image` builds it (distribution/image/build.sh), from the
// binary `make build` produced, then inspected, exported and run.
//
// The test needs a container engine: podman (with runc on hosts whose cgroups
// crun cannot drive) or a running Docker engine. Without one it fails, naming
// what to install; it never skips.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	imageName     = "otelcol-failover"
	imageUID      = 10001
	imageConfig   = "/etc/otelcol-failover/config.yaml"
	imageDataDir  = "var/lib/otelcol-failover"
	defaultCAFile = "/etc/ssl/certs/ca-certificates.crt"
)

// runFlags are added to every `run`. The hard RLIMIT_NOFILE of some hosts
// (CI: 20000) is below the engine's default for containers (1048576), and
// runc then fails with "error setting rlimits ... operation not permitted".
var runFlags = []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

// containerEngine is podman or docker, with the global flags the test needs.
type containerEngine struct {
	name   string
	bin    string
	global []string
}

func (e containerEngine) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.bin, append(slices.Clone(e.global), args...)...)
	// Rootful podman's network backend runs iptables/nft from the sbin
	// directories, which a CI job's PATH may lack.
	if path := os.Getenv("PATH"); !slices.Contains(filepath.SplitList(path), "/usr/sbin") {
		cmd.Env = append(os.Environ(), "PATH="+path+string(filepath.ListSeparator)+"/usr/sbin"+string(filepath.ListSeparator)+"/sbin")
	}
	return cmd
}

// run runs one engine command with a deadline and returns its stdout; the
// error carries stderr.
func (e containerEngine) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := e.command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", e.name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

const noEngine = "no container engine: the image test needs podman and runc (`apt-get install podman runc`; `make deps` installs them) " +
	"or a running Docker engine; `make image` builds the image with the same script"

// findEngine picks the engine as distribution/image/build.sh does:
// $CONTAINER_ENGINE, else podman, else docker if its daemon answers.
func findEngine(t *testing.T) containerEngine {
	t.Helper()
	name := os.Getenv("CONTAINER_ENGINE")
	if name == "" {
		if _, err := exec.LookPath("podman"); err == nil {
			name = "podman"
		} else if _, err := exec.LookPath("docker"); err == nil {
			name = "docker"
		} else {
			t.Fatal(noEngine)
		}
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s (CONTAINER_ENGINE=%q: %v)", noEngine, name, err)
	}
	e := containerEngine{name: name, bin: bin}
	switch filepath.Base(name) {
	case "podman":
		// crun, podman's first choice, fails on hosts with hybrid cgroups
		// (v1 controllers with a v2 systemd hierarchy); runc works on both.
		if runc, err := exec.LookPath("runc"); err == nil {
			e.global = []string{"--runtime", runc}
		}
	case "docker":
		if _, err := e.run(20*time.Second, "info"); err != nil {
			t.Fatalf("%s: docker is installed but its daemon does not answer: %v", noEngine, err)
		}
	}
	return e
}

// imageTag is the tag build.sh derives from a version: characters an image
// tag cannot hold (such as the `+` of 0.1.0-dev+<commit>) become `_`.
func imageTag(version string) string {
	tag := regexp.MustCompile(`[^A-Za-z0-9_.-]`).ReplaceAllString(version, "_")
	if len(tag) > 128 {
		tag = tag[:128]
	}
	return tag
}

func binaryVersion(t *testing.T) string {
	t.Helper()
	out, err := run(t, "--version")
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	fields := strings.Fields(out)
	if len(fields) == 0 {
		t.Fatalf("--version printed nothing")
	}
	return fields[len(fields)-1]
}

// imageInspect is the part of `image inspect` both engines print alike.
type imageInspect struct {
	ID       string   `json:"Id"`
	RepoTags []string `json:"RepoTags"`
	Size     int64    `json:"Size"`
	Os       string   `json:"Os"`
	Config   struct {
		User         string              `json:"User"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		WorkingDir   string              `json:"WorkingDir"`
		Labels       map[string]string   `json:"Labels"`
	} `json:"Config"`
}

func TestImage(t *testing.T) {
	start := time.Now()
	engine := findEngine(t)
	bin := collector(t)
	root := repoRoot(t)
	version := binaryVersion(t)
	tag := imageTag(version)
	ref := imageName + ":" + tag

	// Build with the script `make image` runs.
	buildStart := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, filepath.Join(root, "distribution", "image", "build.sh"), bin)
	build.Env = append(os.Environ(), "CONTAINER_ENGINE="+engine.bin, "STAGING_DIR="+t.TempDir()+"/context")
	var buildOut, buildErr bytes.Buffer
	build.Stdout, build.Stderr = &buildOut, &buildErr
	if err := build.Run(); err != nil {
		t.Fatalf("distribution/image/build.sh (what `make image` runs): %v\n%s%s", err, buildOut.String(), buildErr.String())
	}
	lines := strings.Fields(buildOut.String())
	if len(lines) == 0 {
		t.Fatalf("build.sh printed no image id\n%s", buildErr.String())
	}
	builtID := strings.TrimPrefix(lines[len(lines)-1], "sha256:")
	t.Logf("built %s with %s in %v", ref, engine.name, time.Since(buildStart).Round(time.Millisecond))

	t.Run("Config", func(t *testing.T) { checkImageConfig(t, engine, ref, builtID, version, bin) })
	t.Run("Filesystem", func(t *testing.T) { checkImageFilesystem(t, engine, ref, bin) })
	t.Run("Version", func(t *testing.T) {
		out, err := engine.run(time.Minute, append(append([]string{"run", "--rm"}, runFlags...), ref, "--version")...)
		if err != nil {
			t.Fatal(err)
		}
		if want := "otelcol-failover version " + version; strings.TrimSpace(out) != want {
			t.Errorf("`%s --version` in the image = %q, want %q", ref, strings.TrimSpace(out), want)
		}
	})
	t.Run("Run", func(t *testing.T) { checkImageRuns(t, engine, ref) })
	t.Logf("image test (build, inspect, export, run, checks) took %v", time.Since(start).Round(time.Millisecond))
}

func checkImageConfig(t *testing.T, engine containerEngine, ref, builtID, version, bin string) {
	out, err := engine.run(time.Minute, "image", "inspect", ref)
	if err != nil {
		t.Fatal(err)
	}
	var images []imageInspect
	if err = json.Unmarshal([]byte(out), &images); err != nil || len(images) != 1 {
		t.Fatalf("image inspect %s: want one image, got %d (%v)\n%s", ref, len(images), err, out)
	}
	img := images[0]
	if id := strings.TrimPrefix(img.ID, "sha256:"); id != builtID {
		t.Errorf("%s is image %s, but build.sh reported %s", ref, id, builtID)
	}
	// Tagged with the version and latest (podman prefixes localhost/).
	for _, want := range []string{imageName + ":" + imageTag(version), imageName + ":latest"} {
		if !slices.ContainsFunc(img.RepoTags, func(tag string) bool {
			return tag == want || strings.HasSuffix(tag, "/"+want)
		}) {
			t.Errorf("image tags %v lack %s", img.RepoTags, want)
		}
	}
	if want := fmt.Sprintf("%d:%d", imageUID, imageUID); img.Config.User != want {
		t.Errorf("user = %q, want %q (non-root, numeric)", img.Config.User, want)
	}
	if want := []string{"/otelcol-failover"}; !slices.Equal(img.Config.Entrypoint, want) {
		t.Errorf("entrypoint = %q, want %q", img.Config.Entrypoint, want)
	}
	if want := []string{"--config", imageConfig}; !slices.Equal(img.Config.Cmd, want) {
		t.Errorf("cmd = %q, want %q", img.Config.Cmd, want)
	}
	var ports []string
	for p := range img.Config.ExposedPorts {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	if want := []string{"13133/tcp", "13134/tcp", "4317/tcp", "4318/tcp"}; !slices.Equal(ports, want) {
		t.Errorf("exposed ports = %v, want %v", ports, want)
	}
	if img.Config.WorkingDir != "/"+imageDataDir {
		t.Errorf("working dir = %q, want /%s (writable by the collector user)", img.Config.WorkingDir, imageDataDir)
	}
	for _, l := range []string{"org.opencontainers.image.version", "version"} {
		if got := img.Config.Labels[l]; got != version {
			t.Errorf("label %s = %q, want %q", l, got, version)
		}
	}
	for _, l := range []string{"org.opencontainers.image.title", "org.opencontainers.image.source", "org.opencontainers.image.revision"} {
		if img.Config.Labels[l] == "" {
			t.Errorf("label %s missing", l)
		}
	}
	if head, gerr := exec.Command("git", "-C", repoRoot(t), "rev-parse", "HEAD").Output(); gerr == nil {
		if want := strings.TrimSpace(string(head)); img.Config.Labels["org.opencontainers.image.revision"] != want {
			t.Errorf("label org.opencontainers.image.revision = %q, want %s", img.Config.Labels["org.opencontainers.image.revision"], want)
		}
	}
	if img.Os != "linux" {
		t.Errorf("os = %q, want linux", img.Os)
	}
	// No base image: the image is the binaries and a few small files.
	binInfo, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	dlqInfo, err := os.Stat(filepath.Join(filepath.Dir(bin), "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	const slack = 1 << 20
	if limit := binInfo.Size() + dlqInfo.Size() + caSize(t) + slack; img.Size > limit {
		t.Errorf("image size %d bytes > binaries %d + %d + CA bundle + 1 MiB: is something besides the binaries in it?", img.Size, binInfo.Size(), dlqInfo.Size())
	}
	t.Logf("image %s: %.1f MB (binary %.1f MB), id %.12s", ref, float64(img.Size)/1e6, float64(binInfo.Size())/1e6, builtID)
}

func caBundle() string {
	if p := os.Getenv("CA_BUNDLE"); p != "" {
		return p
	}
	return defaultCAFile
}

func caSize(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(caBundle())
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// checkImageFilesystem exports a created (never started) container and checks
// that the image holds exactly the expected files, with their owners, modes
// and contents.
func checkImageFilesystem(t *testing.T, engine containerEngine, ref, bin string) {
	name := containerName("fs")
	if _, err := engine.run(time.Minute, "create", "--name", name, ref); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeContainer(t, engine, name) })

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := engine.command(ctx, "export", name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		hdr *tar.Header
		sum [sha256.Size]byte
		// data is kept for small files only.
		data []byte
	}
	entries := map[string]entry{}
	tr := tar.NewReader(stdout)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading `%s export`: %v\n%s", engine.name, err, stderr.String())
		}
		h := sha256.New()
		var small bytes.Buffer
		w := io.Writer(h)
		if hdr.Size < 1<<20 {
			w = io.MultiWriter(h, &small)
		}
		if _, err := io.Copy(w, tr); err != nil {
			t.Fatal(err)
		}
		e := entry{hdr: hdr, data: small.Bytes()}
		copy(e.sum[:], h.Sum(nil))
		entries[strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")] = e
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s export: %v\n%s", engine.name, err, stderr.String())
	}

	sumOf := func(path string) [sha256.Size]byte {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(data)
	}
	imageDir := filepath.Join(repoRoot(t), "distribution", "image")
	type want struct {
		mode     os.FileMode
		uid      int
		sameAs   string // host file with the same contents
		contains string
	}
	files := map[string]want{
		"otelcol-failover":                  {mode: 0o755, sameAs: bin},
		"dlq":                               {mode: 0o755, sameAs: filepath.Join(filepath.Dir(bin), "dlq")},
		"etc/ssl/certs/ca-certificates.crt": {mode: 0o644, sameAs: caBundle()},
		"etc/otelcol-failover/config.yaml":  {mode: 0o644, sameAs: filepath.Join(imageDir, "config.yaml")},
		"etc/passwd":                        {mode: 0o644, contains: fmt.Sprintf(":x:%d:%d:", imageUID, imageUID)},
		"etc/group":                         {mode: 0o644, contains: fmt.Sprintf(":x:%d:", imageUID)},
	}
	dirs := map[string]int{ // directory → owner
		"etc": 0, "etc/ssl": 0, "etc/ssl/certs": 0, "etc/otelcol-failover": 0,
		"var": 0, "var/lib": 0, imageDataDir: imageUID,
	}
	for path, w := range files {
		e, ok := entries[path]
		switch {
		case !ok:
			t.Errorf("/%s missing from the image", path)
			continue
		case e.hdr.Typeflag != tar.TypeReg:
			t.Errorf("/%s: not a regular file (type %c)", path, e.hdr.Typeflag)
			continue
		}
		if mode := os.FileMode(e.hdr.Mode).Perm() | os.FileMode(e.hdr.Mode)&(os.ModeSetuid|os.ModeSetgid); mode != w.mode {
			t.Errorf("/%s: mode %v, want %v", path, mode, w.mode)
		}
		if e.hdr.Uid != w.uid {
			t.Errorf("/%s: owner %d, want %d", path, e.hdr.Uid, w.uid)
		}
		if w.sameAs != "" && e.sum != sumOf(w.sameAs) {
			t.Errorf("/%s differs from %s", path, w.sameAs)
		}
		if w.contains != "" && !bytes.Contains(e.data, []byte(w.contains)) {
			t.Errorf("/%s lacks %q:\n%s", path, w.contains, e.data)
		}
	}
	for path, uid := range dirs {
		e, ok := entries[path]
		if !ok || e.hdr.Typeflag != tar.TypeDir {
			t.Errorf("directory /%s missing from the image", path)
			continue
		}
		if e.hdr.Uid != uid || e.hdr.Gid != uid {
			t.Errorf("/%s: owner %d:%d, want %d:%d", path, e.hdr.Uid, e.hdr.Gid, uid, uid)
		}
	}
	// Nothing else, apart from what an engine adds to every container.
	for path := range entries {
		if _, ok := files[path]; ok {
			continue
		}
		if _, ok := dirs[path]; ok || engineAdded(path) {
			continue
		}
		t.Errorf("unexpected /%s in the image (the image is FROM scratch with a fixed file list)", path)
	}
}

// engineAdded: files and mount points the engine puts into every container.
func engineAdded(path string) bool {
	switch path {
	case "", ".dockerenv", "etc/hostname", "etc/hosts", "etc/mtab", "etc/resolv.conf", "dev", "proc", "sys", "run":
		return true
	}
	return strings.HasPrefix(path, "dev/") || strings.HasPrefix(path, "run/")
}

func containerName(purpose string) string {
	return fmt.Sprintf("otelcol-failover-test-%s-%d-%d", purpose, os.Getpid(), time.Now().UnixNano()%1e9)
}

func removeContainer(t *testing.T, engine containerEngine, name string) {
	if _, err := engine.run(time.Minute, "rm", "-f", name); err != nil {
		t.Errorf("removing container %s: %v", name, err)
	}
}

// checkImageRuns starts the image with its default configuration on ports the
// engine picks, waits for the liveness endpoint, checks the readiness
// endpoint, sends OTLP over HTTP and gRPC and finds both batches in the debug
// member's log.
func checkImageRuns(t *testing.T, engine containerEngine, ref string) {
	name := containerName("run")
	args := append([]string{"run", "--detach", "--name", name}, runFlags...)
	for _, p := range []string{"4317", "4318", "13133", "13134"} {
		// Empty host port: the engine binds a free one; read it back below.
		args = append(args, "--publish", "127.0.0.1::"+p)
	}
	runStart := time.Now()
	if _, err := engine.run(time.Minute, append(args, ref)...); err != nil {
		// The container may exist even though `run` failed.
		removeContainer(t, engine, name)
		t.Fatalf("%v\n(on a host whose cgroups crun cannot drive, install runc: the test then runs podman with --runtime runc)", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := containerLogs(engine, name)
			t.Logf("container %s logs:\n%s", name, logs)
		}
		removeContainer(t, engine, name)
	})

	grpcAddr, httpAddr, healthAddr := hostPort(t, engine, name, "4317"), hostPort(t, engine, name, "4318"), hostPort(t, engine, name, "13133")
	readyAddr := hostPort(t, engine, name, "13134")
	client := &http.Client{Timeout: 5 * time.Second}

	// Health endpoint, with a deadline; stop early if the container died.
	deadline := time.Now().Add(60 * time.Second)
	var lastErr error
	for i := 0; ; i++ {
		if lastErr = healthy(client, healthAddr); lastErr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health endpoint http://%s/ not ready after 60s: %v", healthAddr, lastErr)
		}
		if i%10 == 9 {
			if state, err := engine.run(30*time.Second, "inspect", "--format", "{{.State.Status}}", name); err != nil || strings.TrimSpace(state) != "running" {
				t.Fatalf("container %s is %q (%v) before its health endpoint answered: %v", name, strings.TrimSpace(state), err, lastErr)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("container started and healthy in %v", time.Since(runStart).Round(time.Millisecond))
	// Readiness of the ingest pipeline, as the README's Kubernetes probe asks.
	if err := ready(client, readyAddr, "traces/ingest"); err != nil {
		t.Errorf("readiness: %v", err)
	}

	checkRunsAsUser(t, engine, name)

	// OTLP/HTTP, JSON: three spans.
	resp, err := client.Post("http://"+httpAddr+"/v1/traces", "application/json", strings.NewReader(tracesJSON(3, "image-test-http")))
	if err != nil {
		t.Fatalf("POST /v1/traces: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/traces: %s\n%s", resp.Status, body)
	}
	var answer struct {
		PartialSuccess struct {
			RejectedSpans json.Number `json:"rejectedSpans"`
		} `json:"partialSuccess"`
	}
	if err = json.Unmarshal(body, &answer); err != nil {
		t.Fatalf("POST /v1/traces answered %q: %v", body, err)
	}
	if r := answer.PartialSuccess.RejectedSpans.String(); r != "" && r != "0" {
		t.Fatalf("POST /v1/traces rejected %s spans: %s", r, body)
	}

	// OTLP/gRPC: two spans.
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := range 2 {
		s := ss.Spans().AppendEmpty()
		s.SetName(fmt.Sprintf("image-test-grpc-%d", i))
		s.SetTraceID([16]byte{1, 2, 3, byte(i + 1)})
		s.SetSpanID([8]byte{4, 5, 6, byte(i + 1)})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
		t.Fatalf("OTLP/gRPC export to %s: %v", grpcAddr, err)
	}

	// Both batches went through failover_group/default to its first member.
	waitForLogs(t, engine, name, 30*time.Second,
		[]string{`"otelcol.component.id": "failover_group/default"`, `"member": "debug/primary"`, `"spans": 3`},
		[]string{`"otelcol.component.id": "failover_group/default"`, `"member": "debug/primary"`, `"spans": 2`},
	)
}

// hostPort returns the 127.0.0.1:<port> the engine published a container port on.
func hostPort(t *testing.T, engine containerEngine, name, port string) string {
	t.Helper()
	out, err := engine.run(30*time.Second, "port", name, port+"/tcp")
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	host, p, err := net.SplitHostPort(strings.TrimSpace(first))
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("%s port %s %s = %q: want 127.0.0.1:<port> (%v)", engine.name, name, port, out, err)
	}
	if n, err := strconv.Atoi(p); err != nil || n <= 0 {
		t.Fatalf("%s port %s %s = %q: bad port", engine.name, name, port, out)
	}
	return net.JoinHostPort(host, p)
}

// healthy asks the liveness endpoint (healthcheckv2, GET /).
func healthy(client *http.Client, addr string) error {
	return healthAnswer(client, "http://"+addr+"/")
}

// ready asks the readiness endpoint for one pipeline.
func ready(client *http.Client, addr, pipeline string) error {
	return healthAnswer(client, "http://"+addr+"/ready?pipeline="+pipeline)
}

func healthAnswer(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	var answer struct {
		Healthy bool   `json:"healthy"`
		Status  string `json:"status"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("GET %s: health answer %q is not JSON: %w", url, body, err)
	}
	if !answer.Healthy || answer.Status != "StatusOK" {
		return fmt.Errorf("GET %s: unexpected health answer %q", url, body)
	}
	return nil
}

// checkRunsAsUser reads the container's main process from the host's /proc:
// the collector runs as 10001, not root. Only where the engine's processes
// are visible here (podman always; docker when the daemon is local).
func checkRunsAsUser(t *testing.T, engine containerEngine, name string) {
	out, err := engine.run(30*time.Second, "inspect", "--format", "{{.State.Pid}}", name)
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(out), "status"))
	if err != nil {
		if engine.name == "podman" {
			t.Fatalf("reading the container process's status: %v", err)
		}
		t.Logf("not checking the process's uid: %v (the image's user is checked by inspect)", err)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	found := 0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Uid:") && !strings.HasPrefix(line, "Gid:") {
			continue
		}
		found++
		for _, id := range strings.Fields(line)[1:] {
			if id != strconv.Itoa(imageUID) {
				t.Errorf("collector process %s, want every id %d", line, imageUID)
				break
			}
		}
	}
	if found != 2 {
		t.Errorf("no Uid/Gid lines in /proc status:\n%s", status)
	}
}

func containerLogs(engine containerEngine, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := engine.command(ctx, "logs", name).CombinedOutput()
	return string(out), err
}

// waitForLogs waits until, for each group of fragments, one log line holds
// all of them.
func waitForLogs(t *testing.T, engine containerEngine, name string, timeout time.Duration, groups ...[]string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		logs, err := containerLogs(engine, name)
		if err != nil {
			t.Fatalf("%s logs %s: %v\n%s", engine.name, name, err, logs)
		}
		missing := 0
		for _, g := range groups {
			if !slices.ContainsFunc(strings.Split(logs, "\n"), func(line string) bool {
				for _, f := range g {
					if !strings.Contains(line, f) {
						return false
					}
				}
				return true
			}) {
				missing++
				if time.Now().After(deadline) {
					t.Errorf("no log line with all of %q within %v", g, timeout)
				}
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tracesJSON is an OTLP/JSON traces request with n spans.
func tracesJSON(n int, name string) string {
	var spans []string
	for i := range n {
		spans = append(spans, fmt.Sprintf(`{"traceId":"5b8efff798038103d269b633813fc6%02x","spanId":"eee19b7ec3c1b1%02x","name":"%s-%d","kind":1,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000100000000"}`, i, i, name, i))
	}
	return `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"image-test"}}]},"scopeSpans":[{"scope":{"name":"image-test"},"spans":[` +
		strings.Join(spans, ",") + `]}]}]}`
}

// The image's default configuration needs no external service and validates
// with the binary (the image test runs it; this check needs no engine).
func TestImageDefaultConfigValidates(t *testing.T) {
	path := filepath.Join(repoRoot(t), "distribution", "image", "config.yaml")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, collector(t), "validate", "--config", path)
	cmd.Env = []string{} // references no environment variable
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("validate %s: %v\n%s", path, err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, listen := range []string{"0.0.0.0:4317", "0.0.0.0:4318", "0.0.0.0:13133", "0.0.0.0:13134"} {
		if !bytes.Contains(data, []byte(listen)) {
			t.Errorf("%s does not listen on %s (the image exposes that port)", path, listen)
		}
	}
}
