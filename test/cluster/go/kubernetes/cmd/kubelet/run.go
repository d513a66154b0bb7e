package main

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapiserver "k8s.io/apiserver/pkg/server"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	nodeutil "k8s.io/component-helpers/node/util"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kubelet/app"
	"k8s.io/kubernetes/cmd/kubelet/app/options"
	"k8s.io/kubernetes/pkg/kubelet"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	cadvisortest "k8s.io/kubernetes/pkg/kubelet/cadvisor/testing"
	"k8s.io/kubernetes/pkg/kubelet/cm"
	"k8s.io/kubernetes/pkg/kubemark"
)

// run starts the kubelet and blocks until SIGTERM or SIGINT.
func run(args []string) error {
	server, flagSet, err := parseCommandLine(context.Background(), args)
	if errors.Is(err, errHelpRequested) {
		return nil
	}
	if err != nil {
		return err
	}

	logs.InitLogs()
	if err := logsapi.ValidateAndApplyAsField(&server.Logging, utilfeature.DefaultFeatureGate, field.NewPath("logging")); err != nil {
		return fmt.Errorf("invalid logging configuration: %w", err)
	}
	cliflag.PrintFlags(flagSet)

	ctx := genericapiserver.SetupSignalContext()

	runtime, err := startFakeRuntime(server.ContainerRuntimeEndpoint)
	if err != nil {
		return err
	}
	runtimeStopped := make(chan struct{})
	go func() {
		runtime.run(ctx)
		close(runtimeStopped)
	}()

	deps, err := newDependencies(ctx, server)
	if err != nil {
		return err
	}

	utilfeature.DefaultMutableFeatureGate.AddMetrics()
	err = app.Run(ctx, server, deps, utilfeature.DefaultFeatureGate)
	if err == nil {
		<-runtimeStopped
	}
	return err
}

// adaptToFakeHost changes the settings that need a real container runtime or
// real cgroups. Everything else keeps the value of the flags and the file.
func adaptToFakeHost(config *kubeletconfig.KubeletConfiguration) {
	// The fake runtime serves the image service on the runtime's socket.
	config.ImageServiceEndpoint = ""
	// The stub container manager creates no cgroups, so the host's cgroup
	// version does not matter. The other cgroup settings keep their values
	// because validation ties them together, and the stub ignores them.
	config.FailCgroupV1 = false
}

// newDependencies builds the kubelet's dependencies as kubemark's hollow node
// does, but leaves the API clients, the authenticator and the event recorder
// unset. app.Run then builds them as the real kubelet does, so the clients
// come from TLS bootstrap or, with rotation on, the certificate manager.
func newDependencies(ctx context.Context, server *options.KubeletServer) (*kubelet.Dependencies, error) {
	nodeName, err := nodeutil.GetHostname(server.HostnameOverride)
	if err != nil {
		return nil, fmt.Errorf("failed to determine the node name: %w", err)
	}

	hollow := kubemark.NewHollowKubelet(
		nil, nil, nil, nil,
		&cadvisortest.Fake{NodeName: nodeName},
		nil, nil,
		cm.NewStubContainerManager(),
	)
	deps := hollow.KubeletDeps

	// NewHollowKubelet stores typed nil pointers, which app.Run would take
	// for clients that are already built.
	deps.KubeClient = nil
	deps.HeartbeatClient = nil
	deps.EventClient = nil
	deps.RemoteRuntimeService = nil
	deps.RemoteImageService = nil
	deps.Recorder = nil

	deps.TLSOptions, err = app.InitializeTLS(ctx, &server.KubeletFlags, &server.KubeletConfiguration)
	if err != nil {
		return nil, fmt.Errorf("failed to set up the kubelet's serving certificate in --cert-dir %q: %w", server.CertDirectory, err)
	}

	klog.InfoS("Test kubelet with a fake container runtime", "node", nodeName, "runtimeEndpoint", server.ContainerRuntimeEndpoint, "rotateCertificates", server.RotateCertificates)
	return deps, nil
}
