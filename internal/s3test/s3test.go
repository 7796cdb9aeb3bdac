package s3test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the SeaweedFS module version build-seaweedfs.sh builds by
// default.
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

// Region is the region the server's clients sign for.
const Region = "us-east-1"

// Server is a running weed server with S3 on loopback.
type Server struct {
	// Endpoint is the S3 endpoint, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the identity the server accepts.
	AccessKey, SecretKey string
	// Log is the server's output file.
	Log string

	cmd  *exec.Cmd
	done chan error
}

// Binary finds weed (Lookup). It skips t without one, or fails it when
// WHORL_S3=require.
func Binary(t testing.TB) string {
	t.Helper()
	if p := Lookup(); p != "" {
		return p
	}
	msg := Missing
	if os.Getenv("WHORL_S3") == "require" {
		t.Fatal(msg + " (WHORL_S3=require)")
	}
	t.Skip(msg)
	return ""
}

// Missing says what is missing when Lookup finds no weed.
const Missing = "no SeaweedFS weed binary (WHORL_WEED, the build cache, PATH): run internal/s3test/build-seaweedfs.sh to build it from the Go module proxy"

// Lookup finds weed: $WHORL_WEED, then build-seaweedfs.sh's cache, then
// PATH; "" when there is none.
func Lookup() string {
	if p := os.Getenv("WHORL_WEED"); p != "" {
		return p
	}
	for _, root := range cacheRoots() {
		p := filepath.Join(root, "seaweedfs-"+Version, "bin", "weed")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("weed"); err == nil {
		return p
	}
	return ""
}

// cacheRoots are where build-seaweedfs.sh may have put its cache.
func cacheRoots() []string {
	if c := os.Getenv("WHORL_CACHE"); c != "" {
		return []string{c}
	}
	home, _ := os.UserHomeDir()
	return []string{"/var/cache/whorl", filepath.Join(home, ".cache", "whorl")}
}

// Start starts a server for t on loopback, stopped when t ends, and waits
// until its S3 endpoint answers.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartOn(t, "127.0.0.1")
}

// StartOn is Start with the server on ip, a local address (the one-node
// Kubernetes's node address, say, which its pods reach).
func StartOn(t testing.TB, ip string) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	s := &Server{AccessKey: "whorl-test", SecretKey: "whorl-test-secret-" + strconv.Itoa(os.Getpid()),
		Log: filepath.Join(dir, "weed.log"), done: make(chan error, 1)}
	conf := filepath.Join(dir, "s3.json")
	if err := writeIdentity(conf, s.AccessKey, s.SecretKey); err != nil {
		t.Fatal(err)
	}
	p := freePorts(t, 8)
	s.Endpoint = "http://" + net.JoinHostPort(ip, p[6])
	args := []string{"server", "-dir=" + filepath.Join(dir, "data"), "-ip=" + ip, "-ip.bind=" + ip,
		"-master.port=" + p[0], "-master.port.grpc=" + p[1], "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
		"-volume.port=" + p[2], "-volume.port.grpc=" + p[3], "-volume.max=16",
		"-filer.port=" + p[4], "-filer.port.grpc=" + p[5], "-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-s3", "-s3.port=" + p[6], "-s3.port.grpc=" + p[7], "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.localSocket=" + filepath.Join(dir, "s3.sock"), "-s3.config=" + conf}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(s.Log)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { s.done <- s.cmd.Wait(); logf.Close() }()
	t.Cleanup(s.stop)
	if err := s.waitReady(90 * time.Second); err != nil {
		t.Fatalf("weed server: %v\n%s", err, tail(s.Log, 30))
	}
	return s
}

// writeIdentity writes the s3.config file with one all-powerful identity.
func writeIdentity(path, key, secret string) error {
	conf := map[string]any{"identities": []any{map[string]any{
		"name":        "whorl",
		"credentials": []any{map[string]string{"accessKey": key, "secretKey": secret}},
		"actions":     []string{"Admin", "Read", "Write", "List", "Tagging"},
	}}}
	b, err := json.Marshal(conf)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// freePorts returns n distinct free loopback ports.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var ls []net.Listener
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// waitReady polls until a bucket can be listed (S3, the filer and a
// volume all up), or the process exits, or limit passes.
func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	cl := s.Client()
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("exited: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, last = cl.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("S3 at %s not ready after %v: %v", s.Endpoint, limit, last)
}

// Client is an S3 client of the server with its identity.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:   &http.Client{Timeout: 30 * time.Second},
	})
}

// Bucket creates a bucket and returns its whorl URL with prefix (the
// endpoint and path style in the URL's parameters), after setting the
// AWS SDK's credential and region variables for t.
func (s *Server) Bucket(t testing.TB, name, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	s.Env(t)
	return s.URL(name, prefix)
}

// URL is s3://name/prefix with the server's endpoint as parameters.
func (s *Server) URL(name, prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&use_path_style=true&region=%s", name, strings.Trim(prefix, "/"), s.Endpoint, Region)
}

// Env sets the AWS SDK's credentials for this server for t (and unsets
// what could override them).
func (s *Server) Env(t testing.TB) {
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_REGION", Region)
	for _, k := range []string{"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// Kill stops the server at once (SIGKILL to its process group), as a
// store that vanishes mid-run.
func (s *Server) Kill() {
	if s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// stop ends the server and waits for it.
func (s *Server) stop() {
	s.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
