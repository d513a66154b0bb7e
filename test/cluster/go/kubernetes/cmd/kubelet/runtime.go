package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	fakeremote "k8s.io/cri-client/pkg/fake"
	"k8s.io/klog/v2"
)

// stateSaveInterval is how often the fake runtime writes its sandboxes and
// containers to the state file when they changed.
const stateSaveInterval = time.Second

// fakeImageSize is the size in bytes that every pulled image reports. The
// kubelet rejects an image of size 0 as not pulled.
const fakeImageSize = 1 << 20

// fakeRuntime is the fake CRI runtime of k8s.io/cri-client, served on a unix
// socket. Its pod sandboxes and containers outlive a kubelet restart as a
// real runtime's do, because they are saved to a state file beside the
// socket and loaded again at start.
type fakeRuntime struct {
	remote    *fakeremote.RemoteRuntime
	statePath string
	lastSaved []byte
}

// savedState is the state file's content.
type savedState struct {
	Sandboxes  []savedSandbox   `json:"sandboxes"`
	Containers []savedContainer `json:"containers"`
}

type savedSandbox struct {
	Status         json.RawMessage `json:"status"`
	RuntimeHandler string          `json:"runtimeHandler,omitempty"`
}

type savedContainer struct {
	Status         json.RawMessage `json:"status"`
	SandboxID      string          `json:"sandboxID"`
	LinuxResources json.RawMessage `json:"linuxResources,omitempty"`
}

// startFakeRuntime serves the fake runtime on endpoint, a unix:// URL, after
// loading the state that a previous kubelet on this host left.
func startFakeRuntime(endpoint string) (*fakeRuntime, error) {
	socket, found := strings.CutPrefix(endpoint, "unix://")
	if !found || socket == "" {
		return nil, fmt.Errorf("invalid --container-runtime-endpoint %q: the test kubelet serves its fake runtime on a unix socket, so give a unix:///path URL", endpoint)
	}

	runtime := &fakeRuntime{
		remote:    fakeremote.NewFakeRemoteRuntime(),
		statePath: socket + ".state.json",
	}
	runtime.remote.ImageService.SetFakeImageSize(fakeImageSize)
	if err := runtime.load(); err != nil {
		return nil, err
	}
	if err := runtime.remote.Start(endpoint); err != nil {
		return nil, fmt.Errorf("failed to serve the fake container runtime on %s: %w", endpoint, err)
	}
	return runtime, nil
}

// run saves the state every stateSaveInterval until ctx ends, then once more.
func (r *fakeRuntime) run(ctx context.Context) {
	ticker := time.NewTicker(stateSaveInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			r.saveAndLog()
			r.remote.Stop()
			return
		case <-ticker.C:
			r.saveAndLog()
		}
	}
}

func (r *fakeRuntime) saveAndLog() {
	if err := r.save(); err != nil {
		klog.ErrorS(err, "Failed to save the fake runtime state", "path", r.statePath)
	}
}

// load restores sandboxes and containers from the state file. A missing file
// means a host whose runtime has never run a pod.
func (r *fakeRuntime) load() error {
	data, err := os.ReadFile(r.statePath)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read the fake runtime state: %w", err)
	}
	var state savedState
	if err := json.Unmarshal(data, &state); err != nil {
		return fmt.Errorf("invalid fake runtime state %s: %w; delete the file to start with no pods", r.statePath, err)
	}

	sandboxes := make([]*critest.FakePodSandbox, 0, len(state.Sandboxes))
	for _, saved := range state.Sandboxes {
		sandbox := &critest.FakePodSandbox{RuntimeHandler: saved.RuntimeHandler}
		if err := protojson.Unmarshal(saved.Status, &sandbox.PodSandboxStatus); err != nil {
			return fmt.Errorf("invalid sandbox in fake runtime state %s: %w", r.statePath, err)
		}
		sandboxes = append(sandboxes, sandbox)
	}

	containers := make([]*critest.FakeContainer, 0, len(state.Containers))
	for _, saved := range state.Containers {
		container := &critest.FakeContainer{SandboxID: saved.SandboxID}
		if err := protojson.Unmarshal(saved.Status, &container.ContainerStatus); err != nil {
			return fmt.Errorf("invalid container in fake runtime state %s: %w", r.statePath, err)
		}
		if len(saved.LinuxResources) > 0 {
			container.LinuxResources = &runtimeapi.LinuxContainerResources{}
			if err := protojson.Unmarshal(saved.LinuxResources, container.LinuxResources); err != nil {
				return fmt.Errorf("invalid container resources in fake runtime state %s: %w", r.statePath, err)
			}
		}
		containers = append(containers, container)
	}

	r.remote.RuntimeService.SetFakeSandboxes(sandboxes)
	r.remote.RuntimeService.SetFakeContainers(containers)
	r.lastSaved = data
	klog.InfoS("Loaded the fake runtime state", "path", r.statePath, "sandboxes", len(sandboxes), "containers", len(containers))
	return nil
}

// save writes the state file when it changed, through a temporary file so a
// crash never leaves half a file. It also drops the fakes' call records,
// which grow with every CRI call and are kept only for unit tests.
func (r *fakeRuntime) save() error {
	data, err := r.snapshot()
	if err != nil {
		return err
	}
	if bytes.Equal(data, r.lastSaved) {
		return nil
	}

	temporary := r.statePath + ".tmp"
	if err := os.MkdirAll(filepath.Dir(r.statePath), 0o750); err != nil {
		return err
	}
	if err := os.WriteFile(temporary, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(temporary, r.statePath); err != nil {
		return err
	}
	r.lastSaved = data
	return nil
}

func (r *fakeRuntime) snapshot() ([]byte, error) {
	service := r.remote.RuntimeService
	service.Lock()
	defer service.Unlock()
	service.Called = nil

	images := r.remote.ImageService
	images.Lock()
	images.Called = nil
	images.Unlock()

	state := savedState{Sandboxes: []savedSandbox{}, Containers: []savedContainer{}}
	for _, sandbox := range service.Sandboxes {
		status, err := protojson.Marshal(&sandbox.PodSandboxStatus)
		if err != nil {
			return nil, err
		}
		state.Sandboxes = append(state.Sandboxes, savedSandbox{Status: status, RuntimeHandler: sandbox.RuntimeHandler})
	}
	for _, container := range service.Containers {
		status, err := protojson.Marshal(&container.ContainerStatus)
		if err != nil {
			return nil, err
		}
		saved := savedContainer{Status: status, SandboxID: container.SandboxID}
		if container.LinuxResources != nil {
			if saved.LinuxResources, err = protojson.Marshal(container.LinuxResources); err != nil {
				return nil, err
			}
		}
		state.Containers = append(state.Containers, saved)
	}

	// Map order is random, so sort to write the same bytes for the same state.
	slices.SortFunc(state.Sandboxes, func(a, b savedSandbox) int { return bytes.Compare(a.Status, b.Status) })
	slices.SortFunc(state.Containers, func(a, b savedContainer) int { return bytes.Compare(a.Status, b.Status) })
	return json.Marshal(state)
}
