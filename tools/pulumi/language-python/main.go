// Command pulumi-language-python runs Python Pulumi programs and Python policy packs for the Pulumi engine.
//
// Why this exists: upstream's language host lives in its own Go module
// (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3), and the Go module proxy this project can
// reach serves no version of it. Everything it needs is in github.com/pulumi/pulumi/sdk/v3: the gRPC contract
// (proto/go), the Python toolchain handling (python/toolchain) and the script that boots a program inside the
// Python SDK (python/cmd/pulumi-language-python-exec, installed beside this binary). This host implements the
// calls `pulumi up/preview/destroy`, the Automation API and policy packs make; the rest answer Unimplemented.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// version is set by the build (-ldflags -X main.version=...) to the Pulumi release whose sdk/v3 it is built from.
var version = "0.0.0-dev"

// userActionableExit is the exit code pulumi-language-python-exec uses after it has already shown the error.
const userActionableExit = 32

func main() {
	flags := flag.NewFlagSet("pulumi-language-python", flag.ExitOnError)
	// The engine may pass these; they change nothing here but must not be rejected.
	flags.String("tracing", "", "tracing endpoint (ignored)")
	flags.String("root", "", "project root (ignored: taken from each request)")
	_ = flags.Parse(os.Args[1:])
	if flags.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: pulumi-language-python ENGINE_ADDRESS")
		os.Exit(2)
	}
	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	host := &pythonHost{
		engineAddress: flags.Arg(0),
		execScript:    filepath.Join(filepath.Dir(exe), "pulumi-language-python-exec"),
	}
	if _, err := os.Stat(host.execScript); err != nil {
		fatal(fmt.Errorf("%s must sit beside this binary: %w", host.execScript, err))
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(s *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(s, host)
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		fatal(err)
	}
	// The engine reads the port from the first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
	os.Exit(1)
}

type pythonHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
	execScript    string
}

func (h *pythonHost) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *pythonHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// Plugins are resolved when the program registers resources (from $PATH or the plugin cache, never downloaded
// here), so nothing has to be announced ahead of the run.
func (h *pythonHost) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *pythonHost) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

// toolchainFor resolves the Python of the program from Pulumi.yaml's (or PulumiPolicy.yaml's) runtime options.
func toolchainFor(info *pulumirpc.ProgramInfo) (toolchain.Toolchain, error) {
	if info == nil {
		return nil, errors.New("the engine sent no program info")
	}
	opts := info.GetOptions().AsMap()
	venv, _ := opts["virtualenv"].(string)
	name, _ := opts["toolchain"].(string)
	kinds := map[string]toolchain.PythonOptions{
		"": {Toolchain: toolchain.Auto}, "pip": {Toolchain: toolchain.Pip},
		"poetry": {Toolchain: toolchain.Poetry}, "uv": {Toolchain: toolchain.Uv},
	}
	options, ok := kinds[name]
	if !ok {
		return nil, fmt.Errorf("runtime option toolchain: %q is not one of pip, poetry, uv", name)
	}
	options.Root, options.ProgramDir, options.Virtualenv = info.GetRootDirectory(), info.GetProgramDirectory(), venv
	return toolchain.ResolveToolchain(options)
}

func programPath(info *pulumirpc.ProgramInfo, fallback string) string {
	if info.GetProgramDirectory() == "" {
		return fallback
	}
	return filepath.Join(info.GetProgramDirectory(), info.GetEntryPoint())
}

func withEnv(cmd *exec.Cmd, extra ...string) {
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, extra...)
}

func (h *pythonHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	tc, err := toolchainFor(req.GetInfo())
	if err != nil {
		return nil, err
	}
	args := []string{
		"-u", h.execScript,
		"--monitor", req.GetMonitorAddress(), "--engine", h.engineAddress,
		"--project", req.GetProject(), "--stack", req.GetStack(), "--pwd", req.GetPwd(),
		"--dry_run", fmt.Sprint(req.GetDryRun()), "--parallel", fmt.Sprint(req.GetParallel()),
		"--organization", req.GetOrganization(), "--root_directory", req.GetInfo().GetRootDirectory(),
		programPath(req.GetInfo(), req.GetProgram()), //nolint:staticcheck // fallback for old engines
	}
	cmd, err := tc.Command(ctx, append(args, req.GetArgs()...)...)
	if err != nil {
		return nil, err
	}
	// The exec script iterates both: an empty stack config must arrive as {} and [], never null.
	configMap, keys := req.GetConfig(), req.GetConfigSecretKeys()
	if configMap == nil {
		configMap = map[string]string{}
	}
	if keys == nil {
		keys = []string{}
	}
	config, err := json.Marshal(configMap)
	if err != nil {
		return nil, err
	}
	secretKeys, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	withEnv(cmd, "PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys))
	// The engine shows this process's stdout and stderr; the program's output goes there too.
	cmd.Stdout, cmd.Stderr, cmd.Dir = os.Stdout, os.Stderr, req.GetPwd()
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == userActionableExit:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exitErr):
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode())}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Problem executing program (could not run language executor): %v", err)}, nil
	}
}

// RunPlugin runs a plugin written in Python; the engine uses it for policy packs. The plugin prints its port on
// stdout, which is streamed back to the engine.
func (h *pythonHost) RunPlugin(req *pulumirpc.RunPluginRequest, server grpc.ServerStreamingServer[pulumirpc.RunPluginResponse]) error {
	tc, err := toolchainFor(req.GetInfo())
	if err != nil {
		return err
	}
	program := programPath(req.GetInfo(), req.GetProgram()) //nolint:staticcheck // fallback for old engines
	cmd, err := tc.Command(server.Context(), append([]string{"-u", program}, req.GetArgs()...)...)
	if err != nil {
		return err
	}
	withEnv(cmd, req.GetEnv()...)
	cmd.Dir = req.GetPwd()
	var mu sync.Mutex
	cmd.Stdout = &streamWriter{mu: &mu, send: func(b []byte) error {
		return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: b}})
	}}
	cmd.Stderr = &streamWriter{mu: &mu, send: func(b []byte) error {
		return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: b}})
	}}
	code := int32(0)
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return fmt.Errorf("could not run plugin %s: %w", program, err)
		}
		code = int32(exitErr.ExitCode())
	}
	mu.Lock()
	defer mu.Unlock()
	return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: code}})
}

// streamWriter forwards a child's output as stream messages; one mutex serialises Send across both streams.
type streamWriter struct {
	mu   *sync.Mutex
	send func([]byte) error
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.send(append([]byte(nil), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// InstallDependencies only checks the virtual environment: `make setup` installs the pinned packages.
func (h *pythonHost) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	tc, err := toolchainFor(req.GetInfo())
	if err != nil {
		return err
	}
	if err := tc.ValidateVenv(server.Context()); err != nil {
		return fmt.Errorf("%w (run `make setup` to create it)", err)
	}
	return server.Send(&pulumirpc.InstallDependenciesResponse{
		Stdout: []byte("Python dependencies are installed by `make setup`; the virtual environment is valid.\n"),
	})
}

func (h *pythonHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	tc, err := toolchainFor(req.GetInfo())
	if err != nil {
		return nil, err
	}
	info, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{Executable: info.PythonExecutable, Version: info.PythonVersion.String()}, nil
}

func (h *pythonHost) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	tc, err := toolchainFor(req.GetInfo())
	if err != nil {
		return nil, err
	}
	packages, err := tc.ListPackages(ctx, req.GetTransitiveDependencies())
	if err != nil {
		return nil, err
	}
	deps := make([]*pulumirpc.DependencyInfo, 0, len(packages))
	for _, p := range packages {
		deps = append(deps, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}

var _ io.Writer = (*streamWriter)(nil)
